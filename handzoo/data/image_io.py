"""JPEG decoding and affine warps in the pixel-edge convention of :mod:`handzoo.geometry`.

Pixel convention: pixel ``(row j, column i)`` covers ``[i, i+1) × [j, j+1)``, so
its centre is ``(i + 0.5, j + 0.5)`` and a resize by ``s`` maps ``u -> s·u``.
OpenCV puts pixel centres at integers; :func:`cv2_affine` converts.

Decoding uses OpenCV (about 1.5× faster than PIL for 224-px JPEGs) with
libjpeg's DCT down-scaling (1/2, 1/4, 1/8: nearly free) when the target is
much smaller than the file. OpenCV only *warns* about a truncated file and
fills the rest with grey, so a file that does not end with the JPEG
end-of-image marker is decoded again by PIL, which raises on truncation:
a damaged file is an error, never a silently grey image.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from handzoo.errors import DataError
from handzoo.files import MAX_IMAGE_BYTES, image_file_problem

_SOI = b"\xff\xd8"
_EOI = b"\xff\xd9"
# SOF markers carry the frame size; C4 (DHT), C8 (JPG) and CC (DAC) share the range but do not.
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
# The IMREAD_REDUCED_COLOR_* flags include IMREAD_COLOR, which decodes to BGR:
# swap that bit for IMREAD_COLOR_RGB so every colour decode is RGB.
_RGB = cv2.IMREAD_COLOR_RGB
_REDUCED = {
    (False, 1): _RGB,
    (False, 2): (cv2.IMREAD_REDUCED_COLOR_2 & ~cv2.IMREAD_COLOR) | _RGB,
    (False, 4): (cv2.IMREAD_REDUCED_COLOR_4 & ~cv2.IMREAD_COLOR) | _RGB,
    (False, 8): (cv2.IMREAD_REDUCED_COLOR_8 & ~cv2.IMREAD_COLOR) | _RGB,
    (True, 1): cv2.IMREAD_GRAYSCALE,
    (True, 2): cv2.IMREAD_REDUCED_GRAYSCALE_2,
    (True, 4): cv2.IMREAD_REDUCED_GRAYSCALE_4,
    (True, 8): cv2.IMREAD_REDUCED_GRAYSCALE_8,
}


class BadImageError(DataError):
    """An image file that cannot be decoded (missing, truncated or corrupt); names the file."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path, self.reason = Path(path), reason
        super().__init__(
            f"{path}: {reason}; re-download it, or pass on_bad_image='skip' to replace it by another sample"
        )


BORDER_MODES = {
    "constant": cv2.BORDER_CONSTANT,
    "reflect": cv2.BORDER_REFLECT_101,
    "replicate": cv2.BORDER_REPLICATE,
}
# Uncovered pixels after a warp get the ImageNet mean colour: zero after normalisation.
FILL_RGB = (124, 116, 104)


def jpeg_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a JPEG's frame header, or None if no header is found."""
    if not data.startswith(_SOI):
        return None
    pos, n = 2, len(data)
    while pos + 4 <= n:
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            pos += 2
            continue
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        if marker in _SOF and pos + 9 <= n:
            height = int.from_bytes(data[pos + 5 : pos + 7], "big")
            width = int.from_bytes(data[pos + 7 : pos + 9], "big")
            return width, height
        pos += 2 + length
    return None


def choose_reduction(size: tuple[int, int] | None, target: int | None) -> int:
    """The largest libjpeg reduction r in (1, 2, 4, 8) keeping min(W,H)/r >= target."""
    if size is None or target is None:
        return 1
    smallest = min(size)
    r = 1
    while r < 8 and smallest / (2 * r) >= target:
        r *= 2
    return r


def read_jpeg(
    path: str | Path, target: int | None = None, grayscale: bool = False
) -> tuple[np.ndarray, float]:
    """Decode a JPEG, down-scaled by libjpeg when ``target`` allows.

    Args:
        path: the file.
        target: the side the caller will resize to; the decode is reduced by the
            largest r in (1,2,4,8) with min(W,H)/r >= target (None: full size).
        grayscale: decode one channel.

    Returns:
        ``(image, factor)``: (H',W',3) RGB or (H',W') uint8, and the factor that
        maps pixel coordinates of the file to those of ``image`` (1/r).

    Raises:
        BadImageError: (a DataError) naming the file when it cannot be read or is truncated.
    """
    problem = image_file_problem(path)
    if problem is not None:
        raise BadImageError(path, problem)
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_IMAGE_BYTES + 1)  # the file may have grown since it was checked
        if len(data) > MAX_IMAGE_BYTES:
            raise BadImageError(path, f"is more than the {MAX_IMAGE_BYTES >> 20} MiB an image file may have")
    except OSError as exc:
        raise BadImageError(path, f"cannot read image ({exc.strerror or exc})") from exc
    r = choose_reduction(jpeg_size(data), target)
    image = None
    if data.startswith(_SOI) and _EOI in data[-64:]:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), _REDUCED[(grayscale, r)])
    if image is None:
        image = _decode_with_pil(path, data, grayscale, r)
    return image, 1.0 / r


