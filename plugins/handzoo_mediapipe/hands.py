"""MediaPipe Hands behind handzoo's interfaces (imported only when one is built).

MediaPipe's 21 landmarks are in handzoo's canonical order (wrist, then thumb,
index, middle, ring, little from base to tip). Its *world* landmarks are
metres around the hand's centre, axes as the image's (x right, y down, z away
from the camera), so root-relative they are handzoo's ``joints3d``.

Handedness: MediaPipe labels hands as if the image were mirrored (a selfie
camera), so on an ordinary photo its "Left" is a right hand; ``selfie=False``
(the default) swaps the labels back.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from handzoo.plugin_api import IMAGENET_MEAN, IMAGENET_STD, Detection, HandOutput, UsageError
from handzoo_mediapipe import EXTRA_HINT


def import_mediapipe() -> Any:
    try:
        import mediapipe as mp
    except ImportError:
        raise UsageError(f"MediaPipe is not installed; {EXTRA_HINT}") from None
    return mp


def new_hands(max_hands: int, model_complexity: int, min_confidence: float) -> Any:
    """MediaPipe's ``solutions.hands.Hands`` for single photos (``static_image_mode``)."""
    return import_mediapipe().solutions.hands.Hands(
        static_image_mode=True,
        max_num_hands=max_hands,
        model_complexity=model_complexity,
        min_detection_confidence=min_confidence,
    )


def world_joints(result: Any) -> np.ndarray | None:
    """(21,3) metres, root-relative, canonical order, of the first hand in a ``Hands.process`` result."""
    if not result.multi_hand_world_landmarks:
        return None
    world = np.array([(p.x, p.y, p.z) for p in result.multi_hand_world_landmarks[0].landmark])
    return world - world[0]


def _hand(label: str, selfie: bool) -> str:
    side = label.strip().lower()
    if selfie:
        return side
    return {"left": "right", "right": "left"}.get(side, side)


class MediaPipeDetector:
    """``detect(image)``: MediaPipe Hands on a whole (H,W,3) uint8 RGB image, best first."""

    name = "mediapipe"

    def __init__(self, max_hands: int, min_confidence: float, model_complexity: int, selfie: bool) -> None:
        self.selfie = selfie
        self._hands = new_hands(max_hands, model_complexity, min_confidence)

    def detect(self, image: np.ndarray) -> list[Detection]:
        h, w = image.shape[:2]
        result = self._hands.process(np.ascontiguousarray(image))
        found = []
        sides = result.multi_handedness or []
        for marks, side in zip(result.multi_hand_landmarks or [], sides, strict=False):
            xy = np.array([(p.x * w, p.y * h) for p in marks.landmark])
            best = side.classification[0]
            box = (float(xy[:, 0].min()), float(xy[:, 1].min()), float(xy[:, 0].max()), float(xy[:, 1].max()))
            if box[2] > box[0] and box[3] > box[1]:
                found.append(Detection(box, float(best.score), _hand(best.label, self.selfie)))
        return sorted(found, key=lambda d: -d.score)


class MediaPipeHandsModel(nn.Module):
    """Normalised crops (B,3,S,S) -> ``HandOutput`` from MediaPipe's world landmarks (inference only).

    A crop where MediaPipe finds no hand gives joints3d of zeros (every joint
    at the wrist) and ``extras["detected"]`` False, so it is scored, never
    dropped: under PA alignment a point set of zeros costs the mean distance
    of the true joints from their centroid.
    """

    handzoo_name = "mediapipe-hands"

    def __init__(self, image_size: int, min_confidence: float, model_complexity: int) -> None:
        super().__init__()
        self._hands = new_hands(1, model_complexity, min_confidence)
        self.preprocessing = {
            "mean": IMAGENET_MEAN,
            "std": IMAGENET_STD,
            "input_size": (3, image_size, image_size),
        }
        for name in ("mean", "std"):
            value = torch.tensor(self.preprocessing[name]).view(1, 3, 1, 1)
            self.register_buffer(f"_{name}", value, persistent=False)

    def forward(self, images: torch.Tensor) -> HandOutput:
        pixels = ((images.float() * self._std + self._mean) * 255.0).round().clamp(0, 255)
        batch = pixels.to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
        joints = np.zeros((len(batch), 21, 3), np.float32)
        detected = np.zeros(len(batch), bool)
        for i, image in enumerate(batch):
            found = world_joints(self._hands.process(np.ascontiguousarray(image)))
            if found is not None:
                joints[i], detected[i] = found, True
        device = images.device
        return HandOutput(
            joints3d=torch.from_numpy(joints).to(device),
            extras={"detected": torch.from_numpy(detected).to(device)},
        )
