"""The ``handzoo`` command line (typer + rich).

Every error a user can cause ends in one line on stderr: usage errors (bad
option, unknown name, invalid ``--set``) exit with code 2, other failures
with 1. ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import json
import sys
import warnings

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
    "loss": "loss",
    "losses": "loss",
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
    version: bool | None = typer.Option(
        None, "--version", callback=_version_callback, is_eager=True, help="Print the version and exit."
    ),
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors."),
) -> None:
    """handzoo: train, evaluate, compare and share 3D hand pose models."""


@app.command("list")
def list_command(
    kind: str | None = typer.Argument(
        None, help="models, backbones, heads, augmenters, metrics, datasets or losses (default: all)."
    ),
    pattern: str = typer.Argument("*", help="fnmatch pattern, e.g. 'resnet*'."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """List registered models, backbones, heads, augmenters, metrics, datasets or losses."""
    from handzoo.plugins import get_registry
    from handzoo.registry import KINDS

    if kind is not None and kind not in KIND_ALIASES:
        if any(c in kind for c in "*?[") and pattern == "*":
            kind, pattern = None, kind  # `handzoo list 'resnet*'` searches every kind
        else:
            raise UsageError(
                f"unknown kind {kind!r}; expected one of models, backbones, heads, augmenters, "
                "metrics, datasets, losses"
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
        status = {"loaded": "[green]loaded[/]", "failed": "[red]failed[/]", "refused": "[red]refused[/]"}.get(
            i.status, i.status
        )
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
    data: str | None = typer.Option(None, "--data", help="Dataset name (default: synthetic)."),
    data_root: str | None = typer.Option(None, "--data-root", help="Dataset folder (FreiHAND layout)."),
    epochs: int | None = typer.Option(None, "--epochs", min=1, help="Epochs to train."),
    max_steps: int | None = typer.Option(None, "--max-steps", min=1, help="Optimiser steps to train."),
    batch_size: int | None = typer.Option(None, "--batch-size", min=1, help="Batch size per process."),
    image_size: int | None = typer.Option(None, "--image-size", min=16, help="Input size in pixels."),
    lr: float | None = typer.Option(None, "--lr", help="Base learning rate."),
    device: str | None = typer.Option(None, "--device", help="auto (default), cpu, cuda or cuda:N."),
    workers: int | None = typer.Option(None, "--workers", min=0, help="DataLoader worker processes."),
    out: str | None = typer.Option(None, "--out", help="Run folder (default: runs/MODEL)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out from its checkpoint."),
    force: bool = typer.Option(False, "--force", help="Overwrite a previous run in --out."),
    checkpoint_every: int | None = typer.Option(
        None, "--checkpoint-every", min=1, help="Steps between checkpoints."
    ),
    seed: int | None = typer.Option(None, "--seed", help="Seed of training and augmentation."),
    init: str | None = typer.Option(
        None, "--init", help="Fine-tune from weights: NAME[:TAG] (published), a URL or a .safetensors path."
    ),
    init_head_swap: bool = typer.Option(
        False, "--init-head-swap", help="With --init: let the head's tensors differ (a new head)."
    ),
    config: str | None = typer.Option(None, "--config", help="Start from a config.yaml."),
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
        "model.init": init,
        "model.init_head_swap": init_head_swap or None,
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
        base = None
        if config:
            dumped = RunConfig.from_yaml(config).model_dump(mode="json")
            base = {
                f"{sec}.{k}": v for sec, vals in dumped.items() if sec != "model" for k, v in vals.items()
            }
        cfg, summary = resolve_config(model, flags, list(sets), base)
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


@app.command("eval")
def eval_command(
    model: str | None = typer.Argument(None, help="Model name (default: the one recorded in --weights)."),
    weights: str | None = typer.Option(None, "--weights", help="model.safetensors to evaluate."),
    data: str = typer.Option("freihand", "--data", help="Dataset name."),
    data_root: str | None = typer.Option(None, "--data-root", help="Dataset folder (FreiHAND layout)."),
    split: str = typer.Option("eval", "--split", help="eval, val or train."),
    batch_size: int = typer.Option(64, "--batch-size", min=1),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
    workers: int = typer.Option(2, "--workers", min=0),
    per_joint: bool = typer.Option(False, "--per-joint", help="Also print the PA error of every joint."),
    out: str | None = typer.Option(
        None, "--out", help="Where to write metrics.json (default: beside the weights)."
    ),
    submission: str | None = typer.Option(
        None, "--submission", help="Score a pred.json/.zip instead of a model."
    ),
    write_submission: str | None = typer.Option(
        None, "--write-submission", help="Also write the predictions as a FreiHAND pred.zip."
    ),
    root_depth: float = typer.Option(
        0.7, "--root-depth", help="Wrist depth in metres used to place predictions in a submission."
    ),
) -> None:
    """Metrics of a model on a split (PA-MPJPE, MPJPE, AUC; mesh metrics with vertices) or of a submission."""
    import json as _json
    from pathlib import Path

    console = _console()
    if submission is not None:
        if data_root is None:
            raise UsageError("--submission needs --data-root (the folder with evaluation_xyz.json)")
        from handzoo.submission import score_submission

        scores = score_submission(submission, data_root)
        _print_metrics(console, f"{submission} against {data_root}", scores)
        if out:
            Path(out).write_text(_json.dumps(scores, indent=2) + "\n")
        return
    if weights is None and model is None:
        raise UsageError("give a MODEL and/or --weights FILE (or --submission FILE)")
    if split not in ("train", "val", "eval"):
        raise UsageError(f"--split must be train, val or eval, got {split!r}")
    import torch

    import handzoo
    from handzoo.evaluation import per_joint_table, predict, report, score
    from handzoo.runner.trainer import resolve_device

    dev = resolve_device(device)
    net = handzoo.create_model(model, weights=weights)
    net = net.to(dev).eval()
    kwargs = {
        "split": split,
        "image_size": int(net.preprocessing["input_size"][-1]),
        "augment": [],
        "mean": tuple(net.preprocessing["mean"]),
        "std": tuple(net.preprocessing["std"]),
    }
    if data_root is not None:
        kwargs["root"] = data_root
    dataset = handzoo.create_dataset(data, **kwargs)
    from rich.progress import Progress

    with Progress(console=console, transient=True) as bar:
        task = bar.add_task(f"{data}/{split}", total=len(dataset))
        rows = predict(
            net, dataset, dev, batch_size=batch_size, workers=workers, progress=lambda n: bar.advance(task, n)
        )
    assert rows is not None
    if write_submission:
        from handzoo.submission import place_root_relative
        from handzoo.submission import write_submission as _write

        # Models predict root-relative joints: scale them to the split's bone
        # length and put the wrist on the optical axis. PA metrics ignore both.
        placed = place_root_relative(
            rows["pred"].double(),
            torch.eye(3).expand(len(rows["pred"]), 3, 3),
            scale=_dataset_scale(dataset),
            root_depth=root_depth,
        )
        _write(write_submission, placed, rows.get("pred_verts"))
        console.print(f"wrote {write_submission} ({len(placed)} predictions)")
    if "gt" not in rows:
        if not write_submission:
            raise UsageError(
                f"{data}/{split} has no ground truth here; pass --write-submission pred.zip to write "
                "predictions for the official server"
            )
        return
    metrics = report(score(rows, dev))
    metrics["num_samples"] = int(rows["gt"].shape[0])
    _print_metrics(console, f"{getattr(net, 'handzoo_name', model)} on {data}/{split}", metrics)
    if per_joint:
        from rich.table import Table

        table = Table(box=None, title="PA error per joint (mm)")
        table.add_column("joint")
        table.add_column("mm", justify="right")
        for name, mm in per_joint_table(rows):
            table.add_row(name, f"{mm:.2f}")
        console.print(table)
    target = Path(out) if out else (Path(weights).parent if weights else Path(".")) / "metrics.json"
    if target.is_dir():
        target = target / "metrics.json"
    if weights and not out and target.exists():
        target = target.with_name(f"metrics_{data}_{split}.json")
    target.write_text(_json.dumps(metrics, indent=2) + "\n")
    console.print(f"wrote {target}")


def _dataset_scale(dataset):
    """Per-item FreiHAND bone scale (metres) when the dataset has it, else None."""
    import numpy as np

    scale = getattr(dataset, "scale", None)
    if scale is None or not hasattr(dataset, "annotation_index"):
        return None
    return np.asarray(scale, dtype=float).reshape(-1)[
        [dataset.annotation_index(i) for i in range(len(dataset))]
    ]


def _print_metrics(console, title: str, metrics: dict) -> None:
    from rich.table import Table

    table = Table(box=None, title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for k, v in metrics.items():
        table.add_row(k, f"{v:.4f}" if isinstance(v, float) else str(v))
    console.print(table)


@app.command("synth")
def synth_command(
    out: str = typer.Option(..., "--out", help="Folder to write (FreiHAND layout)."),
    num: int = typer.Option(1000, "--num", min=1, help="Training images (one version)."),
    num_eval: int = typer.Option(0, "--num-eval", min=0, help="Evaluation images (with ground truth)."),
    seed: int = typer.Option(0, "--seed", help="Random seed: the same seed gives the same bytes."),
    workers: int = typer.Option(0, "--workers", min=0, help="Processes (0: one per CPU core)."),
) -> None:
    """Write synthetic hands in the official FreiHAND layout (readable by --data freihand)."""
    import os
    from pathlib import Path

    from handzoo.data.synthetic import generate_freihand

    target = Path(out)
    if target.exists() and any(target.iterdir()):
        raise UsageError(f"{target} exists and is not empty; choose another --out")
    path = generate_freihand(
        target, num=num, seed=seed, num_eval=num_eval, workers=workers or (os.cpu_count() or 1), progress=True
    )
    _console().print(f"wrote {num} training and {num_eval} evaluation samples to {path}")


@app.command("zoo")
def zoo_command(
    pattern: str = typer.Argument("*", help="fnmatch pattern over model names."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """List the catalogue (zoo.yaml or $HANDZOO_ZOO): architectures, recipes, references, weights."""
    import fnmatch

    from handzoo.zoo import load_zoo, zoo_source

    zoo = load_zoo()
    names = [n for n in zoo.architectures if fnmatch.fnmatchcase(n, pattern)]
    if as_json:
        typer.echo(json.dumps({n: zoo.architectures[n].model_dump(mode="json") for n in names}, indent=2))
        return
    from rich.table import Table

    table = Table(box=None, title=f"handzoo catalogue ({zoo_source()})")
    for col in ("model", "recipe", "reported PA-MPJPE", "weights", "description"):
        table.add_column(col, overflow="fold")
    for n in names:
        a = zoo.architectures[n]
        refs = ", ".join(f"{r.value:g} mm ({r.source})" for r in a.references) or "-"
        weights = ", ".join(w.tag for w in a.weights) or "-"
        table.add_row(n, a.recipe or "-", refs, weights, a.description)
    _console().print(table)


# Commands defined in their own modules (each has ``register(app)``).
COMMAND_MODULES: tuple[str, ...] = ("handzoo.commands.zoo_commands", "handzoo.commands.inference_commands")


def _register_command_modules() -> None:
    import importlib

    for name in COMMAND_MODULES:
        importlib.import_module(name).register(app)


_register_command_modules()


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
