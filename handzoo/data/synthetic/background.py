"""Procedural backgrounds and occluders (numpy + PIL drawing, no image files needed).

Backgrounds mix value noise, gradients, stripes, checkers, blobs and clutter
shapes, sometimes defocused, sometimes with skin-coloured distractors so that
skin colour alone does not find the hand. Occluders are flat shapes drawn in
front of the hand.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw


def _colour(rng: np.random.Generator) -> tuple[int, int, int]:
    return tuple(int(c) for c in rng.integers(0, 256, 3))


def random_skin_tone(rng: np.random.Generator) -> np.ndarray:
    """An RGB 0..1 skin albedo from very light to very dark, with a little hue jitter."""
    light = np.array([0.95, 0.78, 0.68])
    medium = np.array([0.80, 0.58, 0.43])
    dark = np.array([0.42, 0.27, 0.19])
    u = rng.random()
    tone = light + (medium - light) * (u / 0.6) if u < 0.6 else medium + (dark - medium) * ((u - 0.6) / 0.4)
    return np.clip(tone * rng.normal(1.0, 0.04, 3), 0.05, 1.0)


def _noise(rng: np.random.Generator, size: int) -> Image.Image:
    cells = int(rng.integers(2, 10))
    img = Image.fromarray(rng.integers(0, 256, (cells, cells, 3), dtype=np.uint8))
    img = img.resize((size, size), Image.BICUBIC)
    if rng.random() < 0.6:
        fine_cells = int(rng.integers(12, 48))
        fine = rng.integers(0, 256, (fine_cells, fine_cells, 3), dtype=np.uint8)
        fine_img = Image.fromarray(fine).resize((size, size), Image.BILINEAR)
        img = Image.blend(img, fine_img, float(rng.uniform(0.15, 0.4)))
    return img


def _two_colours(rng: np.random.Generator, weight: np.ndarray) -> Image.Image:
    """An RGB image blending two random colours by ``weight`` (S,S) in 0..1 (via a palette)."""
    c0, c1 = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    palette = (c0 + np.outer(np.linspace(0.0, 1.0, 256), c1 - c0) + 0.5).astype(np.uint8)
    size = weight.shape[1], weight.shape[0]
    indexed = Image.frombytes("P", size, (weight * np.float32(255.0)).astype(np.uint8).tobytes())
    indexed.putpalette(palette.tobytes())
    return indexed.convert("RGB")


def _axes(rng: np.random.Generator, size: int, angle_range: float) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates (S,1) and (1,S) projected on a random direction and its normal."""
    angle = rng.uniform(0, angle_range)
    axis = np.arange(size, dtype=np.float32)
    c, s = np.float32(np.cos(angle)), np.float32(np.sin(angle))
    return c * axis[None, :] + s * axis[:, None], c * axis[:, None] - s * axis[None, :]


def _gradient(rng: np.random.Generator, size: int) -> Image.Image:
    along, _ = _axes(rng, size, 2 * np.pi)
    return _two_colours(rng, np.clip(along / (np.float32(1.42) * size) + np.float32(0.5), 0, 1))


def _stripes(rng: np.random.Generator, size: int) -> Image.Image:
    along, _ = _axes(rng, size, np.pi)
    period = rng.uniform(size / 40, size / 4)
    wave = np.sin(along * np.float32(2 * np.pi / period) + np.float32(rng.uniform(0, 2 * np.pi)))
    if rng.random() < 0.5:
        wave = np.sign(wave)  # hard-edged stripes
    return _two_colours(rng, wave * np.float32(0.5) + np.float32(0.5))


def _checker(rng: np.random.Generator, size: int) -> Image.Image:
    u, v = _axes(rng, size, np.pi / 2)
    cell = np.float32(1.0 / rng.uniform(size / 24, size / 5))
    # The offset keeps the coordinates positive, so truncation is a floor.
    iu = (u * cell + np.float32(size)).astype(np.int32)
    iv = (v * cell + np.float32(size)).astype(np.int32)
    return _two_colours(rng, ((iu ^ iv) & 1).astype(np.float32))