def _decode_with_pil(path: str | Path, data: bytes, grayscale: bool, r: int) -> np.ndarray:
    """Strict fallback: PIL raises on truncated or corrupt data where OpenCV would not."""
    import io

    from PIL import Image, ImageFile

    if ImageFile.LOAD_TRUNCATED_IMAGES:
        raise BadImageError(
            path, "no JPEG end-of-image marker (truncated?) and PIL is set to load truncated images"
        )
    try:
        with Image.open(io.BytesIO(data)) as im:
            if r > 1:
                im.draft("L" if grayscale else "RGB", (im.width // r, im.height // r))
            image = np.asarray(im.convert("L" if grayscale else "RGB"))
    except Exception as exc:
        raise BadImageError(path, f"unreadable or truncated image ({type(exc).__name__}: {exc})") from exc
    size = jpeg_size(data)
    if r > 1 and size is not None:
        expected = (-(-size[0] // r), -(-size[1] // r))  # libjpeg's ceil(W/r), ceil(H/r)
        if (image.shape[1], image.shape[0]) != expected:  # PIL's draft may pick another scale
            image = cv2.resize(image, expected, interpolation=cv2.INTER_AREA)
    return image


def cv2_affine(A: np.ndarray) -> np.ndarray:
    """The (2,3) OpenCV matrix of the pixel-edge affine ``A`` (2×3 or 3×3).

    Edge coordinates are OpenCV's plus 0.5: ``x_e = x_cv + 0.5``, so
    ``x_cv' = L x_cv + t + L·(0.5,0.5) − (0.5,0.5)``.
    """
    L = A[:2, :2]
    t = A[:2, 2] + L @ np.array([0.5, 0.5]) - 0.5
    return np.concatenate([L, t[:, None]], axis=1)


def warp_image(
    image: np.ndarray, A: np.ndarray, size: tuple[int, int], border: str = "constant"
) -> np.ndarray:
    """Warp an (H,W,3) uint8 image by the pixel-edge affine ``A`` into ``size`` = (W',H')."""
    return cv2.warpAffine(
        image,
        cv2_affine(A),
        size,
        flags=cv2.INTER_LINEAR,
        borderMode=BORDER_MODES[border],
        borderValue=FILL_RGB,
    )


def warp_mask(mask: np.ndarray, A: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Warp a {0,1} uint8 (H,W) mask; bilinear then rounding = a threshold at one half.

    Pixels from outside the source are 0 (not hand).
    """
    return cv2.warpAffine(
        mask, cv2_affine(A), size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0
    )


def warp_image_and_mask(
    image: np.ndarray, mask: np.ndarray, A: np.ndarray, size: tuple[int, int], border: str = "constant"
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`warp_image` and :func:`warp_mask` in one pass over an RGBA buffer.

    OpenCV's 4-channel warp is faster than its 3-channel one, so packing the
    mask as alpha costs less than a second warp; the results are identical.
    With ``reflect``/``replicate`` borders the mask follows the image content.
    """
    rgba = cv2.cvtColor(image, cv2.COLOR_RGB2RGBA)
    cv2.mixChannels([mask], [rgba], [0, 3])
    out = cv2.warpAffine(
        rgba,
        cv2_affine(A),
        size,
        flags=cv2.INTER_LINEAR,
        borderMode=BORDER_MODES[border],
        borderValue=(*FILL_RGB, 0),
    )
    return cv2.cvtColor(out, cv2.COLOR_RGBA2RGB), cv2.extractChannel(out, 3)


def resize_image(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize (W',H') with area averaging when shrinking (no aliasing), bilinear otherwise.

    Both map pixel edges ``u -> u·W'/W``, like :func:`handzoo.geometry.crop_resize_K`.
    """
    h, w = image.shape[:2]
    if (w, h) == tuple(size):
        return image
    shrink = size[0] < w and size[1] < h
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def binarize_mask(mask: np.ndarray) -> np.ndarray:
    """A JPEG mask (0..255 with compression noise) as {0,1} uint8."""
    return (mask > 127).view(np.uint8)
