"""Load exported weights (safetensors only: loading never executes pickled code).

A ``model.safetensors`` written by ``handzoo run`` carries in its header the
model name and the fully resolved run config, so :func:`load_model_from_weights`
rebuilds the exact architecture (options and input size) before loading.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from handzoo.errors import DataError, UsageError


def read_metadata(path: str | Path) -> dict[str, str]:
    """The string metadata in a safetensors header."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise UsageError(f"weights file {path} does not exist")
    if path.suffix not in (".safetensors",):
        raise UsageError(f"{path}: handzoo loads weights from .safetensors files only (never pickles)")
    try:
        with safe_open(str(path), framework="pt") as f:
            return dict(f.metadata() or {})
    except (SafetensorError, OSError, ValueError) as exc:
        raise DataError(f"{path}: not a readable safetensors file ({exc})") from exc


def model_options(metadata: dict[str, str]) -> tuple[str | None, dict[str, Any]]:
    """(model name, create_model options) recorded by ``handzoo run``."""
    name = metadata.get("model")
    options: dict[str, Any] = {}
    if "config" in metadata:
        cfg = json.loads(metadata["config"])
        options.update(cfg.get("model", {}).get("options", {}))
        size = cfg.get("data", {}).get("image_size")
        if size is not None:
            options.setdefault("image_size", size)
    return name, options


def load_weights(model: torch.nn.Module, path: str | Path, strict: bool = True) -> torch.nn.Module:
    """Load a safetensors file into ``model``; a mismatch names the missing/unexpected keys."""
    from safetensors.torch import load_model

    read_metadata(path)  # clear errors for missing or non-safetensors files
    try:
        missing, unexpected = load_model(model, str(path), strict=False)
    except RuntimeError as exc:  # shape mismatches
        raise UsageError(f"{path} does not fit this model: {str(exc).splitlines()[0]}") from exc
    if strict and (missing or unexpected):
        raise UsageError(
            f"{path} does not fit this model: {len(missing)} missing keys (e.g. {missing[:3]}), "
            f"{len(unexpected)} unexpected (e.g. {unexpected[:3]}); was it exported for another model?"
        )
    return model


def load_model_from_weights(
    path: str | Path, name: str | None = None, **overrides: Any
) -> torch.nn.Module:
    """Rebuild the model recorded in ``path``'s metadata (or ``name``) and load the weights."""
    import handzoo

    recorded, options = model_options(read_metadata(path))
    model_name = name or recorded
    if model_name is None:
        raise UsageError(f"{path} records no model name; pass the model name explicitly")
    if name is not None and recorded is not None and name != recorded:
        raise UsageError(f"{path} holds weights of {recorded!r}, not {name!r}")
    from handzoo.builder import accepted_options
    from handzoo.plugins import get_registry

    accepted = accepted_options(get_registry().get("model", model_name))
    if accepted is not None:
        options = {k: v for k, v in options.items() if k in accepted}
    options.update(overrides)
    model = handzoo.create_model(model_name, **options)
    return load_weights(model, path)
