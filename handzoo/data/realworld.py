"""The real-world test set of Ge et al. (CVPR 2019), read in the authors' own layout.

Where to get it: the public repository ``3d-hand-shape/hand-graph-cnn``, folder
``data/real_world_testset`` (583 photographs with 3D joints). Licence: Snap
Inc.'s non-commercial research and education licence (``LICENSE`` of that
repository); it travels with the data. It is an evaluation set: handzoo never
trains on it and builds no number from its labels other than the scores.

Layout (``root`` is that folder, or any parent holding ``data/real_world_testset/``)::

    params.mat         cam_param (N,4): fx, fy, u0, v0 of the 1280x720 frame;
                       bbox (N,4): x, y, w, h of the square crop in that frame
                       (also image_path, pose_root, pose_scale, unused here)
    pose_gt.mat        pose_gt (N,21,3): centimetres, camera frame, canonical order
    images/NNNNN.jpg   256x256 crops; NNNNN is the row of the two .mat files

Only the rows whose image exists are read (a partial copy is a valid root), so
``index`` is the file's number: it keys the original set's rows, not positions
in this dataset. ``split`` is ``eval`` or ``test`` (the same samples).

Intrinsics of a crop, as the authors' viewer (``data/view_realworld_data.py``)
computes them: ``s = 256 / w``, ``K_a = [[fx·s, 0, (u0 − x)·s], [0, fy·s, (v0 − y)·s],
[0, 0, 1]]``. Every hand is a LEFT hand; with ``mirror=True`` (the default) each
sample becomes a right hand, as handzoo's models expect.

Pixel convention and the mirror. The authors' coordinates put pixel centres on
integers: their viewer draws ``K_a·X`` over the crop with matplotlib, where
column i is centred on u = i, and their mirror of a W-pixel image is
u -> W − 1 − u. In handzoo's convention pixel i covers [i, i+1) (centre i + 0.5,
:mod:`handzoo.inference.detection`), so the same point is u_h = u_a + 0.5: the
loader adds 0.5 to both principal-point coordinates of ``K_a`` (the half-pixel
matrix :data:`HALF_PIXEL`). Resizing 256 px to S multiplies u_h by S/256
(edges to edges, :func:`handzoo.data.image_io.resize_image`). Reversing the
columns of an S-pixel image sends column i to S − 1 − i, whose span
[S − 1 − i, S − i) is the reflection of [i, i+1) about S/2: in handzoo's
convention the mirror is u -> S − u, the authors' u -> W − 1 − u shifted by the
half pixel on both sides (u_a + 0.5 -> (W − 1 − u_a) + 0.5 = W − (u_a + 0.5)).
The 3D mirror is x -> −x, and ``K' = F·K·diag(−1, 1, 1)`` with
``F = [[−1, 0, S], [0, 1, 0], [0, 0, 1]]`` keeps ``project(joints3d, K) == joints2d``:
fx stays positive and cx becomes S − cx (the ``flip`` augmenter's matrix).

Samples (torch tensors; S = ``image_size``):

=============  =============  ==================================================
key            shape / type   meaning
=============  =============  ==================================================
image          (3,S,S) f32    RGB normalised with ``mean``/``std`` (mirrored)
joints3d       (21,3) f32     metres, camera frame, canonical order (x negated)
joints2d       (21,2) f32     ``project(joints3d, K)``, pixels of ``image``
K              (3,3) f32      intrinsics of ``image`` (crop, resize, mirror applied)
index          int            row of the original set (the image file's number)
scale          () f32         |xyz[9] - xyz[10]|, metres
=============  =============  ==================================================

``return_raw=True`` returns numpy: ``image`` (S,S,3) uint8 RGB and float64 labels.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from handzoo.conventions import IMAGENET_MEAN, IMAGENET_STD
from handzoo.data.image_io import BadImageError, read_jpeg, resize_image
from handzoo.errors import ConfigError, DataError
from handzoo.geometry import project

SPLITS = ("eval", "test")
CROP_SIZE = 256  # side of the authors' crops in pixels
NESTED = Path("data") / "real_world_testset"  # where the folder sits in the authors' repository
SOURCE = "the folder data/real_world_testset of the public repository 3d-hand-shape/hand-graph-cnn"
# pixel centres on integers (the authors) -> pixel i covering [i, i+1) (handzoo): u_h = u_a + 0.5
HALF_PIXEL = np.array([[1.0, 0.0, 0.5], [0.0, 1.0, 0.5], [0.0, 0.0, 1.0]])
_IMAGE_NAME = re.compile(r"^(\d+)\.jpg$")


def resolve_root(root: str | Path) -> Path:
    """The folder holding ``params.mat``: ``root`` itself or ``root/data/real_world_testset``."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(
            f"ge-realworld root {root} does not exist; give the folder holding params.mat (from {SOURCE})"
        )
    if (root / "params.mat").exists() or (root / "pose_gt.mat").exists() or (root / "images").is_dir():
        return root
    if (root / NESTED).is_dir():
        return root / NESTED
    raise DataError(
        f"{root} holds neither params.mat nor {NESTED}/; give the folder with params.mat, pose_gt.mat "
        f"and images/ ({SOURCE})"
    )


