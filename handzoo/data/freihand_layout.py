"""The official FreiHAND on-disk layout: file names and annotation writers.

Everything that reads or writes FreiHAND-format folders (the loader, ``handzoo
synth``, test fixtures) takes its paths from here::

    ROOT/training/rgb/%08d.jpg        4 versions × N unique samples (gs, hom, sample, auto)
    ROOT/training/mask/%08d.jpg       masks for the first N images only
    ROOT/training_xyz.json            N × 21 × 3, metres, camera frame, canonical order
    ROOT/training_K.json              N × 3 × 3 intrinsics
    ROOT/training_scale.json          N floats, |xyz[9] - xyz[10]| (metres)
    ROOT/training_mano.json           N × [[61 floats]] (optional)
    ROOT/training_verts.json          N × 778 × 3 (optional, very large)
    ROOT/evaluation/rgb/%08d.jpg      evaluation images
    ROOT/evaluation_K.json, evaluation_scale.json
    ROOT/evaluation_xyz.json, evaluation_verts.json, evaluation_mano.json  (optional; released later)

Image ``i`` of the training split uses annotation ``i % N``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

SPLIT_DIRS = ("training", "evaluation")
ANNOTATIONS = ("xyz", "K", "scale", "mano", "verts")
REQUIRED = {"training": ("xyz", "K", "scale"), "evaluation": ("K", "scale")}
FREIHAND_UNIQUE_TRAINING = 32560
FREIHAND_VERSIONS = ("gs", "hom", "sample", "auto")


def rgb_path(root: str | Path, split: str, index: int) -> Path:
    """``ROOT/<split>/rgb/%08d.jpg``; ``split`` is 'training' or 'evaluation'."""
    return Path(root) / split / "rgb" / f"{index:08d}.jpg"


def mask_path(root: str | Path, split: str, index: int) -> Path:
    """``ROOT/<split>/mask/%08d.jpg`` (training masks exist for the unique samples only)."""
    return Path(root) / split / "mask" / f"{index:08d}.jpg"


def annotation_path(root: str | Path, split: str, key: str) -> Path:
    """``ROOT/<split>_<key>.json`` for key in xyz, K, scale, mano, verts."""
    if key not in ANNOTATIONS:
        raise ValueError(f"unknown annotation {key!r}; expected one of {', '.join(ANNOTATIONS)}")
    return Path(root) / f"{split}_{key}.json"


def bone_scale(xyz: np.ndarray) -> np.ndarray:
    """FreiHAND's scale: the length of the middle finger's MCP->PIP bone, |xyz[9] - xyz[10]|.

    Args:
        xyz: (N,21,3) metres, canonical order. Returns (N,) metres.
    """
    return np.linalg.norm(xyz[:, 9] - xyz[:, 10], axis=-1)


def _dump_json(path: Path, value: object) -> None:
    """Write atomically, so a killed writer never leaves a truncated annotation file."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "w") as f:
        json.dump(value, f)
    os.replace(tmp, path)


def write_annotations(
    root: str | Path,
    split: str,
    xyz: np.ndarray | None,
    K: np.ndarray,
    scale: np.ndarray | None = None,
    mano: np.ndarray | None = None,
    verts: np.ndarray | None = None,
) -> None:
    """Write the ``<split>_*.json`` files in the official format.

    Args:
        xyz: (N,21,3) metres, camera frame, canonical order (None for a
            prediction-only evaluation split).
        K: (N,3,3) intrinsics.
        scale: (N,) metres; computed from ``xyz`` when omitted.
        mano: optional (N,61): 48 pose (incl. global), 10 shape, 2 uv root, 1 scale.
        verts: optional (N,778,3) metres.
    """
    if split not in SPLIT_DIRS:
        raise ValueError(f"split must be one of {SPLIT_DIRS}, got {split!r}")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    if scale is None:
        if xyz is None:
            raise ValueError("scale is required when xyz is not given")
        scale = bone_scale(np.asarray(xyz))
    _dump_json(annotation_path(root, split, "K"), np.asarray(K, dtype=float).tolist())
    _dump_json(annotation_path(root, split, "scale"), np.asarray(scale, dtype=float).tolist())
    if xyz is not None:
        _dump_json(annotation_path(root, split, "xyz"), np.asarray(xyz, dtype=float).tolist())
    if mano is not None:
        mano = np.asarray(mano, dtype=float).reshape(len(mano), 1, 61)
        _dump_json(annotation_path(root, split, "mano"), mano.tolist())
    if verts is not None:
        _dump_json(annotation_path(root, split, "verts"), np.asarray(verts, dtype=float).tolist())


def write_image(path: Path, image: np.ndarray, quality: int = 95) -> None:
    """Save an (H,W,3) or (H,W) uint8 array as JPEG, creating the folder."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path, quality=quality)
