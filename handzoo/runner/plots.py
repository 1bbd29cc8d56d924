"""curves.png: training loss and validation PA-MPJPE against the optimiser step."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from handzoo.files import write_atomic

# Units of the first-party joint losses (on joints in metres); a plugin's loss is named without one.
LOSS_UNITS = {"l1": "m", "smooth_l1": "m", "l1_pa": "m", "l2": "m²"}


def loss_label(loss: str | None, extra_terms: bool = False) -> str:
    """The loss axis label: the loss, its unit when known, and whether a model's own terms add to it."""
    if loss is None:
        return "train loss"
    unit = LOSS_UNITS.get(loss)
    label = f"train loss ({loss}{' + model terms' if extra_terms else ''})"
    return f"{label}, {unit}" if unit and not extra_terms else label


def curves_figure(history: list[dict[str, Any]], title: str = "", loss: str | None = None, extra_terms=False):
    """The figure of :func:`plot_curves` (a matplotlib Figure, Agg canvas)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    train = [(r["step"], r["loss"]) for r in history if "loss" in r]
    checked = [r for r in history if "val_pa_mpjpe_mm" in r]
    val = [(r["step"], r["val_pa_mpjpe_mm"]) for r in checked if "init_blend" not in r]
    # model.init_blend: the exported blend, validated after the last step (its own marker, not the line's end)
    blend = [(r["step"], r["val_pa_mpjpe_mm"], r["init_blend"]) for r in checked if "init_blend" in r]
    baseline = next((r["baseline_pa_mpjpe_mm"] for r in history if "baseline_pa_mpjpe_mm" in r), None)
    fig = Figure(figsize=(10, 3.8), dpi=100)
    FigureCanvasAgg(fig)
    ax1, ax2 = fig.subplots(1, 2)
    if train:
        ax1.plot(*zip(*train, strict=True), lw=1.2, color="#1f77b4")
        ax1.set_yscale("log")
    ax1.set(xlabel="step", ylabel=loss_label(loss, extra_terms), title="loss")
    ax1.grid(alpha=0.3)
    if val:
        ax2.plot(*zip(*val, strict=True), marker="o", lw=1.5, color="#d62728", label="model (validation)")
    for step, value, share in blend[-1:]:
        label = f"exported blend, {100 * share:g} % fine-tuned"
        ax2.plot([step], [value], marker="*", ms=12, ls="none", color="#2ca02c", label=label)
    if baseline is not None:
        ax2.axhline(baseline, ls="--", color="grey", label="constant pose (baseline)")
    ax2.set(xlabel="step", ylabel="PA-MPJPE, mm (lower is better)", title="validation PA-MPJPE")
    ax2.grid(alpha=0.3)
    if val or blend or baseline is not None:
        # Beside the panel, never over the points (the last ones are the ones people read).
        ax2.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8, frameon=False)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_curves(
    history: list[dict[str, Any]],
    path: str | Path,
    title: str = "",
    loss: str | None = None,
    extra_terms: bool = False,
) -> Path:
    """Two panels: train loss (log scale) and val PA-MPJPE in mm, both against ``step``.

    Args:
        history: rows of history.jsonl (``step`` plus ``loss`` and/or ``val_pa_mpjpe_mm``; a row with
            ``init_blend`` is the exported blend's validation, drawn as a star of its own).
        loss: the registered loss's name, shown with its unit on the loss axis.
        extra_terms: a model's own terms (e.g. MANO priors) add to the loss.
    """
    figure = curves_figure(history, title, loss, extra_terms)
    # savefig to a temporary file, then rename: a symlink at ``path`` is replaced, not written through.
    return write_atomic(path, lambda tmp: figure.savefig(tmp, format="png"), "training curves")
