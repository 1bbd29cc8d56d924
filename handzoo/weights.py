"""Weight files: safetensors only (loading never executes pickled code). Reading, writing, and copying
the tensors into a module with every key, shape, dtype kind and value checked (:func:`load_tensors`).

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
* for weights converted from another format (:mod:`handzoo.pull`),
  where they came from: ``source_url``, ``source_sha256`` (of the file they
  were converted from), ``licence`` and ``provenance`` (a sentence).

Composing a model and loading weights into it is :func:`handzoo.create_model`'s
job (:mod:`handzoo.builder`); downloading is :mod:`handzoo.zoo.hub`'s.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from handzoo import joints
from handzoo._version import __version__
from handzoo.errors import DataError, UsageError
from handzoo.files import json_text, write_atomic

if TYPE_CHECKING:
    import torch

SOURCE_SHA256 = "source_sha256"
PROVENANCE_KEYS = ("source_url", SOURCE_SHA256, "licence", "converter_version", "provenance")


def read_metadata(path: str | Path) -> dict[str, str]:
    """The string metadata in a safetensors header."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if path.is_dir():
        raise UsageError(f"weights file {path} is a folder; give the .safetensors file in it")
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


def run_config(metadata: dict[str, str], path: str | Path = "weights") -> dict[str, Any] | None:
    """The resolved run config a ``handzoo run`` export records (``config``), None for other files.

    Raises:
        DataError: the field is there but not a JSON object.
    """
    cfg = _json_field(metadata, "config", path, None)
    if cfg is not None and not isinstance(cfg, dict):
        raise DataError(f"{path}: header field 'config' is not a JSON object; re-export the weights")
    return cfg


def model_options(
    metadata: dict[str, str], path: str | Path = "weights"
) -> tuple[str | None, dict[str, Any]]:
    """(model name, create_model options) recorded by ``handzoo run``, unchecked.

    Build a model only with what :func:`header_options` keeps of them.
    """
    name = metadata.get("model")
    options: dict[str, Any] = {}
    cfg = run_config(metadata, path) or {}
    model_cfg = cfg.get("model") or {}
    options.update(model_cfg.get("options") or {} if isinstance(model_cfg, dict) else {})
    size = (cfg.get("data") or {}).get("image_size") if isinstance(cfg.get("data"), dict) else None
    if size is not None:
        options.setdefault("image_size", size)
    return name, options


# Words of option names that fetch or read something (``backbone_pretrained``, ``backbone_weights``,
# ``mano_dir``): a weights header may never set such an option to anything but a number (a
# ``drop_path_rate`` is a number, a path is not). The file's own tensors replace whatever the
# option would have loaded, so leaving it out changes nothing about the model.
SIDE_EFFECT_WORDS = frozenset(
    {"pretrained", "weights", "path", "paths", "file", "files", "dir", "url", "urls", "download"}
    | {"checkpoint", "ckpt", "cache", "home"}
)
MAX_HEADER_SIZE = 4096  # image_size and other *size* options a header may record
MAX_HEADER_INT = 1 << 16  # any other integer option (channels, layers, joints)
MAX_HEADER_TEXT = 256  # characters of a text option
MAX_HEADER_ITEMS = 64  # entries of a list or object option


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def has_side_effects(option: str, value: Any) -> bool:
    """Whether ``option = value`` could load or download something: a name with one of
    :data:`SIDE_EFFECT_WORDS` among its ``_``-separated words and a value that is not a number."""
    words = set(re.split(r"[^a-z0-9]+", option.lower()))
    if not words & SIDE_EFFECT_WORDS:
        return False
    if _is_number(value):
        return False
    if isinstance(value, dict):  # e.g. loss_weights: {joints: 1.0}; its own keys are checked inside
        return False
    return not (isinstance(value, list) and all(_is_number(v) for v in value))


def header_options(options: dict[str, Any], accepted: list[str] | None, path: str | Path) -> dict[str, Any]:
    """The architecture options of a weights header that a model may be built with (the allow-list).

    Kept: options the factory accepts (``accepted``; None: any), with JSON
    scalars or lists/objects of them as values, sizes within bounds. Options
    that could fetch or read something (:func:`has_side_effects`), at any depth
    inside an object option, are left out; a value out of bounds is refused in
    one line.

    Raises:
        DataError: an out-of-range size, a huge integer, text or list.
    """
    kept: dict[str, Any] = {}
    for key, value in options.items():
        if accepted is not None and key not in accepted:
            continue
        cleaned = _clean_header_value(key, value, path)
        if cleaned is not _DROP:
            kept[key] = cleaned
    return kept


