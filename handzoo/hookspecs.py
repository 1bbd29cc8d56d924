"""The plugin contract: markers and one hook per registry kind (see :mod:`handzoo.interfaces`).

Every ``register_<kind>s`` hook receives ``register(name, factory, **metadata)``
and registers any number of entries through it; the return value is ignored.
``register_catalogues`` registers zoo.yaml files and ``register_commands``
receives the CLI's typer app. ``metadata`` may hold
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
def register_catalogues(register):
    """Register zoo catalogues shipped beside the plugin's models: ``register(path_to_zoo_yaml)``.

    Their architectures, recipes and weights join the core catalogue
    (``handzoo zoo``, ``handzoo run`` recipes, ``pretrained=True``); a name the
    core or an earlier plugin already defines is refused and reported.
    """


@hookspec
def register_commands(app):
    """Add ``handzoo`` subcommands to the typer ``app`` (``@app.command("name")``), as llm plugins do.

    Called when the CLI starts; a name that is already a command is refused and reported.
    """


@hookspec
def register_detectors(register):
    """Register hand detectors: ``factory(**cfg)`` with ``detect(image) -> list[Detection]``."""


@hookspec
def register_losses(register):
    """Register joint losses: ``factory(**cfg)`` returning ``fn(output, batch) -> {"loss": total, ...}``."""
