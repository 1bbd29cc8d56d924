"""The model card (MODEL_CARD.md) of a run; the weights file itself is :mod:`handzoo.weights`' job."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from handzoo._version import __version__
from handzoo.files import write_text_atomic


def _describe_loss_terms(terms: dict[str, Any]) -> str:
    """``joints: l1_pa (pa_weight=1) x1; pose_prior x0.0001`` from ``optim.loss_terms``."""
    parts = []
    for name, value in terms.items():
        if isinstance(value, dict):
            opts = {k: v for k, v in value.items() if k not in ("loss", "weight")}
            shown = ", ".join(f"{k}={v}" for k, v in opts.items())
            label = f"{name}: {value.get('loss')}" + (f" ({shown})" if shown else "")
            parts.append(f"{label} x{value.get('weight', 1):g}")
        else:
            parts.append(f"{name} x{value:g}")
    return "; ".join(parts)


def _baseline_verdict(metrics: dict[str, Any]) -> list[str]:
    """A plain sentence on whether the model beats the constant pose (lines for the card)."""
    pa, base = metrics.get("pa_mpjpe_mm"), metrics.get("baseline_pa_mpjpe_mm")
    if not isinstance(pa, (int, float)) or not isinstance(base, (int, float)) or base <= 0:
        return []
    ratio = pa / base
    if ratio >= 1.0:
        return [
            f"**This model does not beat the constant pose** ({pa:.2f} mm against {base:.2f} mm, "
            f"{ratio:.2f}x): it has not learned finger articulation yet.",
            "",
        ]
    return [f"PA-MPJPE is {ratio:.2f}x the constant pose's.", ""]


def _start_lines(model: dict[str, Any], optim: dict[str, Any]) -> list[str]:
    """Where training started, what stayed frozen and the blend back toward the start (card lines)."""
    lines = []
    if model.get("init"):
        source = f"`{model['init']}`"
    elif model.get("pretrained"):
        source = f"`{model['name']}`'s pretrained weights"
    else:
        source = None
    if source:
        lines.append(f"- started from {source}; its weights' licence applies to this model too")
    if optim.get("freeze"):
        lines.append(f"- frozen (not trained): {', '.join(f'`{p}`' for p in optim['freeze'])}")
    share = model.get("init_blend")
    if share is not None and share < 1:
        lines.append(
            f"- exported weights: {100 * share:g} % fine-tuned, {100 * (1 - share):g} % the starting weights "
            "(`model.init_blend`, a weight-space ensemble as in WiSE-FT); the metrics below are the blend's"
        )
    return lines


def write_model_card(
    path: str | Path,
    model_name: str,
    config: dict[str, Any],
    metrics: dict[str, Any],
    device: str,
    seconds: float,
    steps: int,
) -> Path:
    """A short Markdown card: what the model is, how it was trained, what it scored."""
    data, optim = config["data"], config["optim"]
    lines = [
        f"# {model_name} (handzoo {__version__})",
        "",
        "3D hand pose from a single RGB image: 21 joints, metres, root-relative,",
        "canonical FreiHAND/OpenPose order (see `handzoo.joints.CANONICAL`).",
        f"Input: RGB images of {data['image_size']} x {data['image_size']} px, normalised with the mean/std",
        "recorded in the weights' header.",
        "",
        "## Training",
        "",
        f"- data: `{data['name']}`"
        + (f" at `{data['root']}`" if data.get("root") else "")
        + f", {data['image_size']} px, augmentation: {', '.join(data['augment']) or 'none'}",
        f"- optimiser: {optim['name']}, lr {optim['lr']:g}, {optim['schedule']} schedule, "
        f"warm-up {optim['warmup_steps']} steps",
        f"- loss terms (weight): {_describe_loss_terms(optim.get('loss_terms') or {}) or optim['loss']}",
        *_start_lines(config["model"], optim),
        f"- {steps} steps of batch {data['batch_size']} on {device} in {seconds / 60:.1f} min",
        "",
        "## Validation metrics",
        "",
        "| metric | value |",
        "|---|---|",
    ]
    lines += [f"| {k} | {v:.4g} |" if isinstance(v, float) else f"| {k} | {v} |" for k, v in metrics.items()]
    lines += [
        "",
        "`baseline_pa_mpjpe_mm` is the best constant prediction under PA alignment",
        "(the Procrustes mean of the training poses).",
        "",
        *_baseline_verdict(metrics),
        "## Use",
        "",
        "```python",
        "import handzoo",
        'model = handzoo.create_model(weights="model.safetensors")  # rebuilt from the header, checked',
        "```",
        "",
    ]
    return write_text_atomic(path, "\n".join(lines), "model card")
