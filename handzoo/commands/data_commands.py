"""``handzoo synth``: write the synthetic hands in the official FreiHAND layout."""

from __future__ import annotations

import typer

from handzoo.commands.console import console as _console
from handzoo.errors import UsageError


def synth_command(
    out: str = typer.Option(..., "--out", help="Folder to write (FreiHAND layout)."),
    num: int = typer.Option(1000, "--num", min=1, help="Training images (one version)."),
    num_eval: int = typer.Option(0, "--num-eval", min=0, help="Evaluation images (with ground truth)."),
    seed: int = typer.Option(0, "--seed", help="Random seed: the same seed gives the same bytes."),
    workers: int = typer.Option(0, "--workers", min=0, help="Processes (0: one per CPU core)."),
    generator: str | None = typer.Option(
        None, "--generator", metavar="VERSION",
        help="Generator version: synth3 (default: photo-like skin, rooms, held objects) or synth2.",
    ),
) -> None:
    """Write synthetic hands in the official FreiHAND layout (readable by --data freihand)."""
    import os
    from pathlib import Path

    from handzoo.data.synthetic import GENERATOR_VERSION, generate_freihand

    version = generator or GENERATOR_VERSION
    target = Path(out)
    if target.exists() and any(target.iterdir()):
        raise UsageError(f"{target} exists and is not empty; choose another --out")
    path = generate_freihand(
        target, num=num, seed=seed, num_eval=num_eval, workers=workers or (os.cpu_count() or 1),
        progress=True, version=version,
    )
    _console().print(f"wrote {num} training and {num_eval} evaluation samples ({version}) to {path}")


def register(app: typer.Typer) -> None:
    app.command("synth")(synth_command)
