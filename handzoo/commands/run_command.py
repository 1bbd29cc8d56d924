"""``handzoo run``: train, evaluate and export one model with its uniform recipe."""

from __future__ import annotations

import typer

from handzoo.commands.console import console as _console
from handzoo.errors import UsageError


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
    sets: list[str] = typer.Option(
        [],
        "--set",
        help="Override any config key, e.g. --set optim.lr=3e-4; repeat for more.",
    ),
) -> None:
    """Train MODEL, evaluate PA-MPJPE and export safetensors weights into --out."""
    from pathlib import Path

    from handzoo.plugins import get_registry
    from handzoo.runner.lock import run_folder_lock
    from handzoo.runner.trainer import Trainer

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
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"--out {out_dir} is a file, not a folder; choose another --out")
    console = _console()
    # Folders this run creates (out_dir and missing parents): a run that fails before writing
    # anything removes them again.
    created = [p for p in (out_dir, *out_dir.parents) if not p.exists()]
    out_dir.mkdir(parents=True, exist_ok=True)
    # Checks and clean-up happen under the lock: a second run into this folder stops here.
    with run_folder_lock(out_dir, f"handzoo run {model}", created):
        cfg, summary = _resolve(model, flags, sets, config, out_dir, resume, force)
        trainer = Trainer(cfg, out_dir, resume=resume, console=console)
        if summary and trainer.dist.is_main:
            console.print(f"embedded default (no --data): {summary}")
        result = trainer.run()
    if trainer.dist.is_main:
        _print_run_summary(console, result)


def _resolve(model, flags, sets, config, out_dir, resume: bool, force: bool):
    """(the run's config, the embedded-data note or None); cleans ``out_dir`` for ``--force``."""
    from handzoo.builder import checked_build
    from handzoo.config import RunConfig
    from handzoo.plugins import get_registry
    from handzoo.runner.lock import is_main_process
    from handzoo.runner.plan import resolve_config
    from handzoo.runner.trainer import OUTPUT_FILES, clean_out_dir

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
        return cfg.with_overrides(keep), None
    if not is_main_process():  # the folder is rank 0's: it checks and cleans it, under the lock
        return resolve_config(model, flags, list(sets), _config_base(config))
    existing = [n for n in OUTPUT_FILES if (out_dir / n).exists() or (out_dir / n).is_symlink()]
    if existing and not force:
        raise UsageError(
            f"{out_dir} already holds a run ({', '.join(existing)}); pass --resume to continue it, "
            "--force to overwrite it, or another --out"
        )
    cfg, summary = resolve_config(model, flags, list(sets), _config_base(config))
    # Names of other kinds fail before anything is written, with suggestions.
    checked_build("loss", cfg.optim.loss, **cfg.optim.loss_cfg)  # its options too (cheap)
    entry = get_registry().get("dataset", cfg.data.name)
    if cfg.data.root is not None and "root" not in entry.default_cfg:
        folder_sets = [e.name for e in get_registry().entries("dataset") if "root" in e.default_cfg]
        raise UsageError(
            f"--data-root is given, but dataset {cfg.data.name!r} is not read from a folder; "
            f"add --data {' or --data '.join(folder_sets) or 'NAME'} to read {cfg.data.root}"
        )
    if force:
        clean_out_dir(out_dir)
    return cfg, summary


def _config_base(config: str | None) -> dict | None:
    """``--config FILE`` as dotted overrides (every section but the model)."""
    if not config:
        return None
    from handzoo.config import RunConfig

    dumped = RunConfig.from_yaml(config).model_dump(mode="json")
    return {f"{sec}.{k}": v for sec, vals in dumped.items() if sec != "model" for k, v in vals.items()}


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


def register(app: typer.Typer) -> None:
    app.command("run")(run_command)
