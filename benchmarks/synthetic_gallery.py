"""A picture of the synthetic hands: a grid of samples of one generator version.

Each sample is drawn from the evaluation split's generator (the images of
``handzoo synth --num-eval N --seed S``); with ``--labels`` every other row
repeats the row above with its labels drawn on it: the projected skeleton
(``joints2d``, one colour per finger) and the outline of the hand mask (white).

    python benchmarks/synthetic_gallery.py --out benchmarks/figures/synth3-samples.png
    python benchmarks/synthetic_gallery.py --generator synth2 --rows 1 --out synth2.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from handzoo import joints
from handzoo.data.synthetic import GENERATOR_VERSION, sample_hand
from handzoo.data.synthetic.generator import sample_rng


def _labelled(sample: dict[str, np.ndarray]) -> Image.Image:
    """The sample's image with the mask's outline and the 2D skeleton drawn on it."""
    image = Image.fromarray(sample["image"]).convert("RGB")
    mask = sample["mask"] > 127
    padded = np.pad(mask, 1)  # outside the picture is not hand: no wrap-around
    inner = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    edge = mask & ~inner
    pixels = np.asarray(image).copy()
    pixels[edge] = 255
    image = Image.fromarray(pixels)
    draw = ImageDraw.Draw(image)
    uv = sample["joints2d"]
    width = max(1, image.width // 90)
    for parent, child in joints.BONES:
        colour = tuple(int(255 * c) for c in joints.FINGER_COLORS[joints.finger_of(child)])
        draw.line([tuple(uv[parent]), tuple(uv[child])], fill=colour, width=width)
    for u, v in uv:
        draw.ellipse([u - width, v - width, u + width, v + width], fill=(255, 255, 255))
    return image


def gallery(version: str, rows: int, cols: int, size: int, tile: int, seed: int, labels: bool) -> Image.Image:
    """A (rows x cols) grid of ``tile``-pixel samples of generator ``version`` (labelled
    copies interleaved when ``labels``)."""
    grid_rows = rows * (2 if labels else 1)
    grid = Image.new("RGB", (cols * tile, grid_rows * tile), (255, 255, 255))
    for r in range(rows):
        for c in range(cols):
            index = r * cols + c
            sample = sample_hand(sample_rng(seed, "evaluation", index), size, version=version)
            pictures = [Image.fromarray(sample["image"])] + ([_labelled(sample)] if labels else [])
            for k, picture in enumerate(pictures):
                row = r * len(pictures) + k
                grid.paste(picture.resize((tile, tile), Image.Resampling.LANCZOS), (c * tile, row * tile))
    return grid


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--generator", default=GENERATOR_VERSION, help=f"version (default {GENERATOR_VERSION})")
    ap.add_argument("--rows", type=int, default=2)
    ap.add_argument("--cols", type=int, default=6)
    ap.add_argument("--size", type=int, default=224, help="rendered image side")
    ap.add_argument("--tile", type=int, default=128, help="side of each picture in the grid")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--labels", action="store_true", help="add a labelled copy below every row")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    picture = gallery(args.generator, args.rows, args.cols, args.size, args.tile, args.seed, args.labels)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    picture.save(args.out)
    print(f"wrote {args.out} ({picture.width}x{picture.height})")


if __name__ == "__main__":
    main()
