"""handzoo: a plugin-based model zoo for 3D hand pose estimation from single RGB images.

The public API (shapes, units and joint order are documented on each function)::

    import handzoo
    handzoo.list_models("resnet*")               # ['resnet18', ..., 'resnet152']
    model = handzoo.create_model("resnet101")    # images (B,3,H,W) -> HandOutput
    out = model(images)                          # out.joints3d: (B,21,3) metres,
                                                 # root-relative, canonical order

Heavy libraries (torch, timm, albumentations) are imported only when a
function needs them, so ``import handzoo`` and ``handzoo list`` stay fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from handzoo._version import __version__
from handzoo.errors import (
    ConfigError,
    DataError,
    DuplicateNameError,
    HandzooError,
    UnknownNameError,
    UsageError,
)
from handzoo.hookspecs import hookimpl
from handzoo.output import HandOutput
from handzoo.plugins import get_registry

if TYPE_CHECKING:
    from pathlib import Path

    import torch

    from handzoo.inference.predictor import Predictor

__all__ = [
    "ConfigError",
    "DataError",
    "DuplicateNameError",
    "HandOutput",
    "HandzooError",
    "Predictor",
    "UnknownNameError",
    "UsageError",
    "__version__",
    "create_backbone",
    "create_dataset",
    "create_head",
    "create_model",
    "get_registry",
    "hookimpl",
    "list_augmenters",
    "list_backbones",
    "list_datasets",
    "list_detectors",
    "list_heads",
    "list_losses",
    "list_metrics",
    "list_models",
]


def list_models(pattern: str | list[str] = "*") -> list[str]:
    """Registered model names matching the fnmatch pattern(s), in natural order."""
    return get_registry().names("model", pattern)


def list_backbones(pattern: str | list[str] = "*") -> list[str]:
    """Registered backbone names matching the fnmatch pattern(s), in natural order."""
    return get_registry().names("backbone", pattern)


def list_heads(pattern: str | list[str] = "*") -> list[str]:
    """Registered head names matching the fnmatch pattern(s), in natural order."""
    return get_registry().names("head", pattern)


def list_augmenters(pattern: str | list[str] = "*") -> list[str]:
    """Registered augmenter names matching the fnmatch pattern(s), in natural order."""
    return get_registry().names("augmenter", pattern)


def list_metrics(pattern: str | list[str] = "*") -> list[str]:
    """Registered metric names matching the fnmatch pattern(s), in natural order."""
    return get_registry().names("metric", pattern)


def list_datasets(pattern: str | list[str] = "*") -> list[str]:
    """Registered dataset names matching the fnmatch pattern(s), in natural order."""
    return get_registry().names("dataset", pattern)


def list_losses(pattern: str | list[str] = "*") -> list[str]:
    """Registered joint-loss names matching the fnmatch pattern(s), in natural order."""
    return get_registry().names("loss", pattern)


def list_detectors(pattern: str | list[str] = "*") -> list[str]:
    """Registered hand-detector names matching the fnmatch pattern(s), in natural order."""
    return get_registry().names("detector", pattern)


def create_model(
    name: str | None = None, pretrained: bool = False, weights: str | Path | None = None, **overrides: Any
) -> torch.nn.Module:
    """Build a registered model, with published (``pretrained``/``NAME:TAG``) or given ``weights``.

    See :func:`handzoo.builder.create_model`: the one place that composes models and loads weights.
    """
    from handzoo.builder import create_model as _create_model

    return _create_model(name, pretrained=pretrained, weights=weights, **overrides)


def create_backbone(name: str, **overrides: Any) -> torch.nn.Module:
    """Build a registered backbone: images (B,3,H,W) -> features (B,C,h,w)."""
    from handzoo.builder import create_backbone as _create_backbone

    return _create_backbone(name, **overrides)


def create_head(name: str, in_features: int, **overrides: Any) -> torch.nn.Module:
    """Build a registered head: features (B,C,h,w) -> :class:`HandOutput`."""
    from handzoo.builder import create_head as _create_head

    return _create_head(name, in_features, **overrides)


def create_dataset(name: str, **kwargs: Any) -> torch.utils.data.Dataset:
    """Build a registered dataset; samples are dicts (see DESIGN: image, joints3d, joints2d, K, index)."""
    from handzoo.builder import checked_build

    return checked_build("dataset", name, **kwargs)


def __getattr__(name: str) -> Any:
    # Predictor pulls in torch: loaded on first use so `import handzoo` stays fast.
    if name == "Predictor":
        from handzoo.inference.predictor import Predictor

        return Predictor
    raise AttributeError(f"module 'handzoo' has no attribute {name!r}")
