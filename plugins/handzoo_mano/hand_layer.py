"""Choose the hand model behind a MANO head: the licensed MANO layer or the kinematic fallback."""

from __future__ import annotations

import logging
import os
from typing import Any

from torch import nn

from handzoo.plugin_api import UsageError
from handzoo_mano.loading import ENV_MANO_DIR, find_mano_file, mano_file_available, mano_filename

logger = logging.getLogger("handzoo")

HAND_MODELS = ("auto", "mano", "kinematic")


def resolve_hand_model(hand_model: str = "auto", mano_dir: str | None = None, side: str = "right") -> str:
    """Which model :func:`create_hand_layer` will build: 'mano' or 'kinematic'.

    ``auto`` picks MANO when ``mano_dir`` (or else ``HANDZOO_MANO_DIR``) holds
    ``MANO_RIGHT.pkl`` (``MANO_LEFT.pkl`` for the left side), else the
    kinematic hand. An explicit ``mano_dir`` without the file is an error (it
    was asked for); ``HANDZOO_MANO_DIR`` without it only logs a warning.
    """
    if hand_model not in HAND_MODELS:
        raise UsageError(f"hand_model={hand_model!r} is unknown; use one of {', '.join(HAND_MODELS)}")
    if hand_model != "auto":
        return hand_model
    if mano_dir is not None:
        find_mano_file(mano_dir, side)  # raises, with download instructions
        return "mano"
    if mano_file_available(None, side):
        return "mano"
    if os.environ.get(ENV_MANO_DIR):
        logger.warning(
            "%s=%s holds no %s; using the kinematic hand model (joints only)",
            ENV_MANO_DIR,
            os.environ[ENV_MANO_DIR],
            mano_filename(side),
        )
    return "kinematic"


def create_hand_layer(
    hand_model: str = "auto", mano_dir: str | None = None, side: str = "right", **mano_options: Any
) -> nn.Module:
    """Build the hand layer: a :class:`~handzoo_mano.ManoLayer` or a :class:`~handzoo_mano.KinematicHand`.

    Args:
        hand_model: 'auto', 'mano' or 'kinematic' (see :func:`resolve_hand_model`).
        mano_dir: folder (or file) of the licensed MANO model.
        side: 'right' or 'left'.
        **mano_options: ``use_pca``, ``ncomps``, ``flat_hand_mean``, ``tip_vertices``
            for the MANO layer (``use_pca`` is refused by the kinematic hand).

    Both layers have ``model_kind`` ('mano' / 'kinematic') and the same call.
    """
    kind = resolve_hand_model(hand_model, mano_dir, side)
    if kind == "mano":
        from handzoo_mano.layer import ManoLayer

        layer = ManoLayer(mano_dir, side=side, **mano_options)
    else:
        if mano_options.get("use_pca"):
            raise UsageError(
                "PCA hand pose needs the licensed MANO model (its hands_components): set "
                f"{ENV_MANO_DIR} to the folder holding {mano_filename(side)}, or use pose_repr "
                "'rot6d' or 'axis_angle'"
            )
        from handzoo_mano.kinematic import KinematicHand

        layer = KinematicHand(side=side)
    logger.info("hand model: %s (%s hand)", kind, side)
    return layer
