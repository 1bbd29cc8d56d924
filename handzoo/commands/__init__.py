"""CLI commands that live in their own modules.

Each module defines ``register(app)`` that adds its typer commands; the
module is listed in :data:`handzoo.cli.COMMAND_MODULES`.
"""
