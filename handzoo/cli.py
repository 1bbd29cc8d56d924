"""The ``handzoo`` command line (typer + rich).

Every error a user can cause ends in one line on stderr: usage errors (bad
option, unknown name, invalid ``--set``) exit with code 2, other failures
with 1. ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import sys
import warnings

import typer

from handzoo._version import __version__
from handzoo.errors import HandzooError, UsageError

app = typer.Typer(
    name="handzoo",
    help="A plugin-based model zoo for 3D hand pose estimation from single RGB images.",
    epilog="Plugins add commands of their own: `handzoo plugins` lists them.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"handzoo {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool | None = typer.Option(
        None, "--version", callback=_version_callback, is_eager=True, help="Print the version and exit."
    ),
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors."),
) -> None:
    """handzoo: train, evaluate, compare and share 3D hand pose models."""


# Every command lives in a module of handzoo.commands with ``register(app)``;
# plugins add theirs through the ``register_commands`` hook (see main).
COMMAND_MODULES: tuple[str, ...] = (
    "handzoo.commands.registry_commands",
    "handzoo.commands.run_command",
    "handzoo.commands.eval_command",
    "handzoo.commands.data_commands",
    "handzoo.commands.zoo_commands",
    "handzoo.commands.inference_commands",
)


def _register_command_modules() -> None:
    import importlib

    for name in COMMAND_MODULES:
        importlib.import_module(name).register(app)


_register_command_modules()


# Placeholders of option values in --help (otherwise the option's own name in capitals).
METAVARS = {
    "weights": "FILE",
    "out": "PATH",
    "config": "FILE",
    "data": "NAME",
    "data_root": "DIR",
    "device": "DEVICE",
    "batch_size": "N",
    "workers": "N",
    "epochs": "N",
    "max_steps": "N",
    "checkpoint_every": "N",
    "image_size": "PX",
    "seed": "N",
    "lr": "LR",
    "sets": "KEY=VALUE",
    "box": "x0,y0,x1,y1",
    "K": "fx,fy,cx,cy",
    "fov": "DEGREES",
    "root_depth": "METRES",
    "html": "FILE",
    "png": "FILE",
    "zoo": "FILE",
    "dest": "DIR",
    "runs": "DIR",
    "models": "PATTERN",
    "init": "NAME[:TAG]|URL|PATH",
    "limit": "N",
    "bench_seconds": "SECONDS",
    "opset": "N",
}


def _tidy_help(command) -> None:
    """Readable --help for every command: ``MODEL`` not ``{model} <str>``, and ``--debug`` named.

    Typer labels values with their Python types (``<str>``, ``<list[str]>``);
    here arguments are named in capitals and option values get the
    placeholders of :data:`METAVARS`. ``--debug`` is handled by :func:`main`
    before parsing, so each command's help ends by naming it.
    """
    from typer.core import TyperArgument, TyperOption

    subcommands = getattr(command, "commands", None)
    for sub in (subcommands or {}).values():
        _tidy_help(sub)
    for param in getattr(command, "params", []):
        if isinstance(param, TyperArgument) and param.metavar is None:
            name = param.name.upper() + ("..." if param.nargs != 1 else "")
            param.metavar = name
            param.display_type = lambda ctx: ""  # the name says it; the type label was noise
            usage = name if param.required else f"[{name}]"
            param._usage_display_name = lambda usage=usage: usage  # not typer's {NAME}...
        elif isinstance(param, TyperOption) and not param.is_flag and param.metavar is None:
            param.metavar = METAVARS.get(param.name, param.name.upper())
    if not subcommands:
        command.epilog = "Add --debug anywhere on the line to see the full traceback of an error."


def build_command():
    """The click command behind ``handzoo`` (plugins' commands included), with tidy help."""
    command = typer.main.get_command(app)
    _tidy_help(command)
    return command


def _default_detector(args: list[str]) -> list[str]:
    """``--detect`` given alone (last, or before another option or a path) means the default detector.

    Typer options cannot take an optional value, so ``predict --detect photos/``
    is rewritten to ``--detect mediapipe photos/`` unless the word after
    ``--detect`` is a registered detector.
    """
    if "--detect" not in args:
        return args
    from handzoo.inference.defaults import DEFAULT_DETECTOR
    from handzoo.plugins import get_registry

    at = args.index("--detect")
    following = args[at + 1] if at + 1 < len(args) else None
    if following is not None and following in get_registry().names("detector"):
        return args
    if following is not None and not following.startswith("-") and not _looks_like_a_path(following):
        return args  # an unknown name: the detector lookup names it, with suggestions
    return [*args[: at + 1], DEFAULT_DETECTOR, *args[at + 1 :]]


def _looks_like_a_path(word: str) -> bool:
    from pathlib import Path

    return Path(word).exists() or "/" in word or "." in word


def _load_plugins(quiet: bool) -> None:
    """Load the plugins and their commands; their problems become one line naming the plugins.

    Every command would otherwise repeat every warning of every plugin.
    ``handzoo plugins`` (``quiet``) shows them in full instead.
    """
    from handzoo.plugins import PluginWarning, get_host

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", PluginWarning)
        host = get_host()
        host.add_commands(app)  # plugins' own subcommands (register_commands)
    for w in caught:
        if not issubclass(w.category, PluginWarning):
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    if quiet or not any(issubclass(w.category, PluginWarning) for w in caught):
        return
    names = [name for name, info in host.plugins.items() if info.errors]
    who = ", ".join(repr(n) for n in names) or "some plugins"
    noun = "plugin" if len(names) == 1 else "plugins"
    verb = "has" if len(names) == 1 else "have"
    print(f"handzoo: warning: {noun} {who} {verb} problems; `handzoo plugins` shows them", file=sys.stderr)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"handzoo: warning: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point; exits with 0, 1 (failure) or 2 (usage error)."""
    args = list(sys.argv[1:] if argv is None else argv)
    # --debug is accepted anywhere on the line, not only before the command.
    debug = "--debug" in args
    args = [a for a in args if a != "--debug"]
    warnings.showwarning = _show_warning
    try:
        # The version and the top-level help answer without importing plugins (one may be slow).
        if args[:1] != ["--version"] and args not in ([], ["--help"], ["-h"]):
            _load_plugins(quiet=args[:1] == ["plugins"])
            args = _default_detector(args)
        code = build_command().main(args=args, prog_name="handzoo", standalone_mode=False)
    except KeyboardInterrupt:
        print("handzoo: interrupted", file=sys.stderr)
        code = 130
    except Exception as exc:
        code = _click_exit_code(exc)
        if code is None:
            code = _report(exc, debug)
    sys.exit(code if isinstance(code, int) else 0)


def _click_exit_code(exc: BaseException) -> int | None:
    """Handle click's own exceptions (typer may vendor its own click, so match by class name)."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    if "Exit" in names:
        return int(getattr(exc, "exit_code", 0) or 0)
    if "Abort" in names:
        cause = exc.__cause__ or exc.__context__
        if isinstance(cause, EOFError):  # click turns an EOFError into Abort; it is no Ctrl-C
            print(f"handzoo: error: unexpected end of a file or of input ({cause})", file=sys.stderr)
            return 1
        print("handzoo: aborted", file=sys.stderr)
        return 130
    if "UsageError" in names and hasattr(exc, "format_message"):
        ctx = getattr(exc, "ctx", None)
        hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
        print(f"handzoo: usage error: {exc.format_message()}{hint}", file=sys.stderr)
        return 2
    if "ClickException" in names and hasattr(exc, "format_message"):
        print(f"handzoo: error: {exc.format_message()}", file=sys.stderr)
        return int(getattr(exc, "exit_code", 1))
    return None


def _report(exc: Exception, debug: bool) -> int:
    """One line for the user (or the traceback with --debug); returns the exit code."""
    if debug:
        raise exc
    if isinstance(exc, UsageError):
        print(f"handzoo: usage error: {exc}", file=sys.stderr)
        return 2
    if isinstance(exc, HandzooError):
        print(f"handzoo: error: {exc}", file=sys.stderr)
        return 1
    print(
        f"handzoo: error: {type(exc).__name__}: {exc} (run with --debug for the traceback)",
        file=sys.stderr,
    )
    return 1
