"""The plugin contract: markers and one hook per registry kind.

Every hook receives ``register(name, factory, **metadata)`` and registers any
number of entries through it; the return value is ignored. ``metadata`` may hold
``description`` (one line; defaults to the first line of the factory's
docstring), ``default_cfg`` (a dict of the factory's default keyword
arguments) and anything else worth showing in ``handzoo list --json``.
"""

from __future__ import annotations

import pluggy

PROJECT_NAME = "handzoo"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def register_backbones(register):
    """Register backbones: ``factory(**cfg) -> nn.Module`` giving (B,C,h,w) features."""


@hookspec
def register_heads(register):
    """Register heads: ``factory(in_features, **cfg) -> nn.Module`` giving ``HandOutput``."""


@hookspec
def register_models(register):
    """Register models: ``factory(**cfg) -> nn.Module`` mapping (B,3,H,W) to ``HandOutput``."""


@hookspec
def register_augmenters(register):
    """Register augmenters: ``factory(**cfg)`` returning a sample -> sample callable."""


@hookspec
def register_metrics(register):
    """Register metrics: ``factory(**cfg)`` returning ``fn(pred, gt) -> (N,)`` errors."""


@hookspec
def register_datasets(register):
    """Register datasets: ``factory(**cfg) -> torch.utils.data.Dataset``."""


@hookspec
def register_losses(register):
    """Register joint losses: ``factory(**cfg)`` returning ``fn(output, batch) -> {"loss": total, ...}``."""
