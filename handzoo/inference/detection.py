"""Hands found in whole images: what a detector returns, and the square crop the model sees of each.

A detector (registry kind ``detector``, :class:`handzoo.interfaces.Detector`)
takes an (H,W,3) uint8 RGB upright image and returns :class:`Detection`\\ s,
best first. Boxes are pixels of that image, pixel (0,0) covering [0,1)×[0,1).

Handedness: FreiHAND's hands, and so every model trained on them, are right
hands. A left hand is mirrored before the model and its prediction mirrored
back (:mod:`handzoo.inference.predictor`), so outputs are always in the
image's own frame; ``hand="auto"`` takes the detector's handedness (right
when it gives none).

Rotation: a detection's ``angle`` turns its crop so that the hand stands
upright in it. The turned crop is the picture of the image's camera turned
about its optical axis, so the model gets that crop's camera and its
prediction is turned back into the image's frame
(:func:`handzoo.geometry.rotated_crop_K`); a left hand is mirrored inside the
upright crop.

Margin: the crop is the box made square and grown by ``margin``: the
Predictor's ``margin`` when given, else the detector's ``crop_margin``
attribute, else :data:`DEFAULT_MARGIN` (boxes drawn tight around the hand).
A detector whose box is already the whole hand's crop says ``crop_margin = 1.0``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from handzoo.errors import UsageError
from handzoo.inference.defaults import HAND_CHOICES, HANDS
from handzoo.inference.images import Box, square_box

# The crop around a detected hand: its box made square and grown by this factor, so the
# whole hand and a little context are in view (FreiHAND's crops hold the hand with a margin).
# A detector may say otherwise with a ``crop_margin`` attribute (see the module docstring).
DEFAULT_MARGIN = 1.3


@dataclass(frozen=True)
class Detection:
    """One hand: ``box`` (x0, y0, x1, y1) pixels, ``score`` in [0,1], ``handedness`` left/right/None.

    ``angle`` (radians) turns the crop: the square around the box's centre is
    rotated clockwise on screen (x right, y down) by ``angle`` so that the
    hand stands upright in it, as MediaPipe's palm detector derives from the
    wrist and the middle finger's base; 0 is an axis-aligned crop.
    """

    box: Box
    score: float = 1.0
    handedness: str | None = None
    angle: float = 0.0


def hand_box(box: Sequence[float], margin: float = DEFAULT_MARGIN) -> Box:
    """The square crop of a detected hand: ``box`` made square (longer side), grown by ``margin``."""
    x0, y0, x1, y1 = square_box(tuple(float(v) for v in box))  # type: ignore[arg-type]
    cx, cy, half = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) * margin / 2
    return (cx - half, cy - half, cx + half, cy + half)


def check_detections(found: Any, detector: str) -> list[Detection]:
    """A detector's output as :class:`Detection`\\ s, best first, or a one-line error naming the detector.

    Accepts Detection objects or dicts with ``box``, ``score``, ``handedness``.
    """
    out = []
    for i, det in enumerate(list(found or [])):
        if isinstance(det, dict):
            det = Detection(
                tuple(det.get("box", ())), det.get("score", 1.0), det.get("handedness"), det.get("angle", 0.0)
            )
        if not isinstance(det, Detection):
            raise UsageError(
                f"detector {detector!r} returned {type(det).__name__} at {i}; expected a Detection"
            )
        box = tuple(float(v) for v in det.box)
        if (
            len(box) != 4
            or not all(math.isfinite(v) for v in box)
            or not (box[2] > box[0] and box[3] > box[1])
        ):
            raise UsageError(
                f"detector {detector!r}: detection {i} has box {det.box}; expected x0 < x1, y0 < y1"
            )
        if det.handedness not in (None, *HANDS):
            raise UsageError(
                f"detector {detector!r}: detection {i} has handedness {det.handedness!r}; "
                "expected 'left', 'right' or None"
            )
        angle = float(det.angle)
        if not math.isfinite(angle):
            raise UsageError(
                f"detector {detector!r}: detection {i} has angle {det.angle}; expected finite radians"
            )
        out.append(Detection(box, float(det.score), det.handedness, angle))  # type: ignore[arg-type]
    return sorted(out, key=lambda d: -d.score)


def resolve_hand(hand: str, detection: Detection | None) -> str:
    """'left' or 'right' for one crop: the asked ``hand``, or with 'auto' the detector's (right if none)."""
    if hand not in HAND_CHOICES:
        raise UsageError(f"hand must be one of {', '.join(HAND_CHOICES)}, got {hand!r}")
    if hand != "auto":
        return hand
    return (detection.handedness if detection is not None else None) or "right"


def build_detector(detector: Any) -> tuple[Any, str]:
    """(detector, name) from a registered name (``handzoo list detectors``) or an object with ``detect``."""
    if isinstance(detector, str):
        from handzoo.plugins import get_registry

        return get_registry().create("detector", detector), detector
    if not callable(getattr(detector, "detect", None)):
        raise UsageError(
            f"detector must be a registered name or have detect(image), got {type(detector).__name__}"
        )
    return detector, str(getattr(detector, "name", type(detector).__name__))
