"""The datasets of a run: the runner's side of the dataset contract, and the same split for scoring.

:func:`build_dataset` passes a run's config to the dataset factory (the
keys in :data:`RUNNER_DATASET_KEYS`, plus ``seed``, ``image_cache`` and
``uint8_images`` where the factory takes them, plus ``data.options``).
:func:`scoring_dataset` rebuilds a split for ``handzoo eval`` and the
leaderboard: when the model's weights come from a run on the same dataset,
with that run's ``val_fraction`` and ``data.options``, so a run's split is
reproduced exactly wherever it is scored. :func:`choose_pipeline` decides
where the training augmentation runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import handzoo
from handzoo.config import RunConfig
from handzoo.data.device_augment import DevicePipeline, device_pipeline
from handzoo.errors import ConfigError, UsageError
from handzoo.registry import accepts

if TYPE_CHECKING:
    import torch

# What the runner passes to every dataset factory (the dataset contract, see
# handzoo.interfaces); ``seed`` and ``image_cache`` go only to factories that take them.
RUNNER_DATASET_KEYS = ("split", "image_size", "augment", "augment_cfg", "mean", "std", "val_fraction", "root")


def build_dataset(
    cfg: RunConfig, split: str, preprocessing: dict[str, Any], augment: bool, uint8_images: bool = False
):
    """The configured dataset's ``split``; ``--seed`` seeds its augmentation, never its contents.

    ``uint8_images``: the samples carry uint8 images for the device pipeline
    (the dataset must accept the option; see :func:`choose_pipeline`).
    """
    taken = sorted(set(cfg.data.options) & {*RUNNER_DATASET_KEYS, "seed", "image_cache", "uint8_images"})
    if taken:
        raise UsageError(
            f"data.options sets {', '.join(taken)}, which the runner sets itself; use the matching "
            "data.* key or flag instead (e.g. --data-root, --image-size, --seed)"
        )
    kwargs: dict[str, Any] = {
        "split": split,
        "image_size": cfg.data.image_size,
        "augment": list(cfg.data.augment) if augment else [],
        # Options belong with the pipeline they configure: a split built without one gets none.
        "augment_cfg": dict(cfg.data.augment_cfg) if augment else {},
        "mean": tuple(preprocessing["mean"]),
        "std": tuple(preprocessing["std"]),
        "val_fraction": cfg.data.val_fraction,
    }
    if cfg.data.root is not None:
        kwargs["root"] = cfg.data.root
    from handzoo.plugins import get_registry

    factory = get_registry().get("dataset", cfg.data.name).factory
    # Optional dataset features, passed when the dataset supports them.
    for key, value in (("seed", cfg.run.seed), ("image_cache", cfg.data.image_cache)):
        if accepts(factory, key):
            kwargs[key] = value
    if uint8_images:
        kwargs["uint8_images"] = True
    return handzoo.create_dataset(cfg.data.name, **kwargs, **cfg.data.options)


def choose_pipeline(
    cfg: RunConfig, device: torch.device, preprocessing: dict[str, Any]
) -> tuple[DevicePipeline | None, str]:
    """The training augmentation's place: (the device pipeline or None for the CPU one, a plan note).

    ``data.pipeline=auto`` takes the device pipeline on CUDA when every
    augmenter has a batched version and the dataset can ship uint8 images,
    and says why not otherwise; ``device`` asked for explicitly and not
    possible is an error that names the reason.
    """
    asked = cfg.data.pipeline
    wanted = asked if asked != "auto" else ("device" if device.type == "cuda" else "cpu")
    if wanted == "cpu":
        return None, "augmentation on the CPU workers"
    from handzoo.data.augment import build_pipeline
    from handzoo.plugins import get_registry

    twin, why = device_pipeline(
        build_pipeline(list(cfg.data.augment), dict(cfg.data.augment_cfg)),
        preprocessing["mean"],
        preprocessing["std"],
    )
    factory = get_registry().get("dataset", cfg.data.name).factory
    if twin is not None and not accepts(factory, "uint8_images"):
        twin, why = None, f"dataset {cfg.data.name!r} cannot ship uint8 images (no uint8_images option)"
    if twin is None:
        if asked == "device":
            raise ConfigError(f"data.pipeline=device: {why}; use --set data.pipeline=cpu")
        return None, f"augmentation on the CPU workers ({why})"
    return twin, f"augmentation batched on {device}"


def run_split_options(run_config: dict[str, Any] | None, data: str) -> dict[str, Any]:
    """What a run fixed about its dataset's splits, for scoring ``data`` with its weights.

    ``run_config`` is the resolved config a weights file records (``None`` for
    files without one). Returns ``val_fraction`` and the run's ``data.options``
    when the run trained on ``data``; nothing otherwise (another dataset's
    options mean nothing here).
    """
    data_cfg = (run_config or {}).get("data") if isinstance(run_config, dict) else None
    if not isinstance(data_cfg, dict) or data_cfg.get("name") != data:
        return {}
    found: dict[str, Any] = dict(data_cfg.get("options") or {})
    if data_cfg.get("val_fraction") is not None:
        found["val_fraction"] = data_cfg["val_fraction"]
    return found


def scoring_dataset(
    data: str, split: str, model: Any, root: str | None = None, image_size: int | None = None
):
    """``data``'s ``split`` as ``model`` is scored on it: no augmentation, the model's normalisation
    and input size (unless ``image_size`` is given), and, for weights a run wrote
    (``model.handzoo_run_config``), that run's split (:func:`run_split_options`)."""
    prep = model.preprocessing
    kwargs: dict[str, Any] = {
        "split": split,
        "image_size": image_size or int(prep["input_size"][-1]),
        "augment": [],
        "mean": tuple(prep["mean"]),
        "std": tuple(prep["std"]),
        **run_split_options(getattr(model, "handzoo_run_config", None), data),
    }
    if root is not None:
        kwargs["root"] = root
    return handzoo.create_dataset(data, **kwargs)
