"""Exported weights (model.safetensors with metadata) and the model card."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from handzoo import joints
from handzoo._version import __version__


def weights_metadata(
    model_name: str, config: dict[str, Any], preprocessing: dict[str, Any], metrics: dict[str, Any]
) -> dict[str, str]:
    """String metadata stored in the safetensors header (safetensors allows str -> str only)."""
    return {
        "format": "pt",
        "handzoo_version": __version__,
        "model": model_name,
        "config": json.dumps(config, sort_keys=True),
        "joint_order": json.dumps(list(joints.CANONICAL)),
        "units": "metres, root-relative, camera axes",
        "input_size": json.dumps(list(preprocessing["input_size"])),
        "mean": json.dumps(list(preprocessing["mean"])),
        "std": json.dumps(list(preprocessing["std"])),
        "metrics": json.dumps(metrics, sort_keys=True),
    }


def export_weights(model: torch.nn.Module, path: str | Path, metadata: dict[str, str]) -> Path:
    """Save ``model``'s state dict as safetensors (shared tensors de-duplicated, contiguous)."""
    from safetensors.torch import save_model

    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    save_model(model, str(tmp), metadata=metadata)
    tmp.replace(path)
    return path


def read_metadata(path: str | Path) -> dict[str, str]:
    """The header metadata of a safetensors file."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        return dict(f.metadata() or {})


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
        "",
        "## Training",
        "",
        f"- data: `{data['name']}`"
        + (f" at `{data['root']}`" if data.get("root") else "")
        + f", {data['image_size']} px, augmentation: {', '.join(data['augment']) or 'none'}",
        f"- optimiser: {optim['name']}, lr {optim['lr']:g}, {optim['schedule']} schedule, "
        f"warm-up {optim['warmup_steps']} steps",
        f"- loss terms (weight): {_describe_loss_terms(optim.get('loss_terms') or {}) or optim['loss']}",
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
        "## Use",
        "",
        "```python",
        "import handzoo",
        "from safetensors.torch import load_model",
        f"model = handzoo.create_model({model_name!r})",
        'load_model(model, "model.safetensors")',
        "```",
        "",
    ]
    path = Path(path)
    path.write_text("\n".join(lines))
    return path
