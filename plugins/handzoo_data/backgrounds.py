"""Background images for the ``background`` augmenter: procedural textures and user folders.

Every function returns an (H,W,3) uint8 RGB array of the requested size and
draws all randomness from the ``rng`` it is given (deterministic per seed).
"""

from __future__ import annotations

from collections import OrderedDict
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


@lru_cache(maxsize=8)
def _grid(w: int, h: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates (H,W) float32, cached per size."""
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32) + 0.5
    return xs, ys


@lru_cache(maxsize=1)
def _grain() -> tuple[np.ndarray, np.ndarray]:
    """A fixed 512×512 tile of zero-mean grey grain as (positive, negative) uint8 parts.

    Random windows of it give cheap noise through two saturating OpenCV adds.
    """
    grain = np.random.default_rng(0).integers(-24, 25, (512, 512, 1), dtype=np.int16).repeat(3, axis=2)
    return np.clip(grain, 0, None).astype(np.uint8), np.clip(-grain, 0, None).astype(np.uint8)


def _periodic(kind: str, size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Stripes or a checkerboard through a 256-entry colour table indexed by the wave's phase."""
    w, h = size
    xs, ys = _grid(w, h)
    angle = rng.uniform(0.0, np.pi)
    steps = 256.0 / (rng.uniform(0.05, 0.4) * max(w, h))  # table entries per pixel
    c, s = np.cos(angle) * steps, np.sin(angle) * steps
    offset = 65536.0 + rng.uniform(0, 256)  # a multiple of 256 more keeps the phase positive
    phase = cv2.addWeighted(xs, c, ys, s, offset, dtype=cv2.CV_32S)
    c0, c1 = rng.integers(0, 256, (2, 3)).astype(np.float32)
    k = np.arange(256, dtype=np.float32)
    if kind == "stripes":
        t = 0.5 + 0.5 * np.sin(2 * np.pi * k / 256)
    else:  # the other axis' phase in the high bit: (a xor b) picks the colour
        other = cv2.addWeighted(xs, s, ys, -c, offset, dtype=cv2.CV_32S)
        phase = (phase & 128) ^ (other & 128)
        t = (k >= 128).astype(np.float32)
    table = (c0 + t[:, None] * (c1 - c0)).astype(np.uint8)[:, None]  # (256,1,3)
    return cv2.applyColorMap((phase & 255).astype(np.uint8), table)


def texture(kind: str, size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A procedural background of ``size`` = (W,H).

    Kinds: ``blobs`` (smooth colour fields), ``noise`` (blobs plus grain),
    ``stripes`` (a two-colour sinusoid at a random angle and period),
    ``checker`` (a rotated checkerboard).
    """
    w, h = size
    if kind in ("blobs", "noise"):
        grid = int(rng.integers(2, 9))
        low = rng.integers(0, 256, (grid, grid, 3), dtype=np.uint8)
        # cubic to 16 px then linear: smooth, and far cheaper than one large cubic upscale
        mid = cv2.resize(low, (16, 16), interpolation=cv2.INTER_CUBIC)
        out = cv2.resize(mid, (w, h), interpolation=cv2.INTER_LINEAR)
        if kind == "noise":
            pos, neg = _grain()
            th, tw = pos.shape[:2]
            if h > th or w > tw:
                reps = (-(-h // th), -(-w // tw), 1)
                pos, neg = np.tile(pos, reps), np.tile(neg, reps)
                th, tw = pos.shape[:2]
            y0, x0 = int(rng.integers(0, th - h + 1)), int(rng.integers(0, tw - w + 1))
            window = (slice(y0, y0 + h), slice(x0, x0 + w))
            out = cv2.subtract(cv2.add(out, pos[window]), neg[window])
        return out
    if kind in ("stripes", "checker"):
        return _periodic(kind, size, rng)
    raise ValueError(f"unknown texture {kind!r}; expected blobs, noise, stripes or checker")


class FolderBackgrounds:
    """Random crops of the images in a folder (searched recursively, sorted for determinism).

    Decoded images are kept in an LRU of ``cache_size`` entries, shrunk to a
    short edge of the requested size, so repeated draws are cheap.
    """

    def __init__(self, folder: str | Path, cache_size: int = 256) -> None:
        self.folder = Path(folder).expanduser()
        self.cache_size = cache_size
        self._files: list[Path] | None = None
        self._cache: OrderedDict[tuple[Path, int], np.ndarray] = OrderedDict()

    @property
    def files(self) -> list[Path]:
        if self._files is None:
            from handzoo.plugin_api import ConfigError

            if not self.folder.is_dir():
                raise ConfigError(f"augmenter 'background': folder {self.folder} does not exist")
            self._files = sorted(
                p for p in self.folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
            )
            if not self._files:
                raise ConfigError(
                    f"augmenter 'background': folder {self.folder} holds no images "
                    f"({', '.join(IMAGE_SUFFIXES)})"
                )
        return self._files

    def __getstate__(self) -> dict:
        # Worker processes rebuild their own cache rather than receiving a copy.
        state = dict(self.__dict__)
        state["_cache"] = OrderedDict()
        return state

    def _load(self, path: Path, side: int) -> np.ndarray:
        key = (path, side)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        image = cv2.imread(str(path), cv2.IMREAD_COLOR_RGB)
        if image is None:
            from handzoo.plugin_api import DataError

            raise DataError(f"augmenter 'background': cannot read {path}; remove it from {self.folder}")
        scale = side / min(image.shape[:2])
        if scale < 1.0:  # keep at least `side` pixels on the short edge, no more
            new = (max(side, round(image.shape[1] * scale)), max(side, round(image.shape[0] * scale)))
            image = cv2.resize(image, new, interpolation=cv2.INTER_AREA)
        if self.cache_size:
            self._cache[key] = image
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return image

    def sample(self, size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
        """A random square-ish crop (40-100 % of the short edge), mirrored half the time, at ``size``."""
        w, h = size
        path = self.files[int(rng.integers(len(self.files)))]
        image = self._load(path, max(w, h))
        ih, iw = image.shape[:2]
        side = max(1, int(min(ih, iw) * rng.uniform(0.4, 1.0)))
        y0 = int(rng.integers(0, ih - side + 1))
        x0 = int(rng.integers(0, iw - side + 1))
        crop = image[y0 : y0 + side, x0 : x0 + side]
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        interp = cv2.INTER_AREA if side > max(w, h) else cv2.INTER_LINEAR
        return cv2.resize(np.ascontiguousarray(crop), (w, h), interpolation=interp)
