"""First-party plugin: the FreiHAND and synthetic datasets and the built-in augmenters.

Registers
* datasets ``freihand`` (the official layout at ``root``), ``synthetic``
  (the embedded generator's FreiHAND-layout folder, built on first use) and
  ``ge-realworld`` (Ge et al.'s real-world test set in the authors' layout;
  evaluation only);
* augmenters ``background``, ``rotate``, ``flip``, ``occlude``, ``color``,
  ``scale`` (:mod:`handzoo_data.augmenters`; the contract and the pipeline
  are in :mod:`handzoo.data.augment`).

Only pydantic parameter models are imported at registration; torch, OpenCV
and the dataset code load when a dataset or augmenter is built.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from handzoo.plugin_api import hookimpl


def freihand(
    root: str | Path | None = None,
    split: str = "train",
    image_size: int = 128,
    augment: str | Sequence[Any] | None = None,
    augment_cfg: dict[str, dict[str, Any]] | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    val_fraction: float = 0.1,
    val_seed: int = 0,
    versions: Sequence[int | str] | None = None,
    load_verts: bool = False,
    image_cache: bool = False,
    on_bad_image: str = "raise",
    return_raw: bool = False,
    seed: int | None = None,
    uint8_images: bool = False,
):
    """FreiHAND in its official layout (train/val carved by unique id, eval)."""
    from handzoo.plugin_api import IMAGENET_MEAN, IMAGENET_STD, ConfigError, FreiHANDDataset

    if root is None:
        raise ConfigError(
            "dataset 'freihand' needs root=PATH (the folder with training/, evaluation/ and *.json; "
            "`--data-root` on the command line)"
        )
    return FreiHANDDataset(
        root,
        split=split,
        image_size=image_size,
        augment=augment,
        augment_cfg=augment_cfg,
        mean=IMAGENET_MEAN if mean is None else mean,
        std=IMAGENET_STD if std is None else std,
        val_fraction=val_fraction,
        val_seed=val_seed,
        versions=versions,
        load_verts=load_verts,
        image_cache=image_cache,
        on_bad_image=on_bad_image,
        return_raw=return_raw,
        seed=seed,
        uint8_images=uint8_images,
    )


def synthetic(
    num: int | None = None,
    generator_seed: int | None = None,
    num_eval: int | None = None,
    split: str = "train",
    image_size: int = 128,
    augment: str | Sequence[Any] | None = None,
    augment_cfg: dict[str, dict[str, Any]] | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    val_fraction: float = 0.1,
    val_seed: int = 0,
    load_verts: bool = False,
    image_cache: bool = False,
    on_bad_image: str = "raise",
    return_raw: bool = False,
    seed: int | None = None,
    uint8_images: bool = False,
    generator: str | None = None,
):
    """Synthetic hands in FreiHAND layout, generated once into $HANDZOO_HOME (no download).

    ``num``, ``num_eval``, ``generator_seed`` and ``generator`` (the version, e.g.
    synth2) choose the generated set (the generator's defaults when None;
    ``--set data.options.generator_seed=N`` or ``--set data.options.generator=synth2``
    on the command line); ``seed`` seeds the augmentation only, as for ``freihand``,
    so a run's ``--seed`` never regenerates the images.
    """
    from handzoo.plugin_api import ensure_synthetic

    chosen = {"num": num, "seed": generator_seed, "num_eval": num_eval, "version": generator}
    gen_kwargs = {k: v for k, v in chosen.items() if v is not None}
    root = ensure_synthetic(**gen_kwargs)
    return freihand(
        root,
        split=split,
        image_size=image_size,
        augment=augment,
        augment_cfg=augment_cfg,
        mean=mean,
        std=std,
        val_fraction=val_fraction,
        val_seed=val_seed,
        load_verts=load_verts,
        image_cache=image_cache,
        on_bad_image=on_bad_image,
        return_raw=return_raw,
        seed=seed,
        uint8_images=uint8_images,
    )


def ge_realworld(
    root: str | Path | None = None,
    split: str = "eval",
    image_size: int = 224,
    augment: str | Sequence[Any] | None = None,
    augment_cfg: dict[str, dict[str, Any]] | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    val_fraction: float | None = None,
    mirror: bool = True,
    indices: Sequence[int] | None = None,
    return_raw: bool = False,
):
    """Ge et al.'s real-world test set (CVPR 2019) in the authors' layout: evaluation only.

    ``root`` holds params.mat, pose_gt.mat and images/ (or is a parent of
    ``data/real_world_testset/``); only rows whose image exists are read and
    ``index`` is the row of the original set. Left hands become right hands
    (``mirror=False`` keeps them). ``augment``/``augment_cfg`` must be empty and
    ``val_fraction`` is unused: the set has no training split. See
    :mod:`handzoo.data.realworld`.
    """
    from handzoo.plugin_api import IMAGENET_MEAN, IMAGENET_STD, ConfigError, GeRealWorldDataset, check_split
    from handzoo.plugin_api import REALWORLD_SOURCE as SOURCE

    check_split(split)
    if root is None:
        raise ConfigError(
            "dataset 'ge-realworld' needs root=PATH (the folder with params.mat, pose_gt.mat and images/, "
            f"from {SOURCE}; `--data-root` on the command line)"
        )
    if augment not in (None, [], ()) or augment_cfg:
        raise ConfigError(
            f"dataset 'ge-realworld' is scored as published, without augmentation; got {augment!r}"
        )
    return GeRealWorldDataset(
        root,
        split=split,
        image_size=image_size,
        mean=IMAGENET_MEAN if mean is None else mean,
        std=IMAGENET_STD if std is None else std,
        mirror=mirror,
        indices=indices,
        return_raw=return_raw,
    )


def _augmenter_factory(name: str, description: str):
    def build(**params: Any):
        from handzoo_data.augmenters import BUILTIN

        return BUILTIN[name](**params)

    build.__name__ = name
    build.__doc__ = description
    return build


_AUGMENTERS = {
    "background": "replace the background through the hand mask (folder images or textures)",
    "rotate": "in-plane rotation in [-degrees, degrees]; rotates joints3d about z, updates K",
    "flip": "horizontal mirror; negates x in 3D, updates K (a right hand becomes a left hand)",
    "occlude": "random filled shapes over the image (rectangles, ellipses, polygons)",
    "color": "colour jitter: brightness, contrast, saturation, hue",
    "scale": "zoom and shift (a random crop); updates K, labels kept even outside the image",
}


@hookimpl
def register_datasets(register):
    register("freihand", freihand)
    register("synthetic", synthetic)
    register("ge-realworld", ge_realworld)


@hookimpl
def register_augmenters(register):
    from handzoo_data.augment_params import PARAMS

    for name, description in _AUGMENTERS.items():
        defaults = PARAMS[name]().model_dump()
        register(
            name,
            _augmenter_factory(name, description),
            description=description,
            default_cfg={k: list(v) if isinstance(v, tuple) else v for k, v in defaults.items()},
        )
