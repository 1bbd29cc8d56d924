"""The contract of every registry kind, as typed Protocols (what a plugin's factory must build).

Each hook in :mod:`handzoo.hookspecs` receives ``register(name, factory, **metadata)``;
the factory's keyword defaults are the entry's options (``handzoo list --json``).
Units: metres, camera frame (x right, y down, z forward); joints (…,21,3) in
canonical FreiHAND/OpenPose order (:data:`handzoo.joints.CANONICAL`).

=============  ==========================================  ====================================
kind           factory                                     builds
=============  ==========================================  ====================================
backbone       ``factory(**cfg)``                          :class:`Backbone`
head           ``factory(in_features, **cfg)``             :class:`Head`
model          ``factory(**cfg)``                          :class:`HandPoseModel`
augmenter      ``factory(**cfg)``                          :class:`Augmenter` (or geometric)
dataset        ``factory(split, image_size, ...)``         :class:`HandDataset`
metric         ``factory(**cfg)``                          :class:`Metric`
loss           ``factory(**cfg)``                          :class:`Loss`
detector       ``factory(**cfg)``                          :class:`Detector`
command        ``register_commands(app)``                  typer commands on ``handzoo``
catalogue      ``register_catalogues(register)``           zoo.yaml entries of the plugin
=============  ==========================================  ====================================

Precision: under mixed precision only backbones run in bf16/fp16; a head gets
float32 features and runs in float32 (:class:`handzoo.model.HandModel`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    import numpy as np
    import torch

    from handzoo.output import HandOutput

__all__ = [
    "Augmenter",
    "Backbone",
    "Detector",
    "ExtraLosses",
    "GeometricAugmenter",
    "HandDataset",
    "HandPoseModel",
    "Head",
    "LabelledDataset",
    "Loss",
    "Metric",
    "part_metadata",
    "unwrap_model",
]


@runtime_checkable
class ExtraLosses(Protocol):
    """A model or head that adds loss terms of its own to the configured joint loss."""

    def extra_loss_weights(self) -> dict[str, float]:
        """Every term this part may add, with its weight (0 leaves it out of the total)."""
        ...

    def extra_losses(self, output: HandOutput, batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        """Unweighted scalar terms for this batch (a subset of :meth:`extra_loss_weights`)."""
        ...


def unwrap_model(model: Any) -> Any:
    """The model inside DDP (``.module``) and ``torch.compile`` (``._orig_mod``) wrappers."""
    inner = getattr(model, "module", model)
    return getattr(inner, "_orig_mod", inner)


def part_metadata(part: Any) -> dict[str, Any]:
    """What a part says it was built with (its ``handzoo_metadata``), e.g. ``{"hand_model": "kinematic"}``.

    Recorded in the weights' header and checked on load: weights trained with
    one hand layer never load silently into another.
    """
    return dict(getattr(part, "handzoo_metadata", None) or {})


@runtime_checkable
class Backbone(Protocol):
    """Normalised images (B,3,H,W) -> features (B,C,h,w).

    Attributes:
        num_features: C, what the head is built with.
        preprocessing: ``{"mean": (r,g,b), "std": (r,g,b)}`` on the 0..1 scale.
        handzoo_metadata: optional dict of what it was built with (recorded in weights).
    """

    num_features: int
    preprocessing: Mapping[str, Any]

    def __call__(self, images: torch.Tensor) -> torch.Tensor: ...


@runtime_checkable
class Head(Protocol):
    """Float32 features (B,C,h,w) -> :class:`handzoo.HandOutput` (``joints3d`` (B,21,3) root-relative metres).

    Optional, read on purpose by the runner and the loader:

    * ``extra_loss_weights()`` / ``extra_losses(output, batch)``
      (:class:`handzoo.losses.ExtraLosses`): terms added to the run's joint loss;
    * ``handzoo_metadata``: a JSON-able dict of what the head was built with
      (e.g. ``{"hand_model": "kinematic"}``), recorded in the weights' header
      and compared on load.
    """

    def __call__(self, features: torch.Tensor) -> HandOutput: ...


@runtime_checkable
class HandPoseModel(Protocol):
    """Normalised images (B,3,H,W) -> :class:`handzoo.HandOutput`.

    Attributes:
        preprocessing: ``mean``, ``std`` (RGB, 0..1 scale) and ``input_size`` (3,S,S).

    May implement :class:`handzoo.losses.ExtraLosses` and carry
    ``handzoo_metadata`` (composed models forward their head's). Most plugins
    compose one with :func:`handzoo.model.build_hand_model`.
    """

    preprocessing: Mapping[str, Any]

    def __call__(self, images: torch.Tensor) -> HandOutput: ...


@runtime_checkable
class Augmenter(Protocol):
    """``aug(sample, rng) -> sample`` on a raw sample (numpy), never modifying its input arrays.

    The raw sample (see :mod:`handzoo.data.augment`): ``image`` (H,W,3) uint8
    RGB, ``mask`` (H,W) uint8 or None, ``joints3d`` (21,3) metres camera frame,
    ``joints2d`` (21,2) pixels, ``K`` (3,3), optional ``verts`` (778,3),
    ``mano`` (61,) and ``mano_valid``. A pixel augmenter may change ``image``
    and ``mask`` only; anything that moves pixels must move the labels with
    them (``project(joints3d, K) == joints2d`` holds after every step). Draw
    randomness only from ``rng`` (a ``numpy.random.Generator``): runs are
    reproducible and resumable. ``commutes_with_geometry = True`` lets the
    pipeline run it after the fused warp.
    """

    def __call__(self, sample: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]: ...


@runtime_checkable
class GeometricAugmenter(Augmenter, Protocol):
    """An augmenter that is a pixel affine ``A`` plus a 3D linear map ``M``, fused into one warp.

    ``geometric = True``, a probability ``p``, a ``border`` and
    ``draw(size, K, rng) -> handzoo.data.augment.Transform``; subclass
    :class:`handzoo.data.augment.GeometricAugmenter` to get it.
    """

    geometric: bool
    p: float

    def draw(self, size: tuple[int, int], K: np.ndarray, rng: np.random.Generator) -> Any: ...


@runtime_checkable
class HandDataset(Protocol):
    """A map-style dataset of sample dicts.

    The runner calls ``factory(split=, image_size=, augment=, augment_cfg=, mean=,
    std=, val_fraction=, [root=], [seed=], [image_cache=], **data.options)``;
    ``seed`` (augmentation) and ``image_cache`` only when the factory takes
    them. ``split`` is ``train``, ``val`` or ``eval``. A sample holds ``image``
    (3,S,S) float normalised by ``mean``/``std``, ``joints3d`` (21,3) metres
    camera frame, ``K`` (3,3), ``index``; optional ``joints2d``, ``verts``,
    ``mano``, ``mano_valid``, ``mask``.
    """

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> dict[str, Any]: ...


@runtime_checkable
class LabelledDataset(HandDataset, Protocol):
    """A dataset that gives its labels without decoding images (the constant baseline uses them)."""

    def labels(self) -> np.ndarray:
        """(N,21,3) joints3d of the split's unique samples, metres, camera frame."""
        ...


@runtime_checkable
class Metric(Protocol):
    """``metric(pred, gt) -> (N,)`` per-sample values, on pred's device.

    Inputs (metadata ``inputs``): ``joints`` (default; (N,21,3) root-relative
    metres) or ``vertices`` ((N,778,3) metres). Metadata ``units="m"`` reports
    the mean in millimetres under ``<name>_mm`` (or ``report_key``).
    """

    def __call__(self, pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor: ...


@runtime_checkable
class Loss(Protocol):
    """``loss(output, batch) -> {"loss": total, <part>: value, ...}``, scalars; the run's joint loss."""

    def __call__(self, output: HandOutput, batch: Mapping[str, Any]) -> dict[str, torch.Tensor]: ...


@runtime_checkable
class Detector(Protocol):
    """Hands in a whole image: ``detect(image) -> list[handzoo.inference.detection.Detection]``.

    ``image`` is an (H,W,3) uint8 RGB array of the upright image; each detection
    has a ``box`` (x0, y0, x1, y1) in its pixels (pixel (0,0) covers
    [0,1)×[0,1)), a ``score`` in [0,1], a ``handedness`` ("left", "right"
    or None when the detector does not say) and an ``angle`` (radians, default
    0: the crop, the square around the box's centre, is turned clockwise on
    screen, x right and y down, by ``angle`` so that the hand stands upright in
    it, MediaPipe's ``NormalizedRect.rotation``), best first.

    Optional attribute ``crop_margin`` (float >= 1, default
    :data:`handzoo.inference.detection.DEFAULT_MARGIN`, 1.3): the factor by
    which the Predictor grows the squared box into the crop when the user
    passes no ``margin``. A detector whose box already frames the whole hand
    with its context (a palm detector's hand rectangle, scaled from the palm
    box) sets ``crop_margin = 1.0``; a tight box around the hand keeps 1.3.
    """

    def detect(self, image: np.ndarray) -> list[Any]: ...
