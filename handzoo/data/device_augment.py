"""Augmentation of whole batches on the training device (``data.pipeline=device``).

The CPU pipeline (:mod:`handzoo.data.augment`) augments one numpy sample at a
time in the DataLoader's workers. This module runs the *same* augmenters on a
collated batch, in torch, on whatever device trains: the workers only decode
(or read the uint8 image cache) and ship uint8 images at the training size,
a quarter of the bytes of normalised float images, and the GPU does the rest.

A batch, as the DataLoader ships it and as :class:`DevicePipeline` takes it
(B samples, S = image size)::

    image      (B,3,S,S) uint8 RGB (``uint8_images=True`` datasets)
    mask       (B,S,S) uint8 {0,1} (1 = hand), optional
    K          (B,3,3) intrinsics of ``image``
    joints3d   (B,21,3) metres, camera frame, canonical order (optional)
    verts      (B,778,3) metres (optional)
    mano       (B,61), mano_valid (B,) bool (optional)

and returns it with ``image`` normalised to float32 (B,3,S,S) and the labels
moved: ``joints2d`` (B,21,2), when given, moves with the pixel affines (so
``project(joints3d, K) == joints2d`` is a check of ``K``), and is
``project(joints3d, K)`` otherwise.

Geometric steps draw, per sample, a pixel affine ``A`` (B,3,3) and a 3D map
``M`` (B,3,3), exactly as on the CPU (``K' = A·K·M⁻¹``, ``joints3d' = M·joints3d``);
consecutive ones are composed into **one** bilinear warp of image and mask
together (``grid_sample`` in the pixel-edge convention of
:mod:`handzoo.geometry`). Pixel steps that commute with the warp run after it,
in :func:`handzoo.data.augment.fusion_plan`'s order, as on the CPU. A sample
is augmented by a step with the step's probability ``p``; randomness comes
from the ``torch.Generator`` passed in, so a run seeds it per step and
resumes exactly.

Differences from the CPU pipeline, all within interpolation tolerance: the
workers resize to S first, so a rotated sample is interpolated twice (as with
the image cache); images stay float (no rounding to uint8 between steps);
``reflect`` borders mirror about the edge (OpenCV's ``REFLECT_101`` mirrors
about the edge pixel).

An augmenter provides its batched version through ``Augmenter.batched()``;
:func:`device_pipeline` says which augmenter lacks one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from handzoo.data.augment import Pipeline, fusion_plan
from handzoo.data.image_io import FILL_RGB
from handzoo.device import constant
from handzoo.rotations import axis_angle_to_matrix, matrix_to_axis_angle

Batch = dict[str, Any]
POINT_KEYS = ("joints3d", "verts")
_PADDING = {"constant": "zeros", "replicate": "border", "reflect": "reflection"}


@dataclass(frozen=True)
class BatchTransform:
    """Per-sample geometric transforms: pixel affines ``A``, 3D maps ``M`` and ``M⁻¹``, each (B,3,3)."""

    A: torch.Tensor
    M: torch.Tensor
    M_inv: torch.Tensor


class BatchAugmenter:
    """One augmenter applied to a whole batch on its device (the batched twin of an ``Augmenter``).

    Subclasses set ``name`` and keep the CPU augmenter's validated ``params``
    (``p`` among them). Geometric ones (``geometric = True``) implement
    :meth:`draw`; pixel ones implement :meth:`apply`, which sees float images
    (B,3,S,S) in 0..255 and a float {0,1} mask (B,S,S) or None, and returns the
    batch with what it changed. The pipeline decides, per sample, whether the
    step applies (probability ``p``) and keeps the others as they were.
    """

    name: ClassVar[str] = ""
    geometric: ClassVar[bool] = False
    commutes_with_geometry: ClassVar[bool] = False

    def __init__(self, params: Any) -> None:
        self.params = params

    @property
    def p(self) -> float:
        return float(self.params.p)

    @property
    def border(self) -> str:
        return getattr(self.params, "border", "constant")

    def draw(
        self, n: int, size: tuple[int, int], K: torch.Tensor, generator: torch.Generator
    ) -> BatchTransform:
        """Transforms for ``n`` images of ``size`` = (W,H) whose current intrinsics are ``K`` (n,3,3)."""
        raise NotImplementedError

    def apply(self, batch: Batch, generator: torch.Generator) -> Batch:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.params!r})"


# ----------------------------------------------------------------------------- helpers
def uniform(
    shape: Sequence[int], low: Any, high: Any, generator: torch.Generator, dtype=torch.float64
) -> torch.Tensor:
    """U(low, high) of ``shape`` on the generator's device (low/high broadcast)."""
    u = torch.rand(tuple(shape), generator=generator, device=generator.device, dtype=dtype)
    return low + (high - low) * u


