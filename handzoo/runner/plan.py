"""How ``handzoo run`` resolves its configuration, and the embedded default's schedule.

Order of precedence (later wins): the seed recipe (:class:`RunConfig`
defaults), the model's recipe from zoo.yaml when it has one, the embedded
default plan (synthetic data with no ``--epochs``/``--max-steps``), then the
command-line flags and ``--set`` overrides.
"""

from __future__ import annotations

import os
from typing import Any

from handzoo.config import RunConfig, parse_override

# On a CPU the embedded default runs for a fixed time: training stops this many
# minutes after the run started (first-use data generation included), which
# leaves the final evaluation and export inside 15 minutes on 2 cores.
CPU_RUN_MINUTES = 12.0


# The settings that only make sense for a run that starts from trained weights, at their defaults.
# A recipe's plan may name them; for a run that starts from random weights they are left out.
FINE_TUNING_DEFAULTS: dict[str, Any] = {"model.init_blend": None, "optim.freeze": []}


def starts_from_weights(cfg: RunConfig) -> bool:
    """Whether the run starts from trained weights of its own (``model.init`` or ``model.pretrained``)."""
    return bool(cfg.model.init or cfg.model.pretrained)


def check_start(cfg: RunConfig) -> None:
    """Refuse ``model.init_blend`` below 1 for a run with nothing to blend with (one line, with the fix).

    Raises:
        ConfigError: the run starts from random weights.
    """
    from handzoo.errors import ConfigError

    if cfg.model.blends and not starts_from_weights(cfg):
        raise ConfigError(
            f"model.init_blend={cfg.model.init_blend:g} blends the result with the weights the run starts "
            "from, and this run starts from none (neither model.init nor model.pretrained); add "
            "--init NAME[:TAG] or --set model.pretrained=true, or drop the blend with "
            "--set model.init_blend=null"
        )


def default_plan(device: str) -> tuple[dict[str, Any], str]:
    """Overrides for the embedded default on ``device`` ('cpu' or 'cuda'), and a one-line summary."""
    if device == "cuda":
        plan = {
            "data.image_size": 128,
            "data.batch_size": 64,
            "data.workers": min(8, os.cpu_count() or 1),
            "run.epochs": 15,
            "optim.lr": 1e-3,
            "optim.schedule": "cosine",
            "optim.warmup_steps": 200,
            "optim.loss": "l1_pa",
            "run.checkpoint_every": 500,
        }
        return plan, "GPU plan: 15 epochs at 128 px, batch 64, Adam 1e-3 cosine, L1 + aligned L1"
    plan = {
        "data.image_size": 64,
        "data.batch_size": 32,
        "data.workers": 1,
        "data.image_cache": True,
        "run.time_budget_min": CPU_RUN_MINUTES,
        # 3e-3 reaches the constant baseline sooner (300 steps against ~1,000) but
        # ends with twice the MPJPE (109 mm against 56): the global pose suffers.
        "optim.lr": 1e-3,
        "optim.schedule": "cosine",
        "optim.warmup_steps": 30,
        "optim.loss": "l1_pa",
        "run.checkpoint_every": 100,
    }
    return plan, (
        f"CPU plan: training ends {CPU_RUN_MINUTES:g} min after the start (data preparation included), "
        "64 px, batch 32, Adam 1e-3 cosine, L1 + aligned L1"
    )


def recipe_plan(model: str, kind: str) -> dict[str, Any]:
    """The model's recipe's overrides of the embedded default plan on ``kind`` ('cpu'/'cuda'); {} if none."""
    from handzoo.zoo import find_architecture, load_zoo

    zoo = load_zoo()
    arch = find_architecture(model, zoo)
    if arch is None or arch.recipe is None:
        return {}
    return dict(zoo.recipes[arch.recipe].plans.get(kind, {}))


def zoo_recipe(model: str) -> dict[str, Any]:
    """Dotted overrides from the model's zoo.yaml entry (its options and recipe); {} if none."""
    from handzoo.zoo import find_architecture, load_zoo

    zoo = load_zoo()
    arch = find_architecture(model, zoo)
    if arch is None:
        return {}
    out: dict[str, Any] = {"model.options": dict(arch.options)} if arch.options else {}
    if arch.recipe is not None:
        out.update(zoo.recipes[arch.recipe].overrides())
    return out


def resolve_config(
    model: str, flags: dict[str, Any], sets: list[str], base: dict[str, Any] | None = None
) -> tuple[RunConfig, str | None]:
    """The run's configuration from the CLI's flags (dotted keys) and ``--set`` items.

    Args:
        model: the registered model name.
        flags: dotted keys from the command-line options (None = not given).
        sets: ``key=value`` items from ``--set``.
        base: dotted overrides from a ``--config`` file, applied after the zoo recipe.

    Returns the config and, when the embedded default plan applied, its summary.
    """
    user: dict[str, Any] = {k: v for k, v in flags.items() if v is not None}
    for item in sets:
        path, value = parse_override(item)
        user[".".join(path)] = value
    cfg = RunConfig().with_overrides({"model.name": model})
    cfg = cfg.with_overrides(zoo_recipe(model))
    if base:
        cfg = cfg.with_overrides(base)
    summary = None
    data_name = user.get("data.name", cfg.data.name)
    sized = any(k in user for k in ("run.epochs", "run.max_steps", "run.time_budget_min"))
    if data_name == "synthetic" and not sized and not base:
        from handzoo.device import wants_cuda

        kind = "cuda" if wants_cuda(user.get("run.device", cfg.run.device)) else "cpu"
        plan, summary = default_plan(kind)
        own = recipe_plan(model, kind)
        if own:
            plan.update(own)
            summary += "; this model's recipe: " + ", ".join(f"{k}={v}" for k, v in own.items())
        # The zoo recipes are sized for FreiHAND; the embedded default has its own plan.
        cfg = cfg.with_overrides({"run.epochs": None, "run.max_steps": None, **plan})
    if "run.time_budget_min" in user and not any(k in user for k in ("run.epochs", "run.max_steps")):
        # A time budget asked for on the command line replaces the recipe's length.
        cfg = cfg.with_overrides({"run.epochs": None, "run.max_steps": None})
    cfg = cfg.with_overrides(user)
    if summary is not None and not starts_from_weights(cfg):
        # A fine-tuning recipe's freeze and blend would freeze random layers and blend toward noise.
        dropped = {k: v for k, v in FINE_TUNING_DEFAULTS.items() if k in plan and k not in user}
        if dropped:
            cfg = cfg.with_overrides(dropped)
            summary += (
                f"; left out, as this run starts from random weights: {', '.join(dropped)} "
                "(add --init NAME[:TAG] or --set model.pretrained=true to fine-tune)"
            )
    check_start(cfg)
    if cfg.data.name == "synthetic" and "generator" not in cfg.data.options:
        from handzoo.data.synthetic.generator import GENERATOR_VERSION

        # config.yaml (and what is published from it) names the generator version the
        # run's images came from, not only the one the code defaults to later.
        cfg = cfg.with_overrides({"data.options.generator": GENERATOR_VERSION})
    return cfg, summary
