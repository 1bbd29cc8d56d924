"""The ``handzoo`` command line (typer + rich).

Every error a user can cause ends in one line on stderr: usage errors (bad
option, unknown name, invalid ``--set``) exit with code 2, other failures
with 1. ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import json
import sys
import warnings
from typing import Optional

import typer

from handzoo._version import __version__
from handzoo.errors import HandzooError, UsageError

app = typer.Typer(
    name="handzoo",
    help="A plugin-based model zoo for 3D hand pose estimation from single RGB images.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)

KIND_ALIASES = {
    "model": "model",
    "models": "model",
    "backbone": "backbone",
    "backbones": "backbone",
    "head": "head",
    "heads": "head",
    "augmenter": "augmenter",
    "augmenters": "augmenter",
    "metric": "metric",
    "metrics": "metric",
    "dataset": "dataset",
    "datasets": "dataset",
}


def _console(stderr: bool = False):
    from rich.console import Console

    console = Console(stderr=stderr, soft_wrap=False)
    if not console.is_terminal:  # pipes and logs: do not wrap tables at 80 columns
        console.width = 200
    return console


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"handzoo {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Optional[bool] = typer.Option(  # noqa: UP045 (typer reads the annotation)
        None, "--version", callback=_version_callback, is_eager=True, help="Print the version and exit."
    ),
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors."),
) -> None:
    """handzoo: train, evaluate, compare and share 3D hand pose models."""


@app.command("list")
def list_command(
    kind: Optional[str] = typer.Argument(  # noqa: UP045
        None, help="models, backbones, heads, augmenters, metrics or datasets (default: all)."
    ),
    pattern: str = typer.Argument("*", help="fnmatch pattern, e.g. 'resnet*'."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """List registered names, e.g. `handzoo list models 'resnet*'`."""
    from handzoo.plugins import get_registry
    from handzoo.registry import KINDS

    if kind is not None and kind not in KIND_ALIASES:
        if any(c in kind for c in "*?[") and pattern == "*":
            kind, pattern = None, kind  # `handzoo list 'resnet*'` searches every kind
        else:
            raise UsageError(
                f"unknown kind {kind!r}; expected one of models, backbones, heads, augmenters, "
                "metrics, datasets"
            )
    kinds = [KIND_ALIASES[kind]] if kind else list(KINDS)
    registry = get_registry()
    entries = [e for k in kinds for e in registry.entries(k, pattern)]
    if as_json:
        typer.echo(json.dumps([e.to_json() for e in entries], indent=2))
        return
    from rich.table import Table

    table = Table(title=None, show_lines=False, box=None, pad_edge=False)
    if len(kinds) > 1:
        table.add_column("kind", style="cyan")
    for col in ("name", "plugin", "description"):
        table.add_column(col, style="bold" if col == "name" else None, overflow="fold")
    for e in entries:
        row = [e.name, e.plugin, e.description]
        table.add_row(*([e.kind, *row] if len(kinds) > 1 else row))
    console = _console()
    if entries:
        console.print(table)
    else:
        console.print(f"no {' or '.join(k + 's' for k in kinds)} match {pattern!r}")


@app.command("plugins")
def plugins_command(
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Show the plugins found: name, version, hooks, what they registered, errors."""
    from handzoo.plugins import get_host

    infos = list(get_host().plugins.values())
    if as_json:
        typer.echo(json.dumps([i.to_json() for i in infos], indent=2))
        return
    from rich.table import Table

    table = Table(box=None, pad_edge=False)
    for col in ("plugin", "distribution", "version", "status", "hooks", "registered", "errors"):
        table.add_column(col, overflow="fold")
    for i in infos:
        status = {"loaded": "[green]loaded[/]", "failed": "[red]failed[/]"}.get(i.status, i.status)
        table.add_row(
            i.name + (" (first-party)" if i.first_party else ""),
            i.distribution or "-",
            i.version or "-",
            status,
            ", ".join(h.removeprefix("register_") for h in i.hooks) or "-",
            ", ".join(f"{n} {k}" + ("s" if n != 1 else "") for k, n in i.registered.items()) or "-",
            "; ".join(i.errors) or "",
        )
    _console().print(table)


