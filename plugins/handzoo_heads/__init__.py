"""First-party plugin: the direct regression head (global pool -> linear -> 21×3)."""

from __future__ import annotations

import handzoo


def _direct(in_features: int, num_joints: int = 21, output_scale: float = 0.1, dropout: float = 0.0):
    """Global average pool, linear to 63, reshaped to (21,3) and made root-relative."""
    from handzoo_heads.direct import DirectRegressionHead

    return DirectRegressionHead(
        in_features, num_joints=num_joints, output_scale=output_scale, dropout=dropout
    )


@handzoo.hookimpl
def register_heads(register):
    register(
        "direct",
        _direct,
        outputs=["joints3d"],
    )
