"""Build registered objects from names and keyword overrides, with clear errors."""

from __future__ import annotations

import inspect
from typing import Any

from handzoo.errors import ConfigError
from handzoo.plugins import get_registry
from handzoo.registry import Entry


def accepted_options(entry: Entry) -> list[str] | None:
    """Keyword arguments the entry's factory accepts; None if it takes ``**kwargs``."""
    try:
        params = inspect.signature(entry.factory).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    return [
        p.name
        for p in params
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    ]


def checked_build(kind: str, name: str, *args: Any, **overrides: Any) -> Any:
    """Build ``name`` of ``kind``; an unknown option raises :class:`ConfigError` listing the valid ones."""
    entry = get_registry().get(kind, name)
    allowed = accepted_options(entry)
    if allowed is not None:
        unknown = sorted(set(overrides) - set(allowed))
        if unknown:
            raise ConfigError(
                f"{kind} {name!r} has no option {', '.join(repr(u) for u in unknown)}; "
                f"its options are: {', '.join(a for a in allowed if a not in ('self',)) or 'none'}"
            )
    kwargs = dict(entry.default_cfg)
    if entry.is_template:
        kwargs.update(entry.match_template(name) or {})
    kwargs.update(overrides)
    return entry.factory(*args, **kwargs)


def create_model(name: str, pretrained: bool = False, **overrides: Any):
    """Build a registered model.

    Args:
        name: a registered model name (``handzoo list models``) or a template
            match such as ``timm/convnext_tiny``.
        pretrained: load published handzoo weights for ``name`` (or ``NAME:TAG``)
            from the zoo, downloaded and verified by :mod:`handzoo.zoo.hub`.
        **overrides: options of the model's factory (e.g. ``head="mano"``,
            ``backbone_pretrained=True``, ``backbone_weights="resnet101.pth"``).

    Returns:
        An ``nn.Module`` mapping normalised images (B,3,H,W) to a
        :class:`handzoo.HandOutput` whose ``joints3d`` is (B,21,3) metres,
        root-relative, canonical order.
    """
    if pretrained:  # ``name`` may be NAME:TAG; the hub verifies the download's sha256
        from handzoo.zoo.hub import load_pretrained

        return load_pretrained(name, **overrides)
    model = checked_build("model", name, **overrides)
    model.handzoo_name = name
    return model


def create_backbone(name: str, **overrides: Any):
    """Build a registered backbone: normalised images (B,3,H,W) -> features (B,C,h,w)."""
    return checked_build("backbone", name, **overrides)


def create_head(name: str, in_features: int, **overrides: Any):
    """Build a registered head: features (B,in_features,h,w) -> :class:`handzoo.HandOutput`."""
    return checked_build("head", name, in_features, **overrides)
