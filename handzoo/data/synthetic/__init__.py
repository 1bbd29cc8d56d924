"""Synthetic hands that need no download: a posable skeleton with a continuous pose
prior, a numpy renderer, and a writer of the official FreiHAND layout.

    import numpy as np
    from handzoo.data.synthetic import sample_hand, generate_freihand, ensure_synthetic

    sample = sample_hand(np.random.default_rng(0))   # image, mask, joints3d, K, parts...
    generate_freihand("/tmp/hands", num=1000)       # a FreiHAND-layout folder
    root = ensure_synthetic()                        # cached $HANDZOO_HOME/synthetic/<version>-n<N>-s0
    old = sample_hand(np.random.default_rng(0), version="synth2")   # earlier versions by name

Versions (:data:`GENERATORS`): ``synth3`` (the default) renders photo-like skin,
rooms, sleeves and held objects (:mod:`.photo_scene`); ``synth2`` the matte capsule
hands on synthetic textures (:mod:`.scene`).

Modules: :mod:`.skeleton` (template, joint limits, forward kinematics),
:mod:`.pose_prior` (articulation and orientation priors), :mod:`.primitives`
(the hand's capsules and ellipsoids), :mod:`.raster` (z-buffer rasteriser and
shading), :mod:`.background` (backgrounds, occluders), :mod:`.camera`
(intrinsics, placement), :mod:`.scene` (one synth2 sample), :mod:`.photo_scene`
(one synth3 sample) with :mod:`.skin` (its shading), :mod:`.rooms` (its
backgrounds) and :mod:`.props` (held objects, sleeves, objects in front),
:mod:`.generator` (versions, datasets on disk).
"""

from handzoo.data.synthetic.generator import (
    DEFAULT_NUM,
    DEFAULT_NUM_EVAL,
    GENERATOR_VERSION,
    GENERATORS,
    ensure_synthetic,
    generate_freihand,
    sample_hand,
    sampler,
    synthetic_root,
)
from handzoo.data.synthetic.primitives import PART_NAMES

__all__ = [
    "DEFAULT_NUM",
    "DEFAULT_NUM_EVAL",
    "GENERATORS",
    "GENERATOR_VERSION",
    "PART_NAMES",
    "ensure_synthetic",
    "generate_freihand",
    "sample_hand",
    "sampler",
    "synthetic_root",
]
