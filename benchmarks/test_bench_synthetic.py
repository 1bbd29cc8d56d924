"""Speed of the synthetic hand generator, against a JPEG encode measured in the same run.

Run: ``python -m pytest benchmarks/test_bench_synthetic.py --benchmark-only -s``

The baseline is PIL encoding one 224×224 RGB picture as a quality-95 JPEG
(the least that writing one FreiHAND image costs). Rendering and baseline
calls are interleaved, one each per round, so load from other processes
affects both alike; each benchmark prints and stores in ``extra_info`` its
images per second (from the median call) and its cost in baseline encodes.
Target: >= 60 images/s per core at 224 px, JPEG encoding included, for every
generator version (synth3, the photo-like default, and synth2).
Nothing here asserts a time.
"""

from __future__ import annotations

import io
import os
import statistics
import time
from collections.abc import Callable

import numpy as np
import pytest
from PIL import Image

from handzoo.data.synthetic import GENERATORS, generate_freihand, sample_hand
from handzoo.data.synthetic.generator import sample_rng
from handzoo.environment import machine_info

SIZE = 224
ROUNDS = 300


def _encode(array: np.ndarray) -> int:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="JPEG", quality=95)
    return buffer.tell()


@pytest.fixture(scope="module")
def picture() -> np.ndarray:
    return sample_hand(np.random.default_rng(0), SIZE)["image"]


def _interleaved(fn: Callable[[int], object], picture: np.ndarray, rounds: int) -> dict[str, float]:
    """Median seconds of ``fn(i)`` and of the baseline encode, called alternately."""
    ours, base = [], []
    for i in range(rounds):
        start = time.perf_counter()
        fn(i)
        middle = time.perf_counter()
        _encode(picture)
        end = time.perf_counter()
        ours.append(middle - start)
        base.append(end - middle)
    return {"ours": statistics.median(ours), "jpeg": statistics.median(base)}


def _report(benchmark, name: str, seconds: float, jpeg: float, workers: int = 1) -> None:
    info = {
        "images_per_s": round(1.0 / seconds, 1),
        "images_per_s_per_core": round(1.0 / seconds / workers, 1),
        "jpeg_encodes_per_image": round(seconds / jpeg, 2),
        "baseline_jpeg_per_s": round(1.0 / jpeg, 1),
        "machine": machine_info(),
    }
    benchmark.extra_info.update(info)
    print(f"\n{name}: {info['images_per_s']} images/s ({info['images_per_s_per_core']} per core), "
          f"{info['jpeg_encodes_per_image']} JPEG encodes per image "
          f"(baseline {info['baseline_jpeg_per_s']} encodes/s)")


VERSIONS = tuple(GENERATORS)


@pytest.mark.parametrize("version", VERSIONS)
def test_sample_hand_224(benchmark, picture, version):
    """Rendering alone: pose, camera, rasteriser, shading, background (no encoding)."""
    result: dict[str, float] = {}

    def run() -> None:
        result.update(_interleaved(lambda i: sample_hand(sample_rng(0, "training", i), SIZE, version=version),
                                   picture, ROUNDS))

    benchmark.pedantic(run, rounds=1, warmup_rounds=0)
    _report(benchmark, f"sample_hand {version} 224", result["ours"], result["jpeg"])


@pytest.mark.parametrize("version", VERSIONS)
def test_sample_hand_and_jpeg_encode_224(benchmark, picture, version):
    """One training sample as the writer makes it: render, encode the image and the mask."""
    result: dict[str, float] = {}

    def one(i: int) -> int:
        sample = sample_hand(sample_rng(0, "training", i), SIZE, version=version)
        return _encode(sample["image"]) + _encode(sample["mask"])

    def run() -> None:
        result.update(_interleaved(one, picture, ROUNDS))

    benchmark.pedantic(run, rounds=1, warmup_rounds=0)
    _report(benchmark, f"sample_hand {version} + JPEG 224", result["ours"], result["jpeg"])


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("workers", [1, os.cpu_count() or 1], ids=["1-worker", "all-cores"])
def test_generate_freihand_224(benchmark, tmp_path, picture, workers, version):
    """The whole writer: JPEG files on disk, JSON annotations, the final rename, the pool."""
    num, num_eval = 400, 40
    baseline: list[float] = []
    durations: list[float] = []

    def jpeg_seconds() -> float:
        start, n = time.perf_counter(), 50
        for _ in range(n):
            _encode(picture)
        return (time.perf_counter() - start) / n

    def generate(run: list[int] = [0]) -> None:  # noqa: B006 (a counter across rounds)
        baseline.append(jpeg_seconds())
        run[0] += 1
        start = time.perf_counter()
        generate_freihand(tmp_path / f"run{run[0]}", num, seed=0, num_eval=num_eval,
                          workers=workers, progress=False, image_size=SIZE, version=version)
        durations.append(time.perf_counter() - start)
        baseline.append(jpeg_seconds())

    benchmark.pedantic(generate, rounds=2, warmup_rounds=0)
    per_image = min(durations) / (num + num_eval)
    _report(benchmark, f"generate_freihand {version} 224, {workers} worker(s)", per_image,
            statistics.median(baseline), workers)
