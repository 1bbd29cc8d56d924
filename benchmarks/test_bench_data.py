"""Input-pipeline throughput: the full training augmentation against bare JPEG decoding.

Run: ``python -m pytest benchmarks/test_bench_data.py --benchmark-only -s``

The data are 224-px JPEGs in the FreiHAND layout (textured backgrounds, about
20 KB per file like the real ones), written once per session. Every figure
that is compared is measured in the same run, rounds interleaved, so load from
other processes affects both sides alike; the ratios are printed and stored in
the benchmark's ``extra_info``. Nothing here asserts a time.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.freihand_fixture

from handzoo.data import freihand_layout as layout
from handzoo.data.freihand import FreiHANDDataset
from tests.freihand_fixture import write_freihand_fixture

UNIQUE, VERSIONS, SOURCE, SIZE = 128, 4, 224, 128
TRAIN_AUGMENT = ["background", "rotate", "flip", "occlude", "color", "scale"]
ROUNDS = 5


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("handzoo_home")
    old = os.environ.get("HANDZOO_HOME")
    os.environ["HANDZOO_HOME"] = str(home)  # the image cache must not land in the user's home
    path = tmp_path_factory.mktemp("freihand224") / "root"
    write_freihand_fixture(
        path, UNIQUE, VERSIONS, SOURCE, num_eval=0, with_mano=False, with_verts=False, texture=True
    )
    yield path
    if old is None:
        os.environ.pop("HANDZOO_HOME", None)
    else:
        os.environ["HANDZOO_HOME"] = old


def image_paths(root: Path) -> list[Path]:
    return [layout.rgb_path(root, "training", i) for i in range(UNIQUE * VERSIONS)]


def pil_decode_all(paths: list[Path]) -> None:
    """The baseline: what any loader must pay at least, PIL decoding to an RGB array."""
    from PIL import Image

    for p in paths:
        with Image.open(p) as im:
            np.asarray(im.convert("RGB"))


def iterate(ds: FreiHANDDataset) -> None:
    for i in range(len(ds)):
        ds[i]


def interleaved(fns: dict[str, Callable[[], None]], items: int, rounds: int = ROUNDS) -> dict[str, float]:
    """Median samples/s of each function, measured in alternating rounds."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {k: items / statistics.median(v) for k, v in times.items()}


def train_dataset(root: Path, **kwargs) -> FreiHANDDataset:
    return FreiHANDDataset(root, image_size=SIZE, augment=TRAIN_AUGMENT, val_fraction=0.0, seed=0, **kwargs)


def test_bench_pil_decode(benchmark, root: Path) -> None:
    """Bare PIL decoding of the 512 training JPEGs (224 px)."""
    paths = image_paths(root)
    pil_decode_all(paths)  # warm the page cache
    benchmark.pedantic(pil_decode_all, args=(paths,), rounds=ROUNDS, iterations=1)
    benchmark.extra_info["samples_per_s"] = len(paths) / benchmark.stats.stats.median


def test_bench_train_pipeline(benchmark, root: Path) -> None:
    """The full training pipeline at 128 px, one process, as a ratio to PIL decoding."""
    paths = image_paths(root)
    ds = train_dataset(root)
    bare = FreiHANDDataset(root, image_size=SIZE, val_fraction=0.0)

    def cv2_decode_all() -> None:
        from handzoo.data.image_io import read_jpeg

        for p in paths:
            read_jpeg(p)

    iterate(ds)
    rates = interleaved(
        {
            "pil_decode": lambda: pil_decode_all(paths),
            "cv2_decode": cv2_decode_all,
            "train_pipeline": lambda: iterate(ds),
            "no_augment": lambda: iterate(bare),
        },
        len(paths),
    )
    benchmark.pedantic(iterate, args=(ds,), rounds=ROUNDS, iterations=1)
    ratio = rates["train_pipeline"] / rates["pil_decode"]
    benchmark.extra_info.update({f"{k}_samples_per_s": round(v, 1) for k, v in rates.items()})
    benchmark.extra_info["ratio_train_vs_pil_decode"] = round(ratio, 3)
    print(
        f"\n[data] samples/s: PIL decode {rates['pil_decode']:.0f}, cv2 decode {rates['cv2_decode']:.0f}, "
        f"train pipeline {rates['train_pipeline']:.0f}, no augmentation {rates['no_augment']:.0f}; "
        f"train/PIL = {ratio:.2f}x (target >= 0.35x)"
    )


def test_bench_train_pipeline_image_cache(benchmark, root: Path) -> None:
    """The same pipeline reading pre-decoded 128-px images from the uint8 memmap."""
    paths = image_paths(root)
    t0 = time.perf_counter()
    ds = train_dataset(root, image_cache=True)
    build_s = time.perf_counter() - t0
    iterate(ds)
    rates = interleaved(
        {"pil_decode": lambda: pil_decode_all(paths), "cached": lambda: iterate(ds)}, len(paths)
    )
    benchmark.pedantic(iterate, args=(ds,), rounds=ROUNDS, iterations=1)
    ratio = rates["cached"] / rates["pil_decode"]
    benchmark.extra_info.update(
        {
            "cache_build_images_per_s": round(len(paths) / build_s, 1),
            "cached_samples_per_s": round(rates["cached"], 1),
            "ratio_cached_vs_pil_decode": round(ratio, 3),
        }
    )
    print(
        f"\n[data] image cache: built at {len(paths) / build_s:.0f} images/s; "
        f"train pipeline from cache {rates['cached']:.0f} samples/s = {ratio:.2f}x PIL decoding"
    )


@pytest.mark.parametrize("workers", [0, 1, 2])
def test_bench_dataloader_workers(benchmark, root: Path, workers: int) -> None:
    """Batches of 64 through torch's DataLoader with 0, 1, 2 worker processes (one epoch per round)."""
    import torch

    ds = train_dataset(root)
    # Collation runs in this process with workers=0; torch's intra-op threads then fight the
    # other processes for the cores (a 64-image torch.stack took 50-200 ms instead of 9 ms
    # on the loaded 2-core benchmark machine), so use one thread, as a worker process does.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    loader = torch.utils.data.DataLoader(
        ds, batch_size=64, shuffle=True, num_workers=workers, persistent_workers=workers > 0
    )

    def epoch() -> None:
        for _ in loader:
            pass

    try:
        epoch()  # start the workers
        benchmark.pedantic(epoch, rounds=3, iterations=1)
    finally:
        torch.set_num_threads(threads)
    rate = len(ds) / benchmark.stats.stats.median
    benchmark.extra_info["samples_per_s"] = round(rate, 1)
    print(f"\n[data] DataLoader workers={workers}: {rate:.0f} samples/s")