def check_split(split: str) -> None:
    """Refuse any split but 'eval' and 'test': the set is never trained or validated on."""
    if split not in SPLITS:
        raise ConfigError(
            f"ge-realworld is an evaluation set: split must be 'eval' or 'test', got {split!r} "
            "(never train on it)"
        )


def authors_crop_K(cam_param: np.ndarray, bbox: np.ndarray, crop: int = CROP_SIZE) -> np.ndarray:
    """(3,3) intrinsics of one crop as the authors compute them (pixel centres on integers).

    Args:
        cam_param: (fx, fy, u0, v0) of the full frame.
        bbox: (x, y, w, h) of the square crop in the full frame.
        crop: side of the crop image (256).
    """
    fx, fy, u0, v0 = (float(v) for v in cam_param)
    x, y, w = float(bbox[0]), float(bbox[1]), float(bbox[2])
    s = crop / w
    return np.array([[fx * s, 0.0, (u0 - x) * s], [0.0, fy * s, (v0 - y) * s], [0.0, 0.0, 1.0]])


def crop_K(cam_param: np.ndarray, bbox: np.ndarray, image_size: int, mirror: bool) -> np.ndarray:
    """(3,3) intrinsics of a crop in handzoo's pixel convention, resized to ``image_size``, maybe mirrored.

    See the module doc: the authors' K, shifted by half a pixel, scaled by
    ``image_size / 256`` and, with ``mirror``, ``F·K·diag(-1, 1, 1)`` (cx -> S - cx).
    """
    r = image_size / CROP_SIZE
    K = np.diag([r, r, 1.0]) @ HALF_PIXEL @ authors_crop_K(cam_param, bbox)
    if mirror:
        F = np.array([[-1.0, 0.0, image_size], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
        K = F @ K @ np.diag([-1.0, 1.0, 1.0])
    return K


def _load_mat(path: Path, keys: dict[str, tuple[int | None, ...]]) -> dict[str, np.ndarray]:
    """The arrays ``keys`` of a MATLAB file, each checked against its shape (None: any length)."""
    import scipy.io

    if not path.is_file():
        raise DataError(f"{path} is missing; copy it from {SOURCE}")
    try:
        mat = scipy.io.loadmat(str(path))
    except Exception as exc:  # scipy raises several types for a damaged file
        raise DataError(
            f"{path}: not a readable MATLAB file ({type(exc).__name__}: {exc}); copy it again from {SOURCE}"
        ) from None
    out = {}
    for key, shape in keys.items():
        if key not in mat:
            raise DataError(f"{path} has no variable {key!r}; expected the authors' file from {SOURCE}")
        arr = np.asarray(mat[key])
        want = "×".join("N" if n is None else str(n) for n in shape)
        if arr.ndim != len(shape) or any(n not in (None, m) for n, m in zip(shape, arr.shape, strict=True)):
            raise DataError(f"{path}: {key} has shape {'×'.join(map(str, arr.shape))}, expected {want}")
        if not np.issubdtype(arr.dtype, np.number):
            raise DataError(f"{path}: {key} holds {arr.dtype} values, expected numbers")
        out[key] = arr.astype(np.float64)
    return out


class GeRealWorldDataset(torch.utils.data.Dataset):
    """The authors' real-world test set: crops, 3D joints in metres and crop intrinsics (module doc).

    Args:
        root: the folder with params.mat, pose_gt.mat and images/, or a parent of
            ``data/real_world_testset/``.
        split: 'eval' or 'test' (the same samples; the set has no training split).
        image_size: side S of the square output images in pixels.
        mean, std: per-channel normalisation of images scaled to [0, 1].
        mirror: turn the left hands into right hands (image, joints and K).
        indices: rows of the original set to read (each needs its image);
            None: every row whose image exists.
        return_raw: return numpy samples (uint8 image, float64 labels).
    """

    # No training split of its own: the constant-pose baseline is the Procrustes mean of
    # these (dataset, options)' training labels, never of this set's labels
    # (:func:`handzoo.scoring.baseline.constant_baseline`).
    baseline_data: tuple[str, dict[str, Any]] = ("synthetic", {})

    def __init__(
        self,
        root: str | Path,
        split: str = "eval",
        image_size: int = 224,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        mirror: bool = True,
        indices: Sequence[int] | None = None,
        return_raw: bool = False,
    ) -> None:
        check_split(split)
        if not isinstance(image_size, int) or image_size < 8:
            raise ConfigError(f"image_size must be an integer >= 8, got {image_size!r}")
        self.root = resolve_root(root)
        self.split, self.image_size = split, image_size
        self.mirror, self.return_raw = bool(mirror), return_raw
        mean_a, std_a = np.asarray(mean, np.float32), np.asarray(std, np.float32)
        self._norm_a = (1.0 / (255.0 * std_a)).astype(np.float32)
        self._norm_b = (-mean_a / std_a).astype(np.float32)
        self._load_labels()
        self._select(indices)

    # -- construction ---------------------------------------------------------
    def _load_labels(self) -> None:
        params = _load_mat(self.root / "params.mat", {"cam_param": (None, 4), "bbox": (None, 4)})
        pose = _load_mat(self.root / "pose_gt.mat", {"pose_gt": (None, 21, 3)})
        self.cam_param, self.bbox, pose_cm = params["cam_param"], params["bbox"], pose["pose_gt"]
        n = len(pose_cm)
        for key, arr in (("cam_param", self.cam_param), ("bbox", self.bbox)):
            if len(arr) != n:
                raise DataError(
                    f"{self.root / 'params.mat'}: {key} has {len(arr)} rows but pose_gt.mat has {n}; "
                    f"they must agree (copy both files again from {SOURCE})"
                )
        self.num_rows = n
        self.xyz = pose_cm / 100.0  # centimetres -> metres

    def _check_row(self, i: int) -> None:
        """One row's labels make physical sense (else a one-line error naming the file and index)."""
        params, gt = self.root / "params.mat", self.root / "pose_gt.mat"
        fx, fy = self.cam_param[i, :2]
        w, h = self.bbox[i, 2:]
        if not (np.all(np.isfinite(self.cam_param[i])) and fx > 0 and fy > 0):
            raise DataError(
                f"{params}: cam_param of index {i} is {self.cam_param[i].tolist()}, "
                "expected fx, fy > 0 and finite u0, v0"
            )
        if not (np.all(np.isfinite(self.bbox[i])) and w > 0 and w == h):
            raise DataError(
                f"{params}: bbox of index {i} is {self.bbox[i].tolist()}, expected a square "
                "x, y, w, h with w = h > 0 (the crop intrinsics use s = 256 / w)"
            )
        xyz = self.xyz[i]
        if not np.all(np.isfinite(xyz)) or np.any(xyz[:, 2] <= 0):
            raise DataError(
                f"{gt}: pose_gt of index {i} has joints that are not finite or at z <= 0 "
                "(behind the camera); the file must hold centimetres in the camera frame"
            )
        depth = float(np.median(xyz[:, 2]))
        if not 0.05 <= depth <= 3.0:
            raise DataError(
                f"{gt}: pose_gt of index {i} has its median joint {depth * 100:.3g} cm from the "
                "camera; the file must hold centimetres (the authors' unit)"
            )

    def _select(self, indices: Sequence[int] | None) -> None:
        folder = self.root / "images"
        if indices is None:
            found = (
                sorted(int(m.group(1)) for e in os.scandir(folder) if (m := _IMAGE_NAME.match(e.name)))
                if folder.is_dir()
                else []
            )
            if not found:
                raise DataError(f"{folder} holds no NNNNN.jpg images; copy the images/ folder from {SOURCE}")
            if found[-1] >= self.num_rows:
                raise DataError(
                    f"{self.image_path(found[-1])}: index {found[-1]} has no row in params.mat "
                    f"and pose_gt.mat ({self.num_rows} rows, 0..{self.num_rows - 1}); remove it"
                )
            chosen = found
        else:
            chosen = [int(i) for i in indices]
            for i in chosen:
                if not 0 <= i < self.num_rows:
                    raise DataError(
                        f"index {i} is not a row of {self.root / 'pose_gt.mat'} "
                        f"({self.num_rows} rows, 0..{self.num_rows - 1}); pick indices in range"
                    )
                if not self.image_path(i).is_file():
                    raise DataError(
                        f"{self.image_path(i)}: no image for index {i}; copy it from {SOURCE} "
                        "or leave the index out"
                    )
            if len(set(chosen)) != len(chosen) or not chosen:
                raise ConfigError(f"indices must be distinct and not empty, got {list(indices)}")
        for i in chosen:
            self._check_row(i)
        self.indices = np.asarray(chosen, dtype=np.int64)

    # -- access ---------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.indices)

    def image_path(self, index: int) -> Path:
        """``ROOT/images/NNNNN.jpg`` of row ``index`` of the original set."""
        return self.root / "images" / f"{index:05d}.jpg"

    def intrinsics(self, index: int) -> np.ndarray:
        """(3,3) intrinsics of row ``index``'s image at ``image_size`` (mirrored when ``mirror``)."""
        return crop_K(self.cam_param[index], self.bbox[index], self.image_size, self.mirror)

    def joints(self, index: int) -> np.ndarray:
        """(21,3) metres, camera frame, canonical order, of row ``index`` (x negated when ``mirror``)."""
        xyz = np.array(self.xyz[index], dtype=np.float64)
        if self.mirror:
            xyz[:, 0] *= -1.0
        return xyz

    def __repr__(self) -> str:
        return (
            f"GeRealWorldDataset(root={str(self.root)!r}, split={self.split!r}, len={len(self)}, "
            f"rows={self.num_rows}, image_size={self.image_size}, mirror={self.mirror})"
        )

    def _image(self, index: int) -> np.ndarray:
        path = self.image_path(index)
        try:
            image, _ = read_jpeg(path)
        except BadImageError as exc:
            raise DataError(f"{path} (index {index}): {exc.reason}; copy it again from {SOURCE}") from None
        if image.shape[:2] != (CROP_SIZE, CROP_SIZE):
            raise DataError(
                f"{path} (index {index}) is {image.shape[1]}x{image.shape[0]} px, expected the authors' "
                f"{CROP_SIZE}x{CROP_SIZE} crop (its intrinsics assume it); copy it again from {SOURCE}"
            )
        image = resize_image(image, (self.image_size, self.image_size))
        return np.ascontiguousarray(image[:, ::-1]) if self.mirror else image

    def raw_sample(self, position: int) -> dict[str, Any]:
        """Sample ``position`` of this dataset as numpy (uint8 image, float64 labels)."""
        i = int(self.indices[position])
        xyz, K = self.joints(i), self.intrinsics(i)
        return {
            "image": self._image(i),
            "joints3d": xyz,
            "joints2d": project(xyz, K),
            "K": K,
            "index": i,
            "scale": float(np.linalg.norm(xyz[9] - xyz[10])),
        }

    def __getitem__(self, position: int) -> dict[str, Any]:
        if not -len(self) <= position < len(self):
            raise IndexError(f"index {position} out of range for {len(self)} samples")
        raw = self.raw_sample(position % len(self))
        return raw if self.return_raw else self.to_tensors(raw)

    def to_tensors(self, raw: dict[str, Any]) -> dict[str, Any]:
        """Normalise the image to (3,S,S) float32 and turn the labels into float32 tensors."""
        x = raw["image"].astype(np.float32).transpose(2, 0, 1) * self._norm_a[:, None, None]
        x += self._norm_b[:, None, None]
        return {
            "image": torch.from_numpy(np.ascontiguousarray(x)),
            "joints3d": torch.from_numpy(raw["joints3d"].astype(np.float32)),
            "joints2d": torch.from_numpy(raw["joints2d"].astype(np.float32)),
            "K": torch.from_numpy(raw["K"].astype(np.float32)),
            "index": raw["index"],
            "scale": torch.tensor(raw["scale"], dtype=torch.float32),
        }
