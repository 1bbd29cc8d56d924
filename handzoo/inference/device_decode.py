"""JPEG files decoded and cropped on the model's device (``Predictor(decode="device")``).

On a GPU, decoding 640×480 JPEGs on the CPU caps the Predictor far below the
model's speed. Here the CPU only reads the bytes and the header; the batch is
decoded by ``torchvision.io.decode_jpeg`` on the device (nvJPEG on CUDA; the
same call runs on the CPU, which is how the tests check it) and each square
crop is resampled by two small matrix products.

Resampling is Pillow's antialiased bilinear resize of a box (the CPU path,
:func:`handzoo.inference.images.load_crop`): output pixel i of a box
``[a, b)`` resized to S samples source pixels with triangle weights of
half-width ``max(1, (b - a)/S)`` around ``a + (i + 0.5)·(b - a)/S``, normalised
over the whole (possibly out-of-image) box. Separable, so the crop is
``Wy · image · Wxᵀ``, and whatever weight falls outside the image takes the
fill colour: ``fill · (1 - wy_in(i)·wx_in(j))``. Files this path cannot take
as they are (not JPEG, an EXIF orientation other than upright, CMYK) go to
the CPU path, one by one.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from handzoo.device import constant
from handzoo.inference.images import Box, check_box, crop_box, square_box

_EXIF_ORIENTATION = 0x0112
# torchvision 0.29 announces a move of its decoders to TorchCodec; they still work. Filtered
# here once (catch_warnings is not thread-safe, and the Predictor decodes in a reader thread).
warnings.filterwarnings("ignore", "The image decoding and encoding capabilities", DeprecationWarning)


@dataclass
class JpegFile:
    """A JPEG that the device path can decode: its bytes, upright size (W,H) and source name."""

    data: torch.Tensor
    size: tuple[int, int]
    source: str


def probe_jpeg(path: str | Path) -> JpegFile | None:
    """Read a file for device decoding, or None when it needs the CPU path.

    Only the header is parsed here (Pillow opens lazily); the pixels are not decoded.
    """
    try:
        with Image.open(path) as image:
            if image.format != "JPEG" or image.mode not in ("RGB", "L"):
                return None
            try:
                orientation = int(image.getexif().get(_EXIF_ORIENTATION, 1))
            except Exception:  # a malformed EXIF block: let the CPU path judge it
                return None
            if orientation != 1:
                return None
            size = image.size
        data = np.fromfile(path, dtype=np.uint8)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None  # the CPU path raises the proper error for it
    return JpegFile(torch.from_numpy(data), (int(size[0]), int(size[1])), str(path))


def resample_matrix(
    lo: float, hi: float, n_src: int, n_out: int, canvas: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Weights (n_out, n_src) of an antialiased bilinear resize of ``[lo, hi)`` to n_out pixels.

    ``canvas`` = [c0, c1) is the range of pixels the filter may read (taps
    beyond it are dropped and the rest renormalised, as Pillow does at an
    image's edge); canvas pixels outside [0, n_src) hold the fill colour.
    Returns the weights on the source's own pixels and, per output pixel, the
    share of its weight that falls inside the source.
    """
    scale = (hi - lo) / n_out
    support = max(1.0, scale)
    centres = lo + (np.arange(n_out) + 0.5) * scale
    first = max(int(np.floor(centres.min() - support)), canvas[0])
    last = min(int(np.ceil(centres.max() + support)), canvas[1] - 1)
    taps = np.arange(first, last + 1)  # every canvas pixel that may be touched
    weights = np.clip(1.0 - np.abs((taps[None] + 0.5 - centres[:, None]) / support), 0.0, None)
    weights /= weights.sum(1, keepdims=True)
    inside = (taps >= 0) & (taps < n_src)
    full = np.zeros((n_out, n_src))
    full[:, taps[inside]] = weights[:, inside]
    return full, full.sum(1)


def crop_on_device(
    image: torch.Tensor, box: Box, size: int, fill: tuple[int, int, int]
) -> torch.Tensor:
    """(3,H,W) uint8 on the device -> the (S,S,3) uint8 crop of ``box`` (see the module doc)."""
    _, h, w = image.shape
    x0, y0, x1, y1 = box
    # As the CPU path: a box inside the image reads the image; one that leaves it is
    # pasted on a fill-coloured canvas of the box's whole-pixel extent first.
    inside = x0 >= 0 and y0 >= 0 and x1 <= w and y1 <= h
    cx = (0, w) if inside else (math.floor(x0), math.ceil(x1))
    cy = (0, h) if inside else (math.floor(y0), math.ceil(y1))
    wx, in_x = resample_matrix(x0, x1, w, size, cx)
    wy, in_y = resample_matrix(y0, y1, h, size, cy)
    dev = image.device
    # float64: a float32 product would run in TF32 on GPUs where a run enabled it (±1 grey level)
    Wx, Wy = _to_device(wx, dev), _to_device(wy, dev)
    out = Wy @ image.double() @ Wx.T  # (3,S,S)
    outside = 1.0 - _to_device(np.outer(in_y, in_x), dev)
    colour = constant(tuple(float(c) for c in fill), dev).view(3, 1, 1)
    out = out + colour * outside
    return out.round_().clamp_(0, 255).to(torch.uint8).permute(1, 2, 0)


def _to_device(array: np.ndarray, device: torch.device) -> torch.Tensor:
    """float64 ``array`` on ``device``; to a GPU through pinned memory, without waiting for it."""
    host = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float64))
    if device.type != "cuda":
        return host.to(device)
    return host.pin_memory().to(device, non_blocking=True)


def decode_crops(
    files: list[JpegFile],
    boxes: list[Box | None],
    size: int,
    crop: str,
    fill: tuple[int, int, int],
    device: torch.device,
) -> list[tuple[torch.Tensor, Box]]:
    """Decode ``files`` on ``device`` as one batch and cut each one's square: [(pixels (S,S,3), box)].

    Raises:
        RuntimeError: the decoder rejected a file (the caller falls back to the CPU path).
    """
    from torchvision.io import ImageReadMode, decode_jpeg

    decoded = decode_jpeg([f.data for f in files], mode=ImageReadMode.RGB, device=device)
    out = []
    for f, image, box in zip(files, decoded, boxes, strict=True):
        used = square_box(check_box(box, f"box of {f.source}")) if box is not None else crop_box(f.size, crop)
        if not all(math.isfinite(v) for v in used):
            raise RuntimeError(f"{f.source}: box {used} is not finite")
        out.append((crop_on_device(image, used, size, fill), used))
    return out