_DROP = object()


def _clean_header_value(key: str, value: Any, path: str | Path) -> Any:
    """``value`` with side-effect options left out (``_DROP`` for the whole value); bounds checked."""

    def refuse(why: str) -> DataError:
        return DataError(
            f"{path}: header option {key}={str(value)[:60]!r} {why}; the file is damaged or was not "
            "written by handzoo: re-export the weights"
        )

    if has_side_effects(key.rsplit(".", 1)[-1], value):
        return _DROP
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        bound = MAX_HEADER_SIZE if "size" in key.lower() else MAX_HEADER_INT
        if not -bound <= value <= bound:
            raise refuse(f"is out of range (at most {bound})")
        return value
    if isinstance(value, float):
        if value != value or abs(value) == float("inf"):
            raise refuse("is not a finite number")
        return value
    if isinstance(value, str):
        if len(value) > MAX_HEADER_TEXT:
            raise refuse(f"is longer than {MAX_HEADER_TEXT} characters")
        return value
    if isinstance(value, list | dict) and len(value) > MAX_HEADER_ITEMS:
        raise refuse(f"has more than {MAX_HEADER_ITEMS} entries")
    if isinstance(value, list):
        return [_clean_header_value(key, item, path) for item in value]
    if isinstance(value, dict):
        inner = {k: _clean_header_value(f"{key}.{k}", v, path) for k, v in value.items()}
        return {k: v for k, v in inner.items() if v is not _DROP}
    raise refuse(f"has a value of type {type(value).__name__}")


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
        "metrics": json_text(metrics, sort_keys=True),
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


def load_tensors(
    model: Any, tensors: dict[str, torch.Tensor], source: str | Path, skip_prefixes: tuple[str, ...] = ()
) -> list[str]:
    """Copy ``tensors`` into ``model``; every key and shape must match except under ``skip_prefixes``.

    Returns the keys that were skipped (mismatched or missing ones under a
    skipped prefix). A mismatch elsewhere is one line naming the missing,
    unexpected and mis-shaped keys.
    """
    import torch

    own = model.state_dict()
    # safetensors stores a tensor shared by two names once; the model lists both
    stored = {own[k].data_ptr() for k in own if k in tensors and own[k].numel()}
    missing = [k for k in own if k not in tensors and not (own[k].numel() and own[k].data_ptr() in stored)]
    unexpected = [k for k in tensors if k not in own]
    shapes = [k for k in own if k in tensors and tuple(own[k].shape) != tuple(tensors[k].shape)]

    def skipped(key: str) -> bool:
        return any(key.startswith(p) for p in skip_prefixes)

    bad = {
        "missing": [k for k in missing if not skipped(k)],
        "unexpected": [k for k in unexpected if not skipped(k)],
        "shape": [
            f"{k} {tuple(tensors[k].shape)} vs {tuple(own[k].shape)}" for k in shapes if not skipped(k)
        ],
    }
    kinds = [
        f"{k} {str(tensors[k].dtype).removeprefix('torch.')} vs {str(own[k].dtype).removeprefix('torch.')}"
        for k in own
        if k in tensors and k not in shapes and not skipped(k) and not _same_kind(tensors[k], own[k])
    ]
    if kinds:
        bad["dtype"] = kinds
    if any(bad.values()):
        parts = [f"{len(v)} {what} (e.g. {', '.join(v[:3])})" for what, v in bad.items() if v]
        raise UsageError(
            f"{source} does not fit this model: {'; '.join(parts)}; was it exported for another model "
            "or other options?"
        )
    load = {k: v for k, v in tensors.items() if k in own and k not in shapes}
    for key, value in load.items():
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise UsageError(
                f"{source}: tensor {key} holds NaN or infinite values; the weights are damaged "
                "(a run that diverged, or a modified file): use another file"
            )
    with torch.no_grad():
        result = model.load_state_dict(load, strict=False)
    del result  # every key was checked above
    return sorted({*[k for k in missing if skipped(k)], *[k for k in unexpected if skipped(k)], *shapes})


def _same_kind(stored: torch.Tensor, own: torch.Tensor) -> bool:
    """Stored tensors load into floats of any width (float16 files widen exactly) and into
    integers and booleans of exactly their own dtype: a relabelled tensor is refused."""
    if own.is_floating_point() or stored.is_floating_point():
        return own.is_floating_point() and stored.is_floating_point()
    return stored.dtype == own.dtype
