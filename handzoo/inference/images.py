"""Images of any size and mode, read for inference, and the square crop that feeds the model.

Pixel convention (as :mod:`handzoo.geometry`): pixel ``(row j, column i)``
covers ``[i, i+1) × [j, j+1)``, so a box ``(x0, y0, x1, y1)`` is in continuous
pixel coordinates and a resize by ``s`` maps ``u -> s·u``.

Modes are made RGB the same way everywhere:

* RGBA, LA and palette images with transparency are composited on black
  (colour × alpha): a cut-out hand stays a hand on a plain background;
* grayscale (1, L, 16-bit I;16) is repeated to three channels; 16-bit samples
  keep their high byte (``v >> 8``), as Pillow does for 16-bit RGB PNGs;
* CMYK, YCbCr and palette images are converted by Pillow.

Files are shown upright: the EXIF orientation tag of a photo is applied, and
all pixel coordinates (boxes, ``K``, ``joints2d``) refer to the upright image.
PIL images and arrays are used as given.

Speed: a JPEG much larger than the crop is decoded at 1/2, 1/4 or 1/8 scale by
libjpeg (``Image.draft``, almost free), and the rest of the down-scaling is one
antialiased resize of the crop only.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

import numpy as np
from PIL import Image

from handzoo.errors import DataError, UsageError
from handzoo.files import image_file_problem

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")

# An image given to the predictor: a file path, a PIL image or a uint8 array (H,W,3).
ImageInput = Union[str, Path, Image.Image, np.ndarray]  # noqa: UP007 (a runtime alias)

Box = tuple[float, float, float, float]

_EXIF_ORIENTATION = 0x0112
# EXIF orientation -> the Pillow transpose that makes the image upright.
_UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


class UnreadableImageError(DataError):
    """An image that cannot be decoded (missing, truncated, corrupt or of a wrong type)."""

    def __init__(self, source: str, reason: str) -> None:
        self.source, self.reason = source, reason
        super().__init__(f"{source}: {reason}")


@dataclass
class Crop:
    """The model's view of one image.

    Attributes:
        pixels: (S,S,3) uint8 RGB, the crop resized to the model's input size
            (a numpy array; a torch tensor on the model's device when the
            Predictor decoded it there).
        box: (x0, y0, x1, y1) the square that was cropped, in pixels of the
            original (upright) image; it may reach outside the image, where
            the crop is filled with ``fill``.
        image_size: (width, height) of the original upright image in pixels.
        source: the file path, or ``None`` for a PIL image or an array.
        angle: radians; the square ``box`` was turned clockwise on screen about
            its centre by this angle before it was cut (0: axis-aligned, see
            :func:`handzoo.geometry.rotated_crop_affine`).
    """

    pixels: np.ndarray
    box: Box
    image_size: tuple[int, int]
    source: str | None = None
    angle: float = 0.0


def find_images(inputs: Sequence[str | Path]) -> list[Path]:
    """Image files named by ``inputs``: files as given, folders expanded (not recursively).

    A folder contributes its ``*.jpg``, ``*.jpeg`` and ``*.png`` files (any
    case) in sorted order; other files in it are ignored.

    Raises:
        UsageError: no inputs, a path that does not exist, or a folder without images.
    """
    if not inputs:
        raise UsageError("no images given; pass image files and/or folders of .jpg/.png images")
    found: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            # Not only regular files: a FIFO or device named like an image is reported when it is
            # read (one line naming it), never silently dropped.
            named = (p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            images = sorted(p for p in named if not p.is_dir())
            if not images:
                raise UsageError(
                    f"{path}: folder holds no {', '.join(IMAGE_SUFFIXES)} images; "
                    "pass a folder with images or the image files themselves"
                )
            found.extend(images)
        elif path.exists():
            found.append(path)
        else:
            raise UsageError(f"{path} does not exist; pass an image file or a folder of images")
    return found


def parse_box(text: str) -> Box:
    """``"x0,y0,x1,y1"`` (pixels) -> a box; raises :class:`UsageError` when malformed or empty."""
    parts = [p for p in text.replace(" ", "").split(",") if p]
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise UsageError(f"--box {text!r}: expected four numbers x0,y0,x1,y1 in pixels") from None
    if len(values) != 4 or not all(math.isfinite(v) for v in values):
        raise UsageError(f"--box {text!r}: expected four finite numbers x0,y0,x1,y1 in pixels")
    return check_box(values, f"--box {text!r}")


def check_box(box: Iterable[float], what: str = "box") -> Box:
    """Validate (x0, y0, x1, y1) with x1 > x0 and y1 > y0."""
    values = tuple(float(v) for v in box)
    if len(values) != 4:
        raise UsageError(f"{what}: expected 4 values (x0, y0, x1, y1), got {len(values)}")
    x0, y0, x1, y1 = values
    if not (x1 > x0 and y1 > y0):
        raise UsageError(f"{what}: x1 must exceed x0 and y1 must exceed y0 (pixels), got {values}")
    return values  # type: ignore[return-value]


def square_box(box: Box) -> Box:
    """The square with the same centre as ``box`` whose side is the box's longer side.

    The model sees square crops; growing the shorter side (rather than
    stretching the crop) keeps the hand's proportions.
    """
    x0, y0, x1, y1 = box
    side = max(x1 - x0, y1 - y0)
    cx, cy = 0.5 * (x0 + x1), 0.5 * (y0 + y1)
    return (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2)


def crop_box(image_size: tuple[int, int], crop: str = "center") -> Box:
    """The square box of a crop mode for an image of (width, height) pixels.

    ``center``: the largest centred square inside the image. ``full``: the
    smallest centred square holding the whole image (the rest is filled).
    """
    w, h = image_size
    side = min(w, h) if crop == "center" else max(w, h) if crop == "full" else None
    if side is None:
        raise UsageError(f"--crop {crop!r}: expected 'center' or 'full' (or pass --box x0,y0,x1,y1)")
    x0, y0 = (w - side) / 2, (h - side) / 2
    return (x0, y0, x0 + side, y0 + side)


def to_rgb(image: Image.Image) -> Image.Image:
    """Any Pillow mode -> RGB (alpha composited on black; 16-bit scaled to 8-bit)."""
    mode = image.mode
    if mode == "RGB":
        return image
    if mode.startswith("I") or mode == "F":
        values = np.asarray(image)
        if mode.startswith("I;16") or values.max(initial=0) > 255:
            values = np.right_shift(np.clip(values, 0, 65535).astype(np.uint32), 8)
        return Image.fromarray(np.clip(values, 0, 255).astype(np.uint8), "L").convert("RGB")
    if mode == "P" and "transparency" in image.info:
        image, mode = image.convert("RGBA"), "RGBA"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        out = Image.new("RGB", rgba.size, (0, 0, 0))
        out.paste(rgba.convert("RGB"), mask=rgba.getchannel("A"))
        return out
    return image.convert("RGB")


def array_to_image(array: np.ndarray, name: str) -> Image.Image:
    """A uint8 (H,W,3), (H,W,4), (H,W) or (H,W,1) array (uint16 allowed) -> PIL image."""
    a = np.asarray(array)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (3, 4)) or 0 in a.shape:
        raise UsageError(f"{name}: expected an image array (H,W,3) uint8, got shape {a.shape}")
    if a.dtype == np.uint16:
        a = np.right_shift(a, 8).astype(np.uint8)
    if a.dtype != np.uint8:
        raise UsageError(
            f"{name}: expected a uint8 image array (0..255), got {a.dtype}; "
            "convert floats in 0..1 with (x * 255).round().astype(np.uint8)"
        )
    mode = "L" if a.ndim == 2 else {3: "RGB", 4: "RGBA"}[a.shape[2]]
    return Image.fromarray(np.ascontiguousarray(a), mode)


def _orientation(image: Image.Image) -> int:
    try:
        value = int(image.getexif().get(_EXIF_ORIENTATION, 1))
    except Exception:  # a malformed EXIF block must not make a readable image unreadable
        return 1
    return value if value in _UPRIGHT else 1


def _raw_box(box: Box, orientation: int, raw_size: tuple[int, int]) -> Box:
    """A box in upright coordinates -> the same region in the file's stored (raw) coordinates."""
    if orientation == 1:
        return box
    W, H = raw_size
    # Where a raw point (x, y) lands in the upright image, for each orientation.
    forward = {
        2: lambda x, y: (W - x, y),
        3: lambda x, y: (W - x, H - y),
        4: lambda x, y: (x, H - y),
        5: lambda x, y: (y, x),
        6: lambda x, y: (H - y, x),
        7: lambda x, y: (H - y, W - x),
        8: lambda x, y: (y, W - x),
    }[orientation]
    # Each map is affine: recover it from three points and invert it.
    origin = np.array(forward(0.0, 0.0))
    ex, ey = np.array(forward(1.0, 0.0)) - origin, np.array(forward(0.0, 1.0)) - origin
    inverse = np.linalg.inv(np.stack([ex, ey], axis=1))
    corners = np.array([[box[0], box[1]], [box[2], box[3]]]) - origin
    raw = corners @ inverse.T
    (x0, x1), (y0, y1) = np.sort(raw[:, 0]), np.sort(raw[:, 1])
    return (float(x0), float(y0), float(x1), float(y1))