@app.command("run")
def run_command(
    model: str = typer.Argument(..., help="A registered model, e.g. resnet101 (`handzoo list models`)."),
    data: Optional[str] = typer.Option(None, "--data", help="Dataset name (default: synthetic)."),  # noqa: UP045
    data_root: Optional[str] = typer.Option(None, "--data-root", help="Dataset folder (FreiHAND layout)."),  # noqa: UP045
    epochs: Optional[int] = typer.Option(None, "--epochs", min=1, help="Epochs to train."),  # noqa: UP045
    max_steps: Optional[int] = typer.Option(None, "--max-steps", min=1, help="Optimiser steps to train."),  # noqa: UP045
    batch_size: Optional[int] = typer.Option(None, "--batch-size", min=1, help="Batch size per process."),  # noqa: UP045
    image_size: Optional[int] = typer.Option(None, "--image-size", min=16, help="Input size in pixels."),  # noqa: UP045
    lr: Optional[float] = typer.Option(None, "--lr", help="Base learning rate."),  # noqa: UP045
    device: Optional[str] = typer.Option(None, "--device", help="auto (default), cpu, cuda or cuda:N."),  # noqa: UP045
    workers: Optional[int] = typer.Option(None, "--workers", min=0, help="DataLoader worker processes."),  # noqa: UP045
    out: Optional[str] = typer.Option(None, "--out", help="Run folder (default: runs/MODEL)."),  # noqa: UP045
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out from its checkpoint."),
    force: bool = typer.Option(False, "--force", help="Overwrite a previous run in --out."),
    checkpoint_every: Optional[int] = typer.Option(  # noqa: UP045
        None, "--checkpoint-every", min=1, help="Steps between checkpoints."
    ),
    seed: Optional[int] = typer.Option(None, "--seed", help="Random seed."),  # noqa: UP045
    config: Optional[str] = typer.Option(None, "--config", help="Start from a config.yaml."),  # noqa: UP045
    sets: list[str] = typer.Option([], "--set", help="Override any config key: --set optim.lr=3e-4."),
) -> None:
    """Train MODEL, evaluate PA-MPJPE and export safetensors weights into --out."""
    from pathlib import Path

    from handzoo.config import RunConfig
    from handzoo.plugins import get_registry
    from handzoo.runner.plan import resolve_config
    from handzoo.runner.trainer import OUTPUT_FILES, Trainer, clean_out_dir

    get_registry().get("model", model)  # an unknown name fails before anything is written
    flags = {
        "data.name": data,
        "data.root": data_root,
        "run.epochs": epochs,
        "run.max_steps": max_steps,
        "data.batch_size": batch_size,
        "data.image_size": image_size,
        "optim.lr": lr,
        "run.device": device,
        "data.workers": workers,
        "run.checkpoint_every": checkpoint_every,
        "run.seed": seed,
    }
    out_dir = Path(out or Path("runs") / model.replace("/", "-"))
    console = _console()
    if resume:
        saved = out_dir / "config.yaml"
        if not saved.exists() or not (out_dir / "checkpoint.pt").exists():
            raise UsageError(
                f"--resume: {out_dir} holds no checkpoint to resume; start the run without --resume"
            )
        cfg = RunConfig.from_yaml(saved)
        if cfg.model.name != model:
            raise UsageError(f"--resume: {out_dir} is a run of {cfg.model.name!r}, not {model!r}")
        keep = {k: v for k, v in flags.items() if v is not None and k in ("run.device", "data.workers")}
        cfg = cfg.with_overrides(keep)
        summary = None
    else:
        existing = [n for n in OUTPUT_FILES if (out_dir / n).exists()]
        if existing and not force:
            raise UsageError(
                f"{out_dir} already holds a run ({', '.join(existing)}); pass --resume to continue it, "
                "--force to overwrite it, or another --out"
            )
        recipe = RunConfig.from_yaml(config).model_dump(mode="json") if config else None
        if recipe:
            recipe = {f"{sec}.{k}": v for sec, vals in recipe.items() for k, v in vals.items()}
        cfg, summary = resolve_config(model, flags, list(sets), recipe)
        if force:
            clean_out_dir(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    trainer = Trainer(cfg, out_dir, resume=resume, console=console)
    if summary and trainer.dist.is_main:
        console.print(f"embedded default (no --data): {summary}")
    result = trainer.run()
    if trainer.dist.is_main:
        _print_run_summary(console, result)


def _print_run_summary(console, result) -> None:
    from rich.table import Table

    table = Table(title=f"{result.out}: {result.steps} steps in {result.seconds / 60:.1f} min", box=None)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for k, v in result.metrics.items():
        table.add_row(k, f"{v:.4g}" if isinstance(v, float) else str(v))
    console.print(table)
    m = result.metrics
    if "pa_mpjpe_mm" in m and "baseline_pa_mpjpe_mm" in m:
        ratio = m["pa_mpjpe_mm"] / m["baseline_pa_mpjpe_mm"]
        console.print(f"PA-MPJPE is {ratio:.2f}x the constant baseline; outputs in {result.out}/")


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
        code = app(args=args, prog_name="handzoo", standalone_mode=False)
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
