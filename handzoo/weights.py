"""Weight files: safetensors only (loading never executes pickled code). Reads and writes, nothing else.

A ``model.safetensors`` written by ``handzoo run`` carries in its header
(string keys and values, safetensors' rule):

* ``model``: the registered model name; ``config``: the fully resolved run
  config (JSON), whose ``model.options`` and ``data.image_size`` rebuild the
  exact architecture;
* ``build``: what the model was built with (its ``handzoo_metadata``, JSON:
  the hand layer of a MANO head, a plugin's options that change what the
  weights mean), checked when the file is loaded;
* ``joint_order``, ``units``, ``input_size``, ``mean``, ``std``, ``metrics``,
  ``handzoo_version``;
* for weights converted from another format (:mod:`handzoo.zoo.conversion`),
  where they came from: ``source_url``, ``source_sha256`` (of the file they
  were converted from), ``licence`` and ``provenance`` (a sentence).

Composing a model and loading weights into it is :func:`handzoo.create_model`'s
job (:mod:`handzoo.builder`); downloading is :mod:`handzoo.zoo.hub`'s.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from handzoo import joints
from handzoo._version import __version__
from handzoo.errors import DataError, UsageError
from handzoo.files import write_atomic

if TYPE_CHECKING:
    import torch

SOURCE_SHA256 = "source_sha256"
PROVENANCE_KEYS = ("source_url", SOURCE_SHA256, "licence", "converter_version", "provenance")


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


def _json_field(metadata: dict[str, str], key: str, path: str | Path, default: Any) -> Any:
    if key not in metadata:
        return default
    try:
        return json.loads(metadata[key])
    except (TypeError, ValueError) as exc:
        raise DataError(
            f"{path}: header field {key!r} is not valid JSON ({exc}); re-export the weights"
        ) from exc


def model_options(
    metadata: dict[str, str], path: str | Path = "weights"
) -> tuple[str | None, dict[str, Any]]:
    """(model name, create_model options) recorded by ``handzoo run``."""
    name = metadata.get("model")
    options: dict[str, Any] = {}
    cfg = _json_field(metadata, "config", path, {})
    if not isinstance(cfg, dict):
        raise DataError(f"{path}: header field 'config' is not a JSON object; re-export the weights")
    model_cfg = cfg.get("model") or {}
    options.update(model_cfg.get("options") or {} if isinstance(model_cfg, dict) else {})
    size = (cfg.get("data") or {}).get("image_size") if isinstance(cfg.get("data"), dict) else None
    if size is not None:
        options.setdefault("image_size", size)
    return name, options


def build_record(metadata: dict[str, str], path: str | Path = "weights") -> dict[str, Any]:
    """What the weights' model was built with (the ``build`` header field), {} for older files."""
    found = _json_field(metadata, "build", path, {})
    if not isinstance(found, dict):
        raise DataError(f"{path}: header field 'build' is not a JSON object; re-export the weights")
    return found


def weights_metadata(
    model_name: str,
    config: dict[str, Any],
    preprocessing: dict[str, Any],
    metrics: dict[str, Any],
    build: dict[str, Any] | None = None,
    provenance: dict[str, str] | None = None,
) -> dict[str, str]:
    """String metadata for the safetensors header (see the module doc).

    ``provenance`` holds the fields of converted weights (:data:`PROVENANCE_KEYS`).
    """
    unknown = sorted(set(provenance or {}) - set(PROVENANCE_KEYS))
    if unknown:
        raise ValueError(f"provenance fields {unknown} are not among {PROVENANCE_KEYS}")
    return {
        "format": "pt",
        "handzoo_version": __version__,
        "model": model_name,
        "config": json.dumps(config, sort_keys=True),
        "build": json.dumps(build or {}, sort_keys=True),
        "joint_order": json.dumps(list(joints.CANONICAL)),
        "units": "metres, root-relative, camera axes",
        "input_size": json.dumps(list(preprocessing["input_size"])),
        "mean": json.dumps(list(preprocessing["mean"])),
        "std": json.dumps(list(preprocessing["std"])),
        "metrics": json.dumps(metrics, sort_keys=True),
        **{k: str(v) for k, v in (provenance or {}).items()},
    }


def export_weights(
    model: torch.nn.Module, path: str | Path, metadata: dict[str, str], lossless_half: bool = False
) -> Path:
    """Save ``model``'s state dict as safetensors (shared tensors de-duplicated), atomically.

    ``lossless_half``: store as float16 every float32 tensor that float16 holds exactly (weights
    converted from an fp16 file do), halving the file; loading widens them back bit for bit.
    """
    import torch
    from safetensors.torch import save_file, save_model

    if not lossless_half:
        return write_atomic(path, lambda tmp: save_model(model, str(tmp), metadata=metadata), "weights file")
    tensors = {}
    for key, value in model.state_dict().items():
        value = value.detach().cpu().contiguous()
        if value.dtype == torch.float32 and torch.equal(value.half().float(), value):
            value = value.half()
        tensors[key] = value
    return write_atomic(path, lambda tmp: save_file(tensors, str(tmp), metadata=metadata), "weights file")


def read_tensors(path: str | Path) -> dict[str, torch.Tensor]:
    """Every tensor of a safetensors file, on the CPU."""
    from safetensors.torch import load_file

    read_metadata(path)  # clear errors for missing or non-safetensors files
    return load_file(str(path))