def _shapes(rng: np.random.Generator, size: int, img: Image.Image | None = None) -> Image.Image:
    if img is None:
        img = Image.new("RGB", (size, size), _colour(rng))
    draw = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(4, 20))):
        kind = rng.integers(0, 3)
        x, y = rng.uniform(-0.1, 1.1, 2) * size
        r = rng.uniform(0.03, 0.3) * size
        if kind == 0:
            rx, ry = r, r * rng.uniform(0.3, 1.0)
            draw.ellipse([x - rx, y - ry, x + rx, y + ry], fill=_colour(rng))
        elif kind == 1:
            n = int(rng.integers(3, 7))
            ang = np.sort(rng.uniform(0, 2 * np.pi, n))
            pts = [(x + r * np.cos(a), y + r * np.sin(a)) for a in ang]
            draw.polygon(pts, fill=_colour(rng))
        else:
            x2, y2 = rng.uniform(0, 1, 2) * size
            draw.line([x, y, x2, y2], fill=_colour(rng), width=int(rng.integers(1, max(2, size // 20))))
    return img


_KINDS = (_noise, _gradient, _stripes, _checker, _shapes)
_KIND_PROBS = (0.3, 0.15, 0.15, 0.1, 0.3)


def _skin_distractor(rng: np.random.Generator, img: Image.Image, size: int) -> None:
    """A skin-coloured limb-like blob entering from an edge (another arm, a face)."""
    tone = tuple(int(c) for c in (random_skin_tone(rng) * 255 * rng.uniform(0.6, 1.0)))
    draw = ImageDraw.Draw(img)
    x, y = rng.uniform(0, 1, 2) * size
    w = rng.uniform(0.08, 0.25) * size
    edge = rng.uniform(-0.2, 1.2, 2) * size
    draw.line([x, y, edge[0], edge[1]], fill=tone, width=int(w))
    draw.ellipse([x - w / 2, y - w / 2, x + w / 2, y + w / 2], fill=tone)


def sample_background(rng: np.random.Generator, size: int, gain: np.ndarray) -> np.ndarray:
    """A random (size,size,3) uint8 RGB background, its channels scaled by ``gain`` (3,)
    times a random exposure of its own."""
    kind = _KINDS[int(rng.choice(len(_KINDS), p=_KIND_PROBS))]
    img = kind(rng, size)
    if rng.random() < 0.35:
        other = _KINDS[int(rng.choice(len(_KINDS), p=_KIND_PROBS))](rng, size)
        img = Image.blend(img, other, float(rng.uniform(0.2, 0.6)))
    if rng.random() < 0.15:  # clutter on top of a texture
        img = _shapes(rng, size, img)
    if rng.random() < 0.2:
        _skin_distractor(rng, img, size)
    if rng.random() < 0.35:  # out of focus behind the hand
        img = img.reduce(int(rng.integers(2, 5))).resize((size, size), Image.BILINEAR)
    exposure = rng.uniform(0.5, 1.1) * np.asarray(gain)
    ramp = np.arange(256, dtype=np.float64)
    lut = np.clip(np.outer(exposure, ramp) + 0.5, 0, 255).astype(np.uint8).ravel().tolist()
    return np.array(img.point(lut))


def draw_occluders(rng: np.random.Generator, image: Image.Image, box: np.ndarray, count: int) -> np.ndarray:
    """Draw ``count`` flat shapes near the hand's pixel ``box`` (u0, v0, u1, v1) onto
    ``image`` (an RGB PIL image, modified in place).

    Returns (size,size) bool: the pixels the shapes cover.
    """
    size = image.size[0]
    cover = Image.new("L", (size, size), 0)
    draws = ((ImageDraw.Draw(cover), 255), (ImageDraw.Draw(image), None))
    side = max(box[2] - box[0], box[3] - box[1])
    for _ in range(count):
        x = rng.uniform(box[0], box[2])
        y = rng.uniform(box[1], box[3])
        r = rng.uniform(0.06, 0.16) * side
        fill = _colour(rng)
        if rng.random() < 0.5:  # a stick: pen, handle, strap
            angle = rng.uniform(0, np.pi)
            dx, dy = np.cos(angle) * side, np.sin(angle) * side
            width = int(max(1, r * 0.8))
            for d, value in draws:
                d.line([x - dx, y - dy, x + dx, y + dy], fill=value or fill, width=width)
        else:
            rx, ry = r, r * rng.uniform(0.5, 1.0)
            for d, value in draws:
                d.ellipse([x - rx, y - ry, x + rx, y + ry], fill=value or fill)
    return np.asarray(cover) > 127