def _crop_resize(image: Image.Image, box: Box, size: int, fill: tuple[int, int, int]) -> Image.Image:
    """Crop ``box`` (pixels of ``image``, may leave it) and resize it to size×size, antialiased."""
    w, h = image.size
    x0, y0, x1, y1 = box
    if x0 >= 0 and y0 >= 0 and x1 <= w and y1 <= h:
        return image.resize((size, size), Image.Resampling.BILINEAR, box=box, reducing_gap=3.0)
    # Part of the box is outside: paste the covered part on a filled canvas, then resize.
    ix0, iy0 = math.floor(x0), math.floor(y0)
    ix1, iy1 = math.ceil(x1), math.ceil(y1)
    canvas = Image.new("RGB", (ix1 - ix0, iy1 - iy0), fill)
    inside = (max(ix0, 0), max(iy0, 0), min(ix1, w), min(iy1, h))
    if inside[2] > inside[0] and inside[3] > inside[1]:
        canvas.paste(image.crop(inside), (inside[0] - ix0, inside[1] - iy0))
    local = (x0 - ix0, y0 - iy0, x1 - ix0, y1 - iy0)
    return canvas.resize((size, size), Image.Resampling.BILINEAR, box=local, reducing_gap=3.0)


def _rotated_crop_resize(
    image: Image.Image, box: Box, angle: float, size: int, fill: tuple[int, int, int]
) -> Image.Image:
    """The square ``box`` turned clockwise on screen by ``angle`` about its centre, as size×size pixels.

    The map is :func:`handzoo.geometry.rotated_crop_affine`. Antialiased like
    :func:`_crop_resize` (Pillow's resize with ``reducing_gap=3``): the image
    under the square is first averaged over r×r blocks when the square is
    more than 3·r·size pixels wide, then the turned square is sampled
    bilinearly on an n×n grid, n ≥ its side in those pixels (no detail is
    skipped), with a border of a few pixels, and resized to ``size`` by the
    same antialiased resize, whose filter reaches into that border as it
    reaches past a box's edges in the image. A square smaller than ``size`` is
    sampled at ``size`` directly.

    Outside the image: the sampling sees ``fill`` beyond the image's edges
    (bilinear across an edge blends the two); in the border, points outside
    the image carry no weight in the resize (premultiplied alpha), as the
    image's own edges do for an axis-aligned box.
    """
    import cv2

    from handzoo.geometry import rotated_crop_affine

    x0, y0, x1, y1 = box
    extent = max(x1 - x0, y1 - y0)  # the square's side in image pixels
    r = max(int(extent / size / 3.0), 1)  # Pillow's reducing_gap=3: average r×r blocks first
    n = max(size, math.ceil(extent / r - 1e-6))
    pad = 0 if n == size else math.ceil(n / size) + 2  # covers the resize filter's reach
    side = n + 2 * pad
    grid = rotated_crop_affine(box, angle, n)
    grid[:2, 2] += pad
    to_image = np.linalg.inv(grid)  # grid pixels -> image pixels, continuous coordinates
    # Only the part of the image under the grid is read: its bounding box and a block more, on r's grid.
    corners = np.array([[0, 0, 1], [side, 0, 1], [0, side, 1], [side, side, 1]], dtype=np.float64)
    under = corners @ to_image[:2].T
    w, h = image.size
    left = max((math.floor(under[:, 0].min()) // r - 1) * r, 0)
    top = max((math.floor(under[:, 1].min()) // r - 1) * r, 0)
    right, bottom = min(math.ceil(under[:, 0].max()) + r, w), min(math.ceil(under[:, 1].max()) + r, h)
    if right > left and bottom > top:
        part = image.crop((left, top, right, bottom))
        if r > 1:
            part = part.reduce(r)
        opaque = np.full((part.size[1], part.size[0], 4), 255, dtype=np.uint8)  # alpha 255: the image
        opaque[..., :3] = np.asarray(part)
        # Part pixels are image pixels shifted by the part's corner and divided by r; OpenCV puts
        # pixel centres at integers: half a pixel on both sides.
        to_part = np.diag([1.0 / r, 1.0 / r, 1.0])
        to_part[:2, 2] = (-left / r - 0.5, -top / r - 0.5)
        to_part = to_part @ to_image @ np.array([[1.0, 0.0, 0.5], [0.0, 1.0, 0.5], [0.0, 0.0, 1.0]])
        # Outside the part: (0, 0, 0, 0), so colours come out premultiplied by the alpha of the image.
        rgba = cv2.warpAffine(
            opaque,
            to_part[:2],
            (side, side),
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=(0, 0, 0, 0),
        )
    else:
        rgba = np.zeros((side, side, 4), dtype=np.uint8)
    # Inside the square, what is not the image is fill: composite the premultiplied colours over it.
    inner = rgba[pad : pad + n, pad : pad + n]
    alpha = inner[..., 3:].astype(np.float32)
    if (alpha < 255).any():
        over = inner[..., :3] + (255.0 - alpha) / 255.0 * np.asarray(fill, dtype=np.float32)
        inner[..., :3] = np.clip(np.round(over), 0, 255).astype(np.uint8)
        inner[..., 3] = 255
    if n == size:
        return Image.fromarray(np.ascontiguousarray(inner[..., :3]), "RGB")
    # The border's colours are premultiplied: resized as RGBa, points outside the image carry no weight.
    out = Image.fromarray(rgba, "RGBa").resize(
        (size, size), Image.Resampling.BILINEAR, box=(pad, pad, pad + n, pad + n), reducing_gap=3.0
    )
    return out.convert("RGBA").convert("RGB")


def _open(source: ImageInput, index: int) -> tuple[Image.Image, str | None, bool]:
    """(image, source name or None, whether it is a file whose EXIF orientation applies)."""
    if isinstance(source, (str, Path)):
        path = Path(source)
        problem = image_file_problem(path)
        if problem is not None:
            raise UnreadableImageError(str(path), problem)
        try:
            return Image.open(path), str(path), True
        except FileNotFoundError:
            raise UnreadableImageError(str(path), "file does not exist") from None
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
            raise UnreadableImageError(str(path), f"not a readable image ({exc})") from None
    if isinstance(source, Image.Image):
        return source, None, False
    if isinstance(source, np.ndarray):
        return array_to_image(source, f"images[{index}]"), None, False
    raise UsageError(
        f"images[{index}]: expected a file path, a PIL image or a uint8 array (H,W,3), "
        f"got {type(source).__name__}"
    )


def load_crop(
    source: ImageInput,
    size: int,
    box: Iterable[float] | None = None,
    crop: str = "center",
    fill: tuple[int, int, int] = (0, 0, 0),
    index: int = 0,
    angle: float = 0.0,
) -> Crop:
    """Read one image and cut the square the model sees.

    Args:
        source: a .jpg/.png path, a PIL image (any mode) or a uint8 array
            (H,W,3) / (H,W) / (H,W,4).
        size: S, the model's input side in pixels.
        box: (x0, y0, x1, y1) pixels of the original upright image; made
            square around its centre (longer side). ``None``: use ``crop``.
        crop: ``center`` (largest centred square, the default) or ``full``
            (the whole image, padded to a square); used when ``box`` is None.
        fill: RGB colour of crop areas outside the image.
        index: position of ``source`` in a batch (named in errors).
        angle: radians; turn the square clockwise on screen about its centre
            by this angle (a rotated detection, see
            :class:`handzoo.inference.detection.Detection`); 0 cuts it
            axis-aligned. A turned crop is cut from the whole decoded image.

    Returns:
        :class:`Crop` with the (S,S,3) uint8 pixels, the box actually used and the angle.

    Raises:
        UnreadableImageError: the file cannot be opened or decoded.
        UsageError: a malformed box or array.
    """
    image, name, is_file = _open(source, index)
    try:
        orientation = _orientation(image) if is_file else 1
        raw_size = image.size
        upright_size = raw_size[::-1] if orientation in (5, 6, 7, 8) else raw_size
        if upright_size[0] < 1 or upright_size[1] < 1:
            raise UnreadableImageError(name or f"images[{index}]", "image has no pixels")
        used = square_box(check_box(box, f"box of images[{index}]")) if box is not None else None
        used = used or crop_box(upright_size, crop)
        if not math.isfinite(angle):
            raise UsageError(f"angle of images[{index}]: expected a finite number of radians, got {angle}")
        if angle != 0.0:
            image.load()
            rgb = to_rgb(image)
            if orientation != 1:
                rgb = rgb.transpose(_UPRIGHT[orientation])
            out = _rotated_crop_resize(rgb, used, angle, size, fill)
        else:
            raw = _raw_box(used, orientation, raw_size)
            scale = 1.0
            if is_file and image.format == "JPEG":
                # Ask libjpeg for the smallest DCT scale that keeps the crop at least S pixels wide.
                side = raw[2] - raw[0]
                wanted = (math.ceil(raw_size[0] * size / side), math.ceil(raw_size[1] * size / side))
                drafted = image.draft("RGB", wanted)
                if drafted is not None:
                    scale = raw_size[0] / drafted[1][2]
            image.load()
            rgb = to_rgb(image)
            out = _crop_resize(rgb, tuple(v / scale for v in raw), size, fill)  # type: ignore[arg-type]
            if orientation != 1:
                out = out.transpose(_UPRIGHT[orientation])
        pixels = np.asarray(out, dtype=np.uint8)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise UnreadableImageError(name or f"images[{index}]", f"cannot decode the image ({exc})") from None
    finally:
        if is_file:
            image.close()
    size_wh = (int(upright_size[0]), int(upright_size[1]))
    return Crop(pixels=pixels, box=used, image_size=size_wh, source=name, angle=float(angle))


def load_upright(source: ImageInput, index: int = 0) -> Image.Image:
    """The full original image, upright and RGB (for pictures and detectors); a file that
    cannot be decoded raises :class:`UnreadableImageError`, as in :func:`load_crop`."""
    image, name, is_file = _open(source, index)
    try:
        orientation = _orientation(image) if is_file else 1
        rgb = to_rgb(image)
        if orientation != 1:
            rgb = rgb.transpose(_UPRIGHT[orientation])
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise UnreadableImageError(name or f"images[{index}]", f"cannot decode the image ({exc})") from None
    return rgb


def as_sequence(images: Any) -> list[ImageInput]:
    """One image or a sequence of them -> a list (a single array (H,W,C) is one image)."""
    if isinstance(images, (str, Path, Image.Image)):
        return [images]
    if isinstance(images, np.ndarray):
        return [images] if images.ndim in (2, 3) else list(images)
    return list(images)
