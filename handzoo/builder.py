"""The one place that builds registered objects and loads weights into models.

``create_model(name, pretrained=False, weights=None, **overrides)`` composes a
model and, when asked, loads weights from (in this order of resolution):

* ``pretrained=True`` or ``name="NAME:TAG"``: the catalogue's published weights
  (downloaded and verified by :mod:`handzoo.zoo.hub`);
* ``weights=`` a local ``.safetensors`` path or ``file://`` URL (used in place,
  so a local file always works offline), an ``http(s)://``, ``hf://`` or
  ``pypi:`` URL (downloaded into the cache; verified by the catalogue's sha256
  when the URL is listed there, and converted when the catalogue's file is in
  another format), or a zoo tag (``weights="freihand"``).

A weight file written by handzoo rebuilds its own architecture (options and
input size from its header), and what the model was built with
(``handzoo_metadata``, e.g. the hand layer) must match what the file records.
The CLI, :class:`handzoo.Predictor`, the leaderboard, ``eval``, ``publish``
and ``run --init`` all come through here. The hub only downloads and
verifies; :mod:`handzoo.weights` only reads and writes files.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

from handzoo.errors import UsageError
from handzoo.plugins import get_registry
from handzoo.registry import at_input_size, keyword_options
from handzoo.zoo.schema import parse_ref

if TYPE_CHECKING:
    import torch


def checked_build(kind: str, name: str, *args: Any, **overrides: Any) -> Any:
    """Build ``name`` of ``kind``; an unknown option raises :class:`ConfigError` listing the valid ones."""
    return get_registry().get(kind, name).build(name, *args, **overrides)


# ----------------------------------------------------------------------------- weight sources
def _is_url(text: str) -> bool:
    return urlparse(text).scheme in ("http", "https", "hf", "file", "pypi")


def _is_local(weights: str | Path) -> bool:
    """A file path rather than a zoo tag: a Path, an existing file, or text with a separator or suffix."""
    if isinstance(weights, Path):
        return True
    text = str(weights)
    if _is_url(text):
        return False
    return Path(text).expanduser().exists() or "/" in text or "\\" in text or text.endswith(".safetensors")


def resolve_weights(
    name: str | None, weights: str | Path | None, pretrained: bool
) -> tuple[Path | None, str]:
    """(verified local path or None, a label such as ``resnet18:freihand`` or the file path)."""
    from handzoo.pull import pull
    from handzoo.zoo import hub

    if weights is not None and pretrained:
        raise UsageError("pass either weights=... or pretrained=True, not both")
    tag = None
    if name is not None:
        name, tag = parse_ref(name)
    if weights is None and (pretrained or tag is not None):
        if name is None:
            raise UsageError("pretrained=True needs a model name")
        get_registry().get("model", name)  # an unknown name fails with suggestions before any download
        entry, path = pull(f"{name}:{tag}" if tag else name)
        return path, f"{name}:{entry.tag}"
    if weights is None:
        return None, ""
    text = str(weights)
    if _is_local(weights):
        return Path(text).expanduser(), text
    if _is_url(text):
        parsed = urlparse(text)
        if parsed.scheme == "file":
            return Path(unquote(parsed.path)), text
        found = hub.find_url(text)
        if found is not None and not found[1].file_name.endswith(".safetensors"):
            return pull(f"{found[0]}:{found[1].tag}")[1], text  # converted once by the model's converter
        known = found[1] if found is not None else None
        return hub.fetch(text, known.sha256 if known else None, size=known.size if known else None), text
    if name is None:
        raise UsageError(f"weights={text!r} looks like a zoo tag; give the model name too (NAME:{text})")
    get_registry().get("model", name)
    entry, path = pull(f"{name}:{text}")
    return path, f"{name}:{entry.tag}"


# ----------------------------------------------------------------------------- models
def create_model(
    name: str | None = None,
    pretrained: bool = False,
    weights: str | Path | None = None,
    **overrides: Any,
) -> torch.nn.Module:
    """Build a registered model, optionally with weights.

    Args:
        name: a registered model name (``handzoo list models``), a template
            match such as ``timm/convnext_tiny``, or ``NAME:TAG`` for published
            weights. May be None when ``weights`` is a handzoo weight file
            (its header names the model).
        pretrained: load the catalogue's published weights for ``name``.
        weights: a ``.safetensors`` path, a ``file://``, ``http(s)://`` or
            ``hf://`` URL, or a zoo tag of ``name``.
        **overrides: options of the model's factory (e.g. ``head="mano"``,
            ``image_size=64``); with weights they change the recorded architecture.

    Returns:
        An ``nn.Module`` mapping normalised images (B,3,H,W) to a
        :class:`handzoo.HandOutput` whose ``joints3d`` is (B,21,3) metres,
        root-relative, canonical order. ``handzoo_name`` is the model name and,
        with weights, ``handzoo_weights`` says which.

    Raises:
        UnknownNameError: an unregistered name (with the closest names).
        UsageError: weights that do not fit the model (shapes, keys, or a
            different ``handzoo_metadata``, e.g. another hand layer).
    """
    path, label = resolve_weights(name, weights, pretrained)
    if path is None:
        if name is None:
            raise UsageError("create_model needs a model name (or weights= a handzoo weight file)")
        model = checked_build("model", name, **overrides)
        model.handzoo_name = name
        return model
    from handzoo import weights as weight_files

    meta = weight_files.read_metadata(path)
    recorded, options = weight_files.model_options(meta, path)
    model_name = parse_ref(name)[0] if name is not None else recorded
    if model_name is None:
        raise UsageError(f"{path} records no model name; pass the model name explicitly")
    if recorded is not None and recorded != model_name:
        raise UsageError(f"{path} holds weights of {recorded!r}, not {model_name!r}")
    accepted = keyword_options(get_registry().get("model", model_name).factory)
    # The allow-list: no header option may download, read a file or ask for a huge input.
    recorded_options = {k: v for k, v in options.items() if k not in overrides}  # yours are not checked
    options = {**weight_files.header_options(recorded_options, accepted, path), **overrides}
    model = checked_build("model", model_name, **options)
    check_build(model, weight_files.build_record(meta, path), path)
    weight_files.load_tensors(model, weight_files.read_tensors(path), path)
    model.handzoo_name = model_name
    model.handzoo_weights = label
    # The run that wrote the weights, as recorded: scoring rebuilds that run's dataset split from it.
    model.handzoo_run_config = weight_files.run_config(meta, path)
    return model


def load_weights(model: Any, weights: str | Path) -> str:
    """Load a weights file (a path, URL or ``file://``; verified like any download) into the module
    ``model``, every key and shape checked; returns the weights' label."""
    from handzoo import weights as weight_files

    path, label = resolve_weights(None, weights, False)
    assert path is not None
    weight_files.load_tensors(model, weight_files.read_tensors(path), path)
    return label


def create_model_at_size(
    name: str, image_size: int, pretrained: bool = False, **options: Any
) -> torch.nn.Module:
    """:func:`create_model` at ``image_size`` pixels when the model's factory takes an input size
    (and ``options`` do not set one); other models are built as they are."""
    sized = at_input_size(get_registry().get("model", name).factory, options, image_size)
    return create_model(name, pretrained=pretrained, **sized)


def check_build(model: Any, recorded: dict[str, Any], source: str | Path, skip: tuple[str, ...] = ()) -> None:
    """Refuse weights whose recorded ``build`` differs from what ``model`` was built with.

    Only keys both sides know are compared (files from before the ``build``
    field record nothing and pass).
    """
    from handzoo.interfaces import part_metadata

    built = part_metadata(model)
    differ = {
        k: (recorded[k], built[k])
        for k in sorted(set(recorded) & set(built))
        if k not in skip and json.dumps(recorded[k], sort_keys=True) != json.dumps(built[k], sort_keys=True)
    }
    if differ:
        found = ", ".join(f"{k}={b!r}" for k, (_, b) in differ.items())
        expected = ", ".join(f"{k}={r!r}" for k, (r, _) in differ.items())
        hint = ""
        if "hand_model" in differ:
            hint = (
                f"; build the model with head_cfg={{'hand_model': {differ['hand_model'][0]!r}}} "
                "(or set/unset HANDZOO_MANO_DIR to match)"
            )
        raise UsageError(f"{source} was trained with {expected}, but this model is built with {found}{hint}")


def init_from(model: Any, ref: str | Path, head_swap: bool = False) -> tuple[str, list[str]]:
    """Fine-tuning start: load ``ref`` (``NAME[:TAG]``, a URL or a path) into ``model`` before training.

    Shapes must match; with ``head_swap`` the ``head.`` tensors may differ or be
    missing (a new head trains from scratch), the source's tensors the model
    does not have are left out (a head on an earlier feature map builds less
    of the trunk) and the head's build record is not compared. Returns (the
    source's label, the keys left at their fresh values or left out).
    """
    from handzoo import weights as weight_files

    if _is_local(ref) or _is_url(str(ref)):
        path, label = resolve_weights(None, ref, False)
    else:
        path, label = resolve_weights(str(ref), None, True)
    assert path is not None
    meta = weight_files.read_metadata(path)
    if not head_swap:
        check_build(model, weight_files.build_record(meta, path), path)
    tensors = weight_files.read_tensors(path)
    skip: tuple[str, ...] = ()
    if head_swap:
        own = model.state_dict()
        skip = ("head.", *(k for k in tensors if k not in own))
    left = weight_files.load_tensors(model, tensors, path, skip)
    return label, left


def create_backbone(name: str, **overrides: Any):
    """Build a registered backbone: normalised images (B,3,H,W) -> features (B,C,h,w)."""
    return checked_build("backbone", name, **overrides)


def create_head(name: str, in_features: int, **overrides: Any):
    """Build a registered head: features (B,in_features,h,w) -> :class:`handzoo.HandOutput`."""
    return checked_build("head", name, in_features, **overrides)
