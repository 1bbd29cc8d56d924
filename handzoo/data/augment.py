"""The augmenter contract, its base classes and the pipeline that fuses them into one warp.

The concrete augmenters (``background``, ``rotate``, ``flip``, ``occlude``,
``color``, ``scale``) are registered by the first-party ``handzoo_data``
plugin (:mod:`handzoo_data.augmenters`), exactly as a third party's are.

An augmenter is a callable ``aug(sample, rng) -> sample`` on a *raw sample*::

    image     (H,W,3) uint8 RGB
    mask      (H,W) uint8 in {0,1} (1 = hand) or None
    joints3d  (21,3) float, metres, camera frame, canonical order (None: unlabelled)
    joints2d  (21,2) float, pixels of ``image`` (optional; moved with the image)
    K         (3,3) intrinsics of ``image``
    verts     (778,3) metres (optional; moved like joints3d)
    ...       anything else is passed through

It returns a new dict and never modifies the arrays it was given. Pixels use
the edge convention of :mod:`handzoo.geometry` (pixel i spans [i, i+1)).

Geometric augmenters (``rotate``, ``flip``, ``scale``) draw a pixel affine
``A`` (3×3) and a 3D linear map ``M`` (3×3) and update

    image' = warp(image, A)      joints3d' = M · joints3d      K' = A · K · M⁻¹

which keeps ``project(joints3d', K') == A · project(joints3d, K)`` exactly for
any K (``A`` is affine, so it commutes with the perspective division). For a
rotation about the principal point with fx == fy, K' == K; about another
centre only (cx, cy) move; with fx != fy the upper-left block of K' becomes
R·diag(fx,fy)·Rᵀ (a skewed, still exact, camera). A flip mirrors x (``M`` =
diag(-1,1,1), det −1): **a right hand becomes a left hand** with labels kept in
canonical order, so a model trained with ``flip`` sees left hands too.

FreiHAND's ``mano`` parameters (61 values: 48 axis-angle pose with the global
orientation first, 10 shape, 2 uv root in pixels, 1 scale) follow the same
transform (:func:`transform_mano`): a rotation ``M`` (det +1) composes with
the global orientation, ``R_g' = M·R_g`` (root-relative joints of the posed
hand then rotate by ``M`` exactly), and the uv root moves with ``A``. A mirror
(det −1) turns the right hand into a left one, which no right-hand MANO
parameters describe: the sample's ``mano_valid`` becomes False and losses
leave its parameter terms out.

:class:`Pipeline` fuses consecutive geometric augmenters, and the initial
resize to the training resolution, into a single warp (one interpolation, one
pass over the pixels). Pixel augmenters that declare
``commutes_with_geometry`` (``background``, ``occlude``, ``color``: their random
draws are invariant in distribution under a warp) run after that warp, so the
order ``background, rotate, flip, occlude, color, scale`` costs one warp and
backgrounds also fill the corners a rotation uncovers. ``fuse=False`` runs
every step literally in the given order.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from handzoo.data import augment_params as ap
from handzoo.data.image_io import binarize_mask, resize_image, warp_image, warp_image_and_mask
from handzoo.errors import ConfigError
from handzoo.geometry import axis_angle_to_matrix, matrix_to_axis_angle

Sample = dict[str, Any]
AugmenterFn = Callable[[Sample, np.random.Generator], Sample]

# The seed report's augmentations (background, rotation, flip, occlusion) plus colour and crop
# jitter, in the order its pipeline applies them.
DEFAULT_TRAIN_AUGMENT = ("background", "rotate", "flip", "occlude", "color", "scale")
POINT_KEYS = ("joints3d", "verts")
_I3 = np.eye(3)


@dataclass(frozen=True)
class Transform:
    """A geometric augmentation: pixel affine ``A`` (3,3) and 3D linear map ``M`` (3,3).

    ``M_inv`` is M⁻¹ (computed when not given; rotations and mirrors pass Mᵀ).
    """

    A: np.ndarray
    M: np.ndarray
    M_inv: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.M_inv is None:
            object.__setattr__(self, "M_inv", np.linalg.inv(self.M))


def apply_transform(
    sample: Sample,
    A: np.ndarray,
    M: np.ndarray,
    size: tuple[int, int],
    border: str = "constant",
    M_inv: np.ndarray | None = None,
) -> Sample:
    """Warp ``image``/``mask`` by ``A`` into ``size`` = (W,H) and update the labels (see module doc).

    A pure down-scale (``A`` diagonal, ``M`` = I) uses area resampling instead
    of a bilinear warp, like the evaluation-time resize.
    """
    out = dict(sample)
    image, mask = sample["image"], sample.get("mask")
    h, w = image.shape[:2]
    identity_3d = M is _I3 or np.array_equal(M, _I3)
    pure_resize = (
        identity_3d
        and A[0, 1] == 0.0
        and A[1, 0] == 0.0
        and A[0, 2] == 0.0
        and A[1, 2] == 0.0
        and abs(A[0, 0] * w - size[0]) < 1e-6
        and abs(A[1, 1] * h - size[1]) < 1e-6
    )
    if pure_resize:
        out["image"] = resize_image(image, size)
        if mask is not None:
            out["mask"] = binarize_mask(resize_image(mask * np.uint8(255), size))
    elif mask is not None:
        out["image"], out["mask"] = warp_image_and_mask(image, mask, A, size, border)
    else:
        out["image"] = warp_image(image, A, size, border)
    if not identity_3d:
        for key in POINT_KEYS:
            if sample.get(key) is not None:
                pts = sample[key]
                out[key] = (pts @ M.T).astype(pts.dtype, copy=False)
    if sample.get("mano") is not None:
        out.update(transform_mano(sample["mano"], sample.get("mano_valid", True), A, M, identity_3d))
    out["K"] = A @ sample["K"] @ (np.linalg.inv(M) if M_inv is None else M_inv)
    if sample.get("joints2d") is not None:
        uv = sample["joints2d"]
        out["joints2d"] = uv @ A[:2, :2].T + A[:2, 2]
    return out


def transform_mano(
    mano: np.ndarray, valid: bool, A: np.ndarray, M: np.ndarray, identity_3d: bool = False
) -> Sample:
    """``mano`` (61,) and ``mano_valid`` after the pixel affine ``A`` and the 3D map ``M`` (see module doc).

    Returns ``{"mano": ..., "mano_valid": ...}``; the input array is not modified.
    """
    mano = np.array(mano, copy=True)
    if not identity_3d:
        det = float(np.linalg.det(M))
        if det > 0 and np.allclose(M @ M.T, _I3, atol=1e-9):
            orient = axis_angle_to_matrix(mano[:3].astype(np.float64))
            mano[:3] = matrix_to_axis_angle(M @ orient)
        else:  # a mirror (or a non-rigid map): right-hand parameters cannot describe the result
            valid = False
    if mano.shape[-1] >= 60:
        uv = mano[58:60].astype(np.float64)
        mano[58:60] = uv @ A[:2, :2].T + A[:2, 2]
    return {"mano": mano, "mano_valid": bool(valid)}


class Augmenter:
    """Base class: validated ``params`` (pydantic), probability ``p``, ``__call__(sample, rng)``.

    Subclasses set ``name`` and ``Params`` and implement :meth:`apply`.
    Geometric ones implement :meth:`draw` instead. One ``rng.random()`` is
    always drawn first (the probability test), so streams stay aligned.
    """

    name: ClassVar[str] = ""
    Params: ClassVar[type[ap.AugmenterParams]] = ap.AugmenterParams
    geometric: ClassVar[bool] = False
    commutes_with_geometry: ClassVar[bool] = False

    def __init__(self, **params: Any) -> None:
        self.params = ap.validate_params(self.name, self.Params, params)

    @property
    def p(self) -> float:
        return self.params.p

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        if rng.random() >= self.params.p:
            return sample
        return self.apply(sample, rng)

    def apply(self, sample: Sample, rng: np.random.Generator) -> Sample:
        raise NotImplementedError

    def batched(self) -> Any:
        """The same augmentation as a :class:`handzoo.data.device_augment.BatchAugmenter`, or None.

        A batched version runs on whole uint8 batches on the training device
        (``data.pipeline=device``); an augmenter without one keeps a run on the
        CPU pipeline.
        """
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.params!r})"


class GeometricAugmenter(Augmenter):
    """An augmenter that is an image affine plus a 3D linear map (fusable into one warp)."""

    geometric = True

    def draw(self, size: tuple[int, int], K: np.ndarray, rng: np.random.Generator) -> Transform:
        """The transform for an image of ``size`` = (W,H) with intrinsics ``K``."""
        raise NotImplementedError

    @property
    def border(self) -> str:
        return getattr(self.params, "border", "constant")

    def apply(self, sample: Sample, rng: np.random.Generator) -> Sample:
        h, w = sample["image"].shape[:2]
        t = self.draw((w, h), sample["K"], rng)
        return apply_transform(sample, t.A, t.M, (w, h), self.border, t.M_inv)


def fusion_plan(augmenters: Sequence[Any]) -> list[Any]:
    """The order in which a fusing pipeline runs ``augmenters`` (see the module doc).

    Geometric steps are kept together (to be fused into one warp) and steps
    that declare ``commutes_with_geometry`` move after them; any other step
    is a barrier that everything before it runs ahead of. Used by
    :class:`Pipeline` and by the batched pipeline on the training device
    (:mod:`handzoo.data.device_augment`), so both apply the same order.
    """
    plan: list[Any] = []
    geo: list[Any] = []
    pixel: list[Any] = []
    for aug in augmenters:
        if getattr(aug, "geometric", False):
            geo.append(aug)
        elif getattr(aug, "commutes_with_geometry", False):
            pixel.append(aug)
        else:
            plan += geo + pixel + [aug]
            geo, pixel = [], []
    return plan + geo + pixel


class Pipeline:
    """Runs augmenters in order on a raw sample and brings it to the output size.

    Args:
        augmenters: callables ``aug(sample, rng) -> sample``.
        fuse: fuse geometric steps (and the resize) into one warp and run
            commuting pixel steps after it (see module doc). Any augmenter that
            is neither geometric nor ``commutes_with_geometry`` is a barrier:
            everything before it is applied first.
    """

    def __init__(self, augmenters: Sequence[AugmenterFn], fuse: bool = True) -> None:
        self.augmenters = list(augmenters)
        self.fuse = fuse
        self.plan = fusion_plan(self.augmenters) if fuse else list(self.augmenters)

    def __len__(self) -> int:
        return len(self.augmenters)

    def __repr__(self) -> str:
        return f"Pipeline({self.augmenters!r}, fuse={self.fuse})"

    def __call__(
        self, sample: Sample, rng: np.random.Generator, size: tuple[int, int] | None = None
    ) -> Sample:
        """Augment ``sample`` and return it at ``size`` = (W,H) (default: the input size)."""
        h, w = sample["image"].shape[:2]
        size = tuple(size) if size is not None else (w, h)
        A = np.diag([size[0] / w, size[1] / h, 1.0])
        M = M_inv = _I3
        pending = (w, h) != size  # a warp or resize is owed to the sample
        border: str | None = None  # None: only the resize is pending, any border will do
        K0 = sample["K"]

        def flush(s: Sample) -> Sample:
            return apply_transform(s, A, M, size, border or "constant", M_inv) if pending else s

        for aug in self.plan:
            if self.fuse and getattr(aug, "geometric", False):
                if rng.random() >= aug.p:
                    continue
                if border is not None and aug.border != border:
                    sample = flush(sample)
                    A, M, M_inv, K0, pending = _I3, _I3, _I3, sample["K"], False
                t = aug.draw(size, A @ K0 @ M_inv, rng)
                border = aug.border
                A, M, M_inv, pending = t.A @ A, t.M @ M, M_inv @ t.M_inv, True
            else:
                sample = flush(sample)
                A, M, M_inv, K0, border, pending = _I3, _I3, _I3, sample["K"], None, False
                sample = aug(sample, rng)
        return flush(sample)


def _create(name: str, params: dict[str, Any]) -> AugmenterFn:
    """Build a registered augmenter (first-party ones come from the ``handzoo_data`` plugin)."""
    from handzoo.plugins import get_registry

    return get_registry().get("augmenter", name).build(name, **params)


def build_pipeline(
    names: str | Sequence[str | AugmenterFn] | None,
    cfg: dict[str, dict[str, Any]] | None = None,
    fuse: bool = True,
) -> Pipeline:
    """A :class:`Pipeline` from augmenter names (or configured augmenter objects).

    Args:
        names: e.g. ``["rotate", "flip"]``; ``"default"`` is
            :data:`DEFAULT_TRAIN_AUGMENT`; a comma-separated string works too;
            None or [] gives an empty pipeline (resize only).
        cfg: per-name options, e.g. ``{"rotate": {"degrees": 30}}``.
        fuse: see :class:`Pipeline`.

    Raises:
        ConfigError: for options of an augmenter not in ``names`` or invalid options.
        UnknownNameError: for an unregistered name (lists the closest ones).
    """
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # third-party augmenters may import it
    if names is None:
        names = []
    if isinstance(names, str):
        names = (
            list(DEFAULT_TRAIN_AUGMENT)
            if names == "default"
            else [n.strip() for n in names.split(",") if n.strip()]
        )
    cfg = dict(cfg or {})
    named = [n for n in names if isinstance(n, str)]
    stray = sorted(set(cfg) - set(named))
    if stray:
        raise ConfigError(
            f"augment_cfg has options for {', '.join(repr(s) for s in stray)}, which "
            f"{'is' if len(stray) == 1 else 'are'} not in the pipeline {named}"
        )
    augmenters: list[AugmenterFn] = []
    for item in names:
        if isinstance(item, str):
            augmenters.append(_create(item, dict(cfg.get(item) or {})))
        elif callable(item):
            augmenters.append(item)
        else:
            raise ConfigError(f"augment entries must be names or callables, got {item!r}")
    return Pipeline(augmenters, fuse=fuse)
