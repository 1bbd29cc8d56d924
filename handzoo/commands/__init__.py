"""The ``handzoo`` subcommands, one module per concern.

Each module defines ``register(app)`` that adds its typer commands; the
modules are listed in :data:`handzoo.cli.COMMAND_MODULES`. Plugins add
commands through the ``register_commands`` hook instead.
"""
