"""MediaPipe's palm detection around the network: letterbox, anchors, decoding, weighted NMS, hand rectangle.

The steps and constants of MediaPipe's ``palm_detection_cpu`` graph and of
its hand tracking's ``palm_detection_detection_to_roi``:

1. :class:`Letterbox`: the whole image scaled to fit a 192-px square, centred,
   the rest zero (``keep_aspect_ratio``, ``BORDER_ZERO``), RGB in [0, 1];
2. :func:`ssd_anchors`: 2016 anchor centres (strides 8, 16, 16, 16; offset
   0.5; fixed size 1) - 24x24 cells × 2 then 12x12 cells × 6;
3. :func:`decode_boxes`: the regressors divided by 192 around each anchor
   into a box and 7 keypoints, fractions of the square input;
   :func:`palm_scores`: logits clipped to ±100, sigmoid; kept from 0.5;
4. :func:`weighted_nms`: clusters of IoU above 0.3 averaged with their scores as weights;
5. :func:`hand_rects`: the hand's square from a palm: rotated so that the
   wrist (keypoint 0) -> middle finger base (keypoint 2) points up, shifted
   half the palm's height towards the fingers, the long side × 2.6.

Coordinates: fractions of the square input ("input", x right, y down, 0..1)
until :meth:`Letterbox.to_image` turns them into pixels of the image
(pixel (0,0) covering [0,1)×[0,1)). Angles are radians, clockwise on screen.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import torch

INPUT_SIZE = 192
STRIDES = (8, 16, 16, 16)
ANCHOR_OFFSET = 0.5
NUM_KEYPOINTS = 7
COORD_SCALE = 192.0  # x/y/w/h_scale: the regressors are pixels of the 192-px input
SCORE_CLIP = 100.0
MIN_SCORE = 0.5
IOU_THRESHOLD = 0.3
# Keypoints: 0 wrist centre, 1 index finger base, 2 middle finger base, 3 ring finger base,
# 4 little finger base, 5 and 6 the thumb's base and its next joint.
WRIST, MIDDLE_BASE = 0, 2
TARGET_ANGLE = math.pi / 2  # the wrist -> middle base direction the crop turns to (up)
RECT_SCALE = 2.6
RECT_SHIFT_Y = -0.5


@dataclass(frozen=True)
class Letterbox:
    """Where the square network input lies on an image: image pixel = ``(x0, y0) + input fraction × side``.

    The square of ``side`` = the image's longer side shares the image's
    centre, so a non-square image is padded equally on both sides of its
    shorter axis (MediaPipe's letterbox); the padding is black (zero).
    """

    x0: float
    y0: float
    side: float

    @classmethod
    def fit(cls, height: int, width: int) -> Letterbox:
        """The letterbox of an image of ``height`` × ``width`` pixels."""
        side = float(max(height, width))
        return cls((width - side) / 2, (height - side) / 2, side)

    def padding(self, height: int, width: int) -> tuple[float, float, float, float]:
        """(left, top, right, bottom) padding, fractions of the square (MediaPipe's ``LETTERBOX_PADDING``)."""
        left, top = -self.x0 / self.side, -self.y0 / self.side
        return left, top, 1.0 - width / self.side - left, 1.0 - height / self.side - top

    def to_image(self, points: np.ndarray) -> np.ndarray:
        """(..., 2) fractions of the square input -> (..., 2) pixels of the image."""
        return np.asarray(points, np.float64) * self.side + np.array([self.x0, self.y0])

    def to_input(self, points: np.ndarray) -> np.ndarray:
        """(..., 2) pixels of the image -> (..., 2) fractions of the square input."""
        return (np.asarray(points, np.float64) - np.array([self.x0, self.y0])) / self.side

    def warp(self, image: np.ndarray, size: int = INPUT_SIZE) -> np.ndarray:
        """(H,W,3) uint8 image -> (size, size, 3) float32 in [0, 1], bilinear, zero outside the image.

        Output pixel centre (i + 0.5) / size of the square samples the image at
        ``to_image`` of it, as MediaPipe's ``ImageToTensorCalculator`` does.
        """
        s = self.side / size
        # OpenCV's coordinates are pixel centres: continuous x = index + 0.5 on both sides.
        matrix = np.array([[s, 0.0, self.x0 + 0.5 * s - 0.5], [0.0, s, self.y0 + 0.5 * s - 0.5]])
        out = cv2.warpAffine(
            np.ascontiguousarray(image), matrix, (size, size),
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_CONSTANT, borderValue=0,
        )
        return out.astype(np.float32) / 255.0


def ssd_anchors(input_size: int = INPUT_SIZE, strides: tuple[int, ...] = STRIDES,
                offset: float = ANCHOR_OFFSET) -> np.ndarray:
    """(N,2) anchor centres (x, y), fractions of the input, in the network's output order.

    MediaPipe's ``SsdAnchorsCalculator`` with one aspect ratio (1.0) plus the
    interpolated scale: two anchors per cell for each layer, consecutive
    layers of the same stride sharing one map. With ``fixed_anchor_size``
    every anchor's width and height is 1 (the whole input), so only the
    centres matter. For the palm detector: 24·24·2 + 12·12·6 = 2016.
    """
    centres = []
    i = 0
    while i < len(strides):
        same = 1
        while i + same < len(strides) and strides[i + same] == strides[i]:
            same += 1
        cells = math.ceil(input_size / strides[i])
        per_cell = 2 * same
        grid = (np.arange(cells, dtype=np.float64) + offset) / cells
        y, x = np.meshgrid(grid, grid, indexing="ij")  # row-major: y outer, x inner
        xy = np.stack([x, y], axis=-1).reshape(-1, 1, 2)
        centres.append(np.repeat(xy, per_cell, axis=1).reshape(-1, 2))
        i += same
    return np.concatenate(centres).astype(np.float32)


def decode_boxes(regressors: torch.Tensor, anchors: torch.Tensor,
                 scale: float = COORD_SCALE) -> tuple[torch.Tensor, torch.Tensor]:
    """The network's regressors around their anchors as boxes and keypoints, fractions of the input.

    Args:
        regressors: (..., N, 18): x centre, y centre, width, height, then 7 × (x, y),
            pixels of the ``scale``-px input, centres and keypoints relative to the anchor.
        anchors: (N, 2) anchor centres (:func:`ssd_anchors`), size 1.

    Returns:
        boxes (..., N, 4) as (x0, y0, x1, y1) and keypoints (..., N, 7, 2) as (x, y).
    """
    anchors = torch.as_tensor(anchors, dtype=regressors.dtype, device=regressors.device)
    centre = regressors[..., 0:2] / scale + anchors
    half = regressors[..., 2:4] / scale / 2
    boxes = torch.cat([centre - half, centre + half], dim=-1)
    keypoints = regressors[..., 4:].unflatten(-1, (-1, 2)) / scale + anchors[:, None, :]
    return boxes, keypoints


def palm_scores(logits: torch.Tensor, clip: float = SCORE_CLIP) -> torch.Tensor:
    """(..., N, 1) raw logits -> (..., N) probabilities (clipped to ±``clip`` before the sigmoid)."""
    return torch.sigmoid(logits[..., 0].clamp(-clip, clip))


def box_iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one box (4,) with each of (N,4), boxes (x0, y0, x1, y1); 0 where they do not meet."""
    w = np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0])
    h = np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1])
    inter = np.where((w > 0) & (h > 0), w * h, 0.0)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    union = area + areas - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def weighted_nms(boxes: np.ndarray, keypoints: np.ndarray, scores: np.ndarray,
                 iou_threshold: float = IOU_THRESHOLD) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MediaPipe's weighted non-maximum suppression, best first.

    The best remaining detection and every remaining one overlapping it by
    an IoU above ``iou_threshold`` (itself included) form a cluster; the
    cluster's boxes' corners and keypoints are averaged with the scores as
    weights, and the result keeps the best one's score. Repeat on the rest.

    Args:
        boxes: (N,4) (x0, y0, x1, y1); keypoints: (N,K,2); scores: (N,), any units.

    Returns:
        boxes (M,4), keypoints (M,K,2), scores (M,), M <= N, scores descending.
    """
    boxes = np.asarray(boxes, np.float64)
    keypoints = np.asarray(keypoints, np.float64)
    scores = np.asarray(scores, np.float64)
    order = np.argsort(-scores, kind="stable")
    out_boxes, out_keypoints, out_scores = [], [], []
    while order.size:
        best = order[0]
        overlap = box_iou(boxes[best], boxes[order]) > iou_threshold
        overlap[0] = True  # the best box is in its own cluster even when degenerate
        cluster = order[overlap]
        weights = scores[cluster] / scores[cluster].sum()
        out_boxes.append(weights @ boxes[cluster])
        out_keypoints.append(np.tensordot(weights, keypoints[cluster], axes=1))
        out_scores.append(scores[best])
        order = order[~overlap]
    k = keypoints.shape[1] if keypoints.ndim == 3 else 0
    if not out_scores:
        return np.zeros((0, 4)), np.zeros((0, k, 2)), np.zeros(0)
    return np.stack(out_boxes), np.stack(out_keypoints), np.array(out_scores)


def normalize_radians(angle: np.ndarray) -> np.ndarray:
    """Angles wrapped into [-π, π)."""
    return angle - 2 * np.pi * np.floor((angle + np.pi) / (2 * np.pi))


def palm_angle(keypoints: np.ndarray) -> np.ndarray:
    """(..., 7, 2) palm keypoints in pixels -> (...,) the hand crop's rotation, radians clockwise on screen.

    0 when the wrist -> middle finger base vector points up (-y), +π/2 when
    it points right (+x), -π/2 left, -π down (MediaPipe's
    ``rotation_vector_target_angle_degrees: 90``). Pixels, not fractions of a
    non-square image, so the angle is the one seen on screen.
    """
    d = keypoints[..., MIDDLE_BASE, :] - keypoints[..., WRIST, :]
    return normalize_radians(TARGET_ANGLE - np.arctan2(-d[..., 1], d[..., 0]))


def hand_rects(boxes: np.ndarray, keypoints: np.ndarray, scale: float = RECT_SCALE,
               shift_y: float = RECT_SHIFT_Y) -> np.ndarray:
    """Palms -> the hands' rotated squares (MediaPipe's ``RectTransformationCalculator`` options).

    The palm box's centre moves by ``shift_y`` × its height along the crop's
    own y axis (turned by the angle: towards the fingers for a negative
    shift), and the square's side is the box's longer side × ``scale``.

    Args:
        boxes: (N,4) palm boxes (x0, y0, x1, y1), pixels of the image.
        keypoints: (N,7,2) palm keypoints, pixels of the image.

    Returns:
        (N,4): centre x, centre y, side (pixels), angle (radians, :func:`palm_angle`).
    """
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    angle = palm_angle(np.asarray(keypoints, np.float64))
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    cx = (boxes[:, 0] + boxes[:, 2]) / 2 - h * shift_y * np.sin(angle)
    cy = (boxes[:, 1] + boxes[:, 3]) / 2 + h * shift_y * np.cos(angle)
    return np.stack([cx, cy, np.maximum(w, h) * scale, angle], axis=1)


def rect_boxes(rects: np.ndarray) -> np.ndarray:
    """(N,4) rects (centre x, centre y, side, angle) -> (N,4) squares (x0, y0, x1, y1) before rotation."""
    cx, cy, half = rects[:, 0], rects[:, 1], rects[:, 2] / 2
    return np.stack([cx - half, cy - half, cx + half, cy + half], axis=1)
