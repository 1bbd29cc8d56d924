"""First-party plugin: the MANO hand model, a licence-free kinematic stand-in, and the MANO head.

Registers
* head ``mano``: features -> MANO pose (rot6d / axis-angle / PCA) and shape ->
  hand layer -> joints (and the mesh with the real MANO model);
* models ``resnet50-mano`` and ``resnet101-mano`` (ResNet + ``mano`` head).
  Any backbone takes the head too: ``handzoo.create_model("resnet18", head="mano")``.

The hand layer is the real :class:`ManoLayer` when ``HANDZOO_MANO_DIR`` (or the
head option ``mano_dir``) holds the user's licensed ``MANO_RIGHT.pkl``, else
the :class:`KinematicHand` (joints only). The MANO files are never shipped:
download them from https://mano.is.tue.mpg.de.

Public names (imported lazily, so registering the plugin does not import torch)::

    from handzoo_mano import ManoLayer, KinematicHand, ManoHead, load_mano_file, create_hand_layer
"""

from __future__ import annotations

import importlib
from typing import Any

from handzoo.plugin_api import hookimpl

_EXPORTS = {
    "ManoLayer": "handzoo_mano.layer",
    "TIP_VERTICES": "handzoo_mano.layer",
    "KinematicHand": "handzoo_mano.kinematic",
    "HandLayerOutput": "handzoo_mano.chain",
    "ManoHead": "handzoo_mano.head",
    "mano_terms": "handzoo_mano.losses",
    "load_mano_file": "handzoo_mano.loading",
    "find_mano_file": "handzoo_mano.loading",
    "create_hand_layer": "handzoo_mano.hand_layer",
    "resolve_hand_model": "handzoo_mano.hand_layer",
}

__all__ = sorted(_EXPORTS)

def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'handzoo_mano' has no attribute {name!r}")


def _mano_head(
    in_features: int,
    pose_repr: str = "rot6d",
    ncomps: int = 12,
    hidden: int = 512,
    dropout: float = 0.0,
    hand_model: str = "auto",
    mano_dir: str | None = None,
    side: str = "right",
    flat_hand_mean: bool = False,
    loss_weights: dict[str, float] | None = None,
):
    """Pool, MLP to MANO pose and shape, MANO (or kinematic) layer -> root-relative joints."""
    from handzoo_mano.head import ManoHead

    return ManoHead(
        in_features,
        pose_repr=pose_repr,
        ncomps=ncomps,
        hidden=hidden,
        dropout=dropout,
        hand_model=hand_model,
        mano_dir=mano_dir,
        side=side,
        flat_hand_mean=flat_hand_mean,
        loss_weights=loss_weights,
    )


def _model_factory(backbone: str):
    def build(
        image_size: int = 128,
        backbone_pretrained: bool = False,
        backbone_weights: str | None = None,
        head_cfg: dict[str, Any] | None = None,
    ):
        """Backbone + MANO head; head options (pose_repr, hand_model, ...) go in head_cfg."""
        from handzoo_mano.model import build_mano_model

        return build_mano_model(backbone, image_size, backbone_pretrained, backbone_weights, head_cfg)

    return build


@hookimpl
def register_heads(register):
    register(
        "mano",
        _mano_head,
        outputs=["joints3d", "mano_pose", "mano_shape", "vertices (with MANO files)"],
    )


@hookimpl
def register_models(register):
    for arch in ("resnet50", "resnet101"):
        register(
            f"{arch}-mano",
            _model_factory(arch),
            description=f"{arch} + MANO head (pose, shape; mesh with the licensed MANO files)",
            family="mano",
        )


@hookimpl
def register_catalogues(register):
    """This plugin's architectures and recipes (zoo.yaml beside this file)."""
    from pathlib import Path

    register(Path(__file__).with_name("zoo.yaml"))
