"""JPEG decoding: RGB channel order at every libjpeg reduction, and damaged files."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from handzoo.data.image_io import BadImageError, read_jpeg

# Quadrants of pure colours: a swapped channel order cannot go unnoticed.
COLOURS = {
    "top_left": (230, 20, 20),
    "top_right": (20, 230, 20),
    "bottom_left": (20, 20, 230),
    "bottom_right": (230, 200, 40),
}


@pytest.fixture
def quadrants(tmp_path):
    side = 256
    image = np.zeros((side, side, 3), np.uint8)
    h = side // 2
    image[:h, :h] = COLOURS["top_left"]
    image[:h, h:] = COLOURS["top_right"]
    image[h:, :h] = COLOURS["bottom_left"]
    image[h:, h:] = COLOURS["bottom_right"]
    path = tmp_path / "quadrants.jpg"
    Image.fromarray(image).save(path, quality=95)
    return path


@pytest.mark.parametrize(("target", "reduction"), [(None, 1), (100, 2), (50, 4), (20, 8)])
def test_colour_decode_is_rgb_at_every_reduction(quadrants, target, reduction):
    image, factor = read_jpeg(quadrants, target=target)
    side = 256 // reduction
    assert image.shape == (side, side, 3) and factor == 1.0 / reduction
    q = side // 4  # the centre of each quadrant, away from JPEG ringing at the edges
    centres = {
        "top_left": (q, q),
        "top_right": (q, 3 * q),
        "bottom_left": (3 * q, q),
        "bottom_right": (3 * q, 3 * q),
    }
    for name, (row, col) in centres.items():
        np.testing.assert_allclose(image[row, col], COLOURS[name], atol=12, err_msg=f"{name}, 1/{reduction}")


def test_grayscale_decode_matches_pil_luma(quadrants):
    image, _ = read_jpeg(quadrants, target=100, grayscale=True)
    reference = np.asarray(Image.open(quadrants).convert("L").reduce(2), dtype=float)
    assert image.shape == reference.shape
    assert np.abs(image.astype(float) - reference).mean() < 3.0


def test_truncated_file_names_the_file(quadrants):
    data = quadrants.read_bytes()
    quadrants.write_bytes(data[: len(data) // 2])
    with pytest.raises(BadImageError, match="quadrants.jpg"):
        read_jpeg(quadrants)
