"""curves.png: training loss and validation PA-MPJPE against the optimiser step."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def plot_curves(history: list[dict[str, Any]], path: str | Path, title: str = "") -> Path:
    """Two panels: train loss (log scale) and val PA-MPJPE in mm, both against ``step``.

    Args:
        history: rows of history.jsonl (``step`` plus ``loss`` and/or ``val_pa_mpjpe_mm``).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train = [(r["step"], r["loss"]) for r in history if "loss" in r]
    val = [(r["step"], r["val_pa_mpjpe_mm"]) for r in history if "val_pa_mpjpe_mm" in r]
    baseline = next((r["baseline_pa_mpjpe_mm"] for r in history if "baseline_pa_mpjpe_mm" in r), None)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8), dpi=100)
    if train:
        ax1.plot(*zip(*train, strict=True), lw=1.2, color="#1f77b4")
        ax1.set_yscale("log")
    ax1.set(xlabel="step", ylabel="train loss", title="loss")
    ax1.grid(alpha=0.3)
    if val:
        ax2.plot(*zip(*val, strict=True), marker="o", lw=1.5, color="#d62728", label="model")
    if baseline is not None:
        ax2.axhline(baseline, ls="--", color="grey", label="constant baseline")
    ax2.set(xlabel="step", ylabel="PA-MPJPE (mm)", title="validation PA-MPJPE")
    ax2.grid(alpha=0.3)
    if val or baseline is not None:
        ax2.legend(loc="upper right")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path
