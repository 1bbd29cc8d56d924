"""Photo-like procedural backgrounds for the photo-like generator (synth3).

A picture of a hand is usually taken indoors, close up, with the room out of
focus behind it: a wall lit unevenly, often a table or floor below a
horizon, furniture, frames, shelves and windows as soft blocks of muted
colour, sometimes a face or another arm. :func:`sample_room` draws such a
scene with OpenCV primitives in float32 and defocuses it; now and then it
uses one of the synthetic textures of :mod:`.background` instead, muted and
blurred, so that texture alone never tells hand from background.
"""

from __future__ import annotations

import cv2
import numpy as np

from handzoo.data.synthetic.background import random_skin_tone, sample_background
from handzoo.data.synthetic.props import object_colour

_WALLS = np.array(
    [
        [0.92, 0.91, 0.88],
        [0.88, 0.83, 0.74],
        [0.75, 0.76, 0.77],
        [0.70, 0.78, 0.84],
        [0.74, 0.80, 0.70],
        [0.93, 0.86, 0.64],
        [0.35, 0.36, 0.38],
        [0.55, 0.42, 0.30],
    ]
)
_SURFACES = np.array(
    [
        [0.55, 0.38, 0.24],
        [0.70, 0.55, 0.38],
        [0.35, 0.22, 0.14],
        [0.90, 0.90, 0.88],
        [0.45, 0.45, 0.46],
        [0.15, 0.15, 0.16],
        [0.80, 0.76, 0.70],
    ]
)


def _smooth_field(rng: np.random.Generator, size: int, rows: int, cols: int) -> np.ndarray:
    """(S,S) float32 value noise, mean ~0, std ~0.3: a (rows, cols) grid of random cells
    enlarged bicubically."""
    grid = rng.standard_normal((rows, cols)).astype(np.float32) * np.float32(0.3)
    return cv2.resize(grid, (size, size), interpolation=cv2.INTER_CUBIC)


def _pick(rng: np.random.Generator, table: np.ndarray) -> np.ndarray:
    return np.clip(table[rng.integers(len(table))] * rng.normal(1.0, 0.06, 3), 0.02, 1.0)


def _furniture(rng: np.random.Generator, img: np.ndarray, size: int, horizon: float) -> None:
    """Soft blocks: furniture, frames, books on a shelf, a bright window (in place)."""
    for _ in range(int(rng.integers(0, 7))):
        kind = rng.random()
        x0, y0 = rng.uniform(-0.2, 1.0) * size, rng.uniform(-0.2, horizon / size) * size
        w, h = rng.uniform(0.1, 0.6) * size, rng.uniform(0.1, 0.7) * size
        if kind < 0.12:  # a window or lamp: much brighter than the wall
            colour = np.array([0.97, 0.98, 1.0]) * rng.uniform(0.9, 1.0)
        else:
            colour = object_colour(rng)
        pt0, pt1 = (int(x0), int(y0)), (int(x0 + w), int(y0 + h))
        if kind < 0.75:
            cv2.rectangle(img, pt0, pt1, colour.tolist(), -1)
            if rng.random() < 0.4:  # a frame or a shelf edge
                cv2.rectangle(img, pt0, pt1, (colour * 0.5).tolist(), max(1, size // 90))
        elif kind < 0.9:  # books on a shelf: a row of thin blocks
            x = x0
            while x < x0 + w:
                bw = rng.uniform(0.015, 0.05) * size
                top = y0 + rng.uniform(0.0, 0.25) * h
                cv2.rectangle(
                    img, (int(x), int(top)), (int(x + bw), int(y0 + h)), object_colour(rng).tolist(), -1
                )
                x += bw + 1
        else:  # a round thing: a plant, a lamp shade, a clock
            cv2.ellipse(
                img,
                (int(x0 + w / 2), int(y0 + h / 2)),
                (int(w / 3), int(h / 3)),
                0,
                0,
                360,
                colour.tolist(),
                -1,
            )


def sample_room(rng: np.random.Generator, size: int, gain: np.ndarray) -> np.ndarray:
    """A random (size,size,3) uint8 sRGB background that reads as an indoor photograph,
    its channels scaled by the camera's ``gain`` (3,) and an exposure of its own.

    The room is drawn at half the resolution and enlarged: it is out of focus
    anyway, and this quarters its cost."""
    full = size
    size = max(16, full // 2)
    if rng.random() < 0.1:  # a synthetic texture, muted and out of focus
        tex = sample_background(rng, size, np.ones(3)).astype(np.float32) * np.float32(1 / 255)
        grey = tex.mean(axis=2, keepdims=True)
        img = grey + (tex - grey) * np.float32(rng.uniform(0.2, 0.6))
    else:
        wall = _pick(rng, _WALLS)
        img = np.empty((size, size, 3), np.float32)
        img[:] = wall
        horizon = float(size) + 1.0
        if rng.random() < 0.55:  # a table or floor in front of the wall
            horizon = rng.uniform(0.35, 0.95) * size
            slope = np.float32(np.tan(rng.normal(0.0, np.deg2rad(6.0))))  # float32 under numpy 1 and 2
            rows = np.arange(size, dtype=np.float32)[:, None]
            below = rows > horizon + slope * (np.arange(size, dtype=np.float32)[None, :] - size / 2)
            surface = _pick(rng, _SURFACES)
            # Nearer floor is darker and the grain (stretched noise) runs across the picture.
            depth = np.clip((rows - horizon) / max(size - horizon, 1.0), 0.0, 1.0)
            shade = np.float32(1.0) - np.float32(rng.uniform(0.0, 0.3)) * depth
            if rng.random() < 0.5:
                grain = _smooth_field(rng, size, int(rng.integers(20, 60)), int(rng.integers(2, 5)))
                shade = shade + np.float32(rng.uniform(0.2, 0.5)) * grain
            floor = surface.astype(np.float32)[None, None, :] * shade[..., None]
            np.copyto(img, np.broadcast_to(floor, img.shape), where=below[..., None])
        _furniture(rng, img, size, min(horizon, float(size)))
        if rng.random() < 0.12:  # a face or another arm in the background
            tone = random_skin_tone(rng)
            centre = (int(rng.uniform(0, 1) * size), int(rng.uniform(0, 1) * size))
            axes = (int(rng.uniform(0.1, 0.3) * size), int(rng.uniform(0.15, 0.4) * size))
            cv2.ellipse(img, centre, axes, float(rng.uniform(0, 180)), 0, 360, tone.tolist(), -1)
    # Uneven light across the room, then the defocus of a close-up.
    angle = rng.uniform(0, 2 * np.pi)
    axis = np.arange(size, dtype=np.float32) / np.float32(size) - np.float32(0.5)
    ramp = np.float32(np.cos(angle)) * axis[None, :] + np.float32(np.sin(angle)) * axis[:, None]
    light = np.float32(1.0) + np.float32(rng.uniform(0.1, 0.6)) * ramp
    cells = int(rng.integers(2, 5))
    light += np.float32(rng.uniform(0.1, 0.4)) * _smooth_field(rng, size, cells, cells)
    img *= light[..., None]
    sigma = rng.uniform(0.8, 4.5) * full / 224 if rng.random() < 0.8 else 0.5 * full / 224
    img = cv2.GaussianBlur(img, (0, 0), max(sigma * size / full, 0.3))
    exposure = rng.uniform(0.55, 1.05) * np.asarray(gain, dtype=np.float32)
    img = np.clip(img * (exposure * 255.0).astype(np.float32) + 0.5, 0, 255).astype(np.uint8)
    return cv2.resize(img, (full, full), interpolation=cv2.INTER_LINEAR)
