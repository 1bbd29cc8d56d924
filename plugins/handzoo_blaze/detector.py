"""The ``blazepalm`` detector: MediaPipe's palm detector in PyTorch, hands as rotated squares.

``detect(image)`` letterboxes the whole image into the 192-px input, runs
:class:`~handzoo_blaze.blazepalm.BlazePalm`, keeps anchors scoring at least
``min_score``, merges them by weighted non-maximum suppression and turns
each palm into MediaPipe's hand square (:mod:`handzoo_blaze.palm`).

Each :class:`~handzoo.inference.detection.Detection` has
* ``box``: the hand square (x0, y0, x1, y1) before rotation - its centre and
  side are those of MediaPipe's hand rectangle, in pixels of the image (the
  square may reach past the image's edges);
* ``angle``: radians, the clockwise on-screen rotation of that square about
  its centre that stands the hand upright in it (wrist below, fingers up);
* ``score``: the palm's probability; ``handedness``: None (the palm detector does not tell).
"""

from __future__ import annotations

import numpy as np
import torch

from handzoo.plugin_api import Detection, UsageError
from handzoo_blaze import palm
from handzoo_blaze.blazepalm import BLOCKS, BlazePalm
from handzoo_blaze.convert import load_tflite
from handzoo_blaze.sources import palm_tflite


class BlazePalmDetector:
    """``detect(image)``: hands in an (H,W,3) uint8 RGB image as rotated squares, best first.

    Args:
        variant: "full" or "lite" (MediaPipe's palm model complexity 1 or 0).
        max_hands: at most this many detections (the best ones).
        min_score: the lowest palm probability kept (MediaPipe's 0.5).
        device: where the network runs (CPU by default).
    """

    name = "blazepalm"
    # The box is MediaPipe's whole hand rectangle (the palm grown 2.6x): cropped as it is.
    crop_margin = 1.0

    def __init__(self, variant: str = "full", max_hands: int = 4, min_score: float = palm.MIN_SCORE,
                 device: str | torch.device = "cpu") -> None:
        if variant not in BLOCKS:
            raise UsageError(f"blazepalm variant must be one of {', '.join(sorted(BLOCKS))}, got {variant!r}")
        if max_hands < 1:
            raise UsageError(f"blazepalm max_hands must be at least 1, got {max_hands}")
        if not 0.0 <= min_score <= 1.0:
            raise UsageError(f"blazepalm min_score must be in [0, 1], got {min_score}")
        self.variant, self.max_hands, self.min_score = variant, int(max_hands), float(min_score)
        self.device = torch.device(device)
        network = load_tflite(BlazePalm(variant), palm_tflite(variant), arch=f"blazepalm-{variant}")
        self.network = network.eval().to(self.device)
        self.anchors = torch.from_numpy(palm.ssd_anchors()).to(self.device)

    def palms(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Palms after suppression, best first: boxes (M,4), keypoints (M,7,2) (image pixels), scores (M,)."""
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8 or not image.size:
            raise UsageError(f"blazepalm expects an (H,W,3) uint8 RGB image, got {image.dtype} {image.shape}")
        h, w = image.shape[:2]
        letterbox = palm.Letterbox.fit(h, w)
        x = torch.from_numpy(letterbox.warp(image)).permute(2, 0, 1)[None].to(self.device)
        with torch.inference_mode():
            regressors, logits = self.network(x)
            boxes, keypoints = palm.decode_boxes(regressors[0], self.anchors)
            scores = palm.palm_scores(logits[0])
            # MediaPipe drops boxes decoded with a negative size along with the low scores.
            keep = (scores >= self.min_score) & (boxes[:, 2] >= boxes[:, 0]) & (boxes[:, 3] >= boxes[:, 1])
        boxes, keypoints, scores = (t[keep].double().cpu().numpy() for t in (boxes, keypoints, scores))
        boxes, keypoints, scores = palm.weighted_nms(boxes, keypoints, scores)
        boxes = letterbox.to_image(boxes.reshape(-1, 2, 2)).reshape(-1, 4)
        return boxes, letterbox.to_image(keypoints), scores

    def detect(self, image: np.ndarray) -> list[Detection]:
        boxes, keypoints, scores = (a[: self.max_hands] for a in self.palms(image))
        rects = palm.hand_rects(boxes, keypoints)
        squares = palm.rect_boxes(rects)
        return [
            Detection(tuple(float(v) for v in square), float(score), None, float(rect[3]))
            for square, score, rect in zip(squares, scores, rects, strict=True)
            if rect[2] > 0
        ]