def randint(shape: Sequence[int], low: int, high: Any, generator: torch.Generator) -> torch.Tensor:
    """Integers in [low, high) (``high`` may be a tensor broadcast against ``shape``)."""
    u = torch.rand(tuple(shape), generator=generator, device=generator.device, dtype=torch.float64)
    drawn = low + torch.floor(u * (high - low))
    # u < 1, but u·(high - low) may round up to high - low
    top = drawn.clamp(max=high - 1) if not torch.is_tensor(high) else torch.minimum(drawn, high - 1)
    return top.long()


def eye(n: int, device: torch.device, dtype=torch.float64) -> torch.Tensor:
    return torch.eye(3, device=device, dtype=dtype).expand(n, 3, 3).clone()


def pixel_centres(size: tuple[int, int], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """x (W,) and y (H,) of the pixel centres, i + 0.5 (pixel-edge convention), float32."""
    w, h = size
    return (
        torch.arange(w, device=device, dtype=torch.float32) + 0.5,
        torch.arange(h, device=device, dtype=torch.float32) + 0.5,
    )


def _to_normalised(size: tuple[int, int], like: torch.Tensor) -> torch.Tensor:
    """(3,3) map from edge pixels of an image of ``size`` to grid_sample's [-1, 1] coordinates.

    A cached constant: writing Python numbers into elements of a CUDA tensor
    is a host-to-device copy that waits for the GPU.
    """
    w, h = size
    return constant((2.0 / w, 0.0, -1.0, 0.0, 2.0 / h, -1.0, 0.0, 0.0, 1.0), like.device, like.dtype).view(
        3, 3
    )


def affine_grid(theta: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``F.affine_grid(theta, align_corners=False)`` for (B,2,3) ``theta``, computed elementwise.

    ``F.affine_grid`` is a batched matrix product, which runs in TF32 on GPUs
    where the run enables it (about 0.05 px of error at 128 px); this keeps
    the sampling positions float32-exact everywhere.
    """
    w, h = size
    xs = (
        torch.arange(w, device=theta.device, dtype=torch.float32) * 2 + 1
    ) / w - 1  # pixel centres in [-1, 1]
    ys = (torch.arange(h, device=theta.device, dtype=torch.float32) * 2 + 1) / h - 1
    t = theta.float()[:, :, :, None, None]  # (B,2,3,1,1)
    grid = t[:, :, 0] * xs[None, None, None, :] + t[:, :, 1] * ys[None, None, :, None] + t[:, :, 2]
    return grid.permute(0, 2, 3, 1)  # (B,H,W,2) as (x, y)


def warp_batch(
    image: torch.Tensor,
    mask: torch.Tensor | None,
    A: torch.Tensor,
    size: tuple[int, int],
    border: str = "constant",
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Warp float images (B,3,H,W) and masks (B,H,W) by pixel-edge affines ``A`` (B,3,3) into ``size``.

    Bilinear, one ``grid_sample`` for image and mask together. Uncovered
    pixels get :data:`handzoo.data.image_io.FILL_RGB` (``constant``) or the
    image's border (``replicate``, ``reflect``); the mask is thresholded at
    one half (like rounding a warped {0,1} mask) and is 0 outside the source.
    """
    _, _, h, w = image.shape
    N_in, N_out = _to_normalised((w, h), A), _to_normalised(size, A)
    theta = N_in @ affine_inverse(A) @ affine_inverse(N_out.expand_as(A))
    grid = affine_grid(theta[:, :2], size)
    fill = constant(FILL_RGB, image.device, image.dtype).view(1, 3, 1, 1)
    padding = _PADDING[border]
    planes = image - fill if padding == "zeros" else image
    if mask is not None:
        planes = torch.cat([planes, mask[:, None].to(image.dtype)], dim=1)
    out = F.grid_sample(planes, grid, mode="bilinear", padding_mode=padding, align_corners=False)
    warped = out[:, :3] + fill if padding == "zeros" else out[:, :3]
    return warped, ((out[:, 3] > 0.5).to(image.dtype) if mask is not None else None)


def affine_inverse(A: torch.Tensor) -> torch.Tensor:
    """Inverses of affine maps (B,3,3) (last row 0,0,1), in closed form: no solver, no host sync."""
    a, b, c = A[:, 0, 0], A[:, 0, 1], A[:, 0, 2]
    d, e, f = A[:, 1, 0], A[:, 1, 1], A[:, 1, 2]
    det = a * e - b * d
    inv = torch.zeros_like(A)
    inv[:, 0, 0], inv[:, 0, 1], inv[:, 1, 0], inv[:, 1, 1] = e / det, -b / det, -d / det, a / det
    inv[:, 0, 2] = -(inv[:, 0, 0] * c + inv[:, 0, 1] * f)
    inv[:, 1, 2] = -(inv[:, 1, 0] * c + inv[:, 1, 1] * f)
    inv[:, 2, 2] = 1.0
    return inv


def det3(M: torch.Tensor) -> torch.Tensor:
    """Determinants of (B,3,3) matrices in closed form (rows: (r0 × r1)·r2)."""
    return (torch.linalg.cross(M[:, 0], M[:, 1]) * M[:, 2]).sum(-1)


def project(points: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """(B,J,3) metres and (B,3,3) intrinsics -> (B,J,2) pixels."""
    uvw = points @ K.transpose(1, 2)
    return uvw[..., :2] / uvw[..., 2:3]


# ----------------------------------------------------------------------------- the pipeline
class DevicePipeline:
    """The batched twin of a :class:`handzoo.data.augment.Pipeline`, ending in normalisation.

    Args:
        augmenters: batched augmenters, in the configured order.
        mean, std: per-channel normalisation of images scaled to [0, 1].
        fuse: compose consecutive geometric steps into one warp (as the CPU pipeline does).
    """

    def __init__(
        self,
        augmenters: Sequence[BatchAugmenter],
        mean: Sequence[float],
        std: Sequence[float],
        fuse: bool = True,
    ) -> None:
        self.augmenters = list(augmenters)
        self.plan = fusion_plan(self.augmenters) if fuse else list(self.augmenters)
        self.fuse = fuse
        # x = (pixel/255 - mean)/std = pixel·scale + shift
        self._scale = tuple(1.0 / (255.0 * float(s)) for s in std)
        self._shift = tuple(-float(m) / float(s) for m, s in zip(mean, std, strict=True))

    def __len__(self) -> int:
        return len(self.augmenters)

    def __repr__(self) -> str:
        return f"DevicePipeline({[a.name for a in self.augmenters]}, fuse={self.fuse})"

    @torch.no_grad()
    def __call__(self, batch: Batch, generator: torch.Generator, normalise: bool = True) -> Batch:
        """Augment a collated batch on its device (see the module doc); ``normalise=False`` keeps 0..255."""
        out = dict(batch)
        image = batch["image"]
        dev, n = image.device, image.shape[0]
        size = (image.shape[3], image.shape[2])
        out["image"] = image.float()
        if batch.get("mask") is not None:
            out["mask"] = batch["mask"].float()
        out["K"] = batch["K"].double()
        for key in (*POINT_KEYS, "joints2d", "mano"):
            if batch.get(key) is not None:
                out[key] = batch[key].double()
        if batch.get("mano") is not None:
            given = batch.get("mano_valid")
            out["mano_valid"] = (
                given.bool() if torch.is_tensor(given) else torch.ones(n, dtype=torch.bool, device=dev)
            )

        state = _Pending(n, dev, out["K"])
        for aug in self.plan:
            which = torch.rand(n, generator=generator, device=dev) < aug.p
            if self.fuse and aug.geometric:
                if state.border is not None and aug.border != state.border:
                    out = state.flush(out, size)
                t = aug.draw(n, size, state.current_K(), generator)
                state.compose(t, which, aug.border)
                continue
            out = state.flush(out, size)
            if aug.geometric:  # fuse=False: every step is its own warp
                t = aug.draw(n, size, out["K"], generator)
                state.compose(t, which, aug.border)
                out = state.flush(out, size)
            else:
                out = _select(which, aug.apply(dict(out), generator), out)
        out = state.flush(out, size)

        if normalise:
            scale = constant(self._scale, dev, torch.float32).view(1, 3, 1, 1)
            shift = constant(self._shift, dev, torch.float32).view(1, 3, 1, 1)
            out["image"] = out["image"] * scale + shift
        if out.get("joints3d") is not None and out.get("joints2d") is None:
            out["joints2d"] = project(out["joints3d"], out["K"])
        out["K"] = out["K"].float()
        for key in (*POINT_KEYS, "joints2d", "mano"):
            if out.get(key) is not None:
                out[key] = out[key].float()
        if out.get("mask") is not None:
            out["mask"] = out["mask"].to(torch.uint8)
        return out


class _Pending:
    """The composed transform not yet applied to the pixels (A, M, M⁻¹ per sample, and its border)."""

    def __init__(self, n: int, device: torch.device, K: torch.Tensor) -> None:
        self.n, self.device = n, device
        self.reset(K)

    def reset(self, K: torch.Tensor) -> None:
        self.A, self.M, self.M_inv = (eye(self.n, self.device) for _ in range(3))
        self.K0 = K
        self.border: str | None = None

    def current_K(self) -> torch.Tensor:
        return self.A @ self.K0 @ self.M_inv

    def compose(self, t: BatchTransform, which: torch.Tensor, border: str) -> None:
        I3 = eye(self.n, self.device)
        sel = which.view(-1, 1, 1)
        self.A = torch.where(sel, t.A.double(), I3) @ self.A
        self.M = torch.where(sel, t.M.double(), I3) @ self.M
        self.M_inv = self.M_inv @ torch.where(sel, t.M_inv.double(), I3)
        self.border = border

    def flush(self, out: Batch, size: tuple[int, int]) -> Batch:
        if self.border is None:  # nothing pending
            return out
        out = dict(out)
        out["image"], out["mask"] = warp_batch(out["image"], out.get("mask"), self.A, size, self.border)
        M = self.M
        for key in POINT_KEYS:
            if out.get(key) is not None:
                out[key] = out[key] @ M.transpose(1, 2)
        if out.get("joints2d") is not None:
            out["joints2d"] = out["joints2d"] @ self.A[:, :2, :2].transpose(1, 2) + self.A[:, None, :2, 2]
        if out.get("mano") is not None:
            out["mano"], out["mano_valid"] = transform_mano(out["mano"], out["mano_valid"], self.A, M)
        out["K"] = self.A @ out["K"] @ self.M_inv
        self.reset(out["K"])
        return out


def transform_mano(
    mano: torch.Tensor, valid: torch.Tensor, A: torch.Tensor, M: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``mano`` (B,61) and ``mano_valid`` (B,) after pixel affines ``A`` and 3D maps ``M`` (B,3,3).

    The batched :func:`handzoo.data.augment.transform_mano`: a rotation composes
    with the global orientation (``R_g' = M·R_g``), the uv root moves with
    ``A``, and a mirror or non-rigid map makes the sample invalid.
    """
    mano = mano.clone()
    I3 = torch.eye(3, dtype=M.dtype, device=M.device)
    rigid = (det3(M) > 0) & ((M @ M.transpose(1, 2) - I3).abs().amax(dim=(1, 2)) < 1e-9)
    rotated = matrix_to_axis_angle(M @ axis_angle_to_matrix(mano[:, :3]))
    # Untouched samples keep their vector as it was (the CPU leaves them alone too: an
    # axis-angle longer than π would come back as its shorter equivalent).
    moved = (M - I3).abs().amax(dim=(1, 2)) > 0
    mano[:, :3] = torch.where((rigid & moved)[:, None], rotated, mano[:, :3])
    if mano.shape[-1] >= 60:
        uv = mano[:, 58:60]
        mano[:, 58:60] = (uv[:, None, :] @ A[:, :2, :2].transpose(1, 2))[:, 0] + A[:, :2, 2]
    return mano, valid & rigid


def _select(which: torch.Tensor, new: Batch, old: Batch) -> Batch:
    """Per sample: ``new`` where ``which`` (B,) is true, ``old`` elsewhere, for every changed tensor."""
    out = dict(old)
    for key, value in new.items():
        before = old.get(key)
        if value is before or not torch.is_tensor(value) or not torch.is_tensor(before):
            out[key] = value
            continue
        sel = which.view(-1, *([1] * (value.dim() - 1)))
        out[key] = torch.where(sel, value, before)
    return out


def device_pipeline(
    pipeline: Pipeline, mean: Sequence[float], std: Sequence[float]
) -> tuple[DevicePipeline | None, str | None]:
    """The batched twin of ``pipeline``, or (None, why not) when one of its augmenters has none."""
    batched = []
    for aug in pipeline.augmenters:
        make = getattr(aug, "batched", None)
        twin = make() if callable(make) else None
        if twin is None:
            name = getattr(aug, "name", None) or type(aug).__name__
            detail = getattr(aug, "unbatched_reason", None)
            return None, f"augmenter {name!r} has no batched version" + (f" ({detail})" if detail else "")
        batched.append(twin)
    return DevicePipeline(batched, mean, std, fuse=pipeline.fuse), None
