"""Write synthetic hands as a dataset in the official FreiHAND layout.

One version of ``num`` training images with masks and ``training_{xyz,K,scale}.json``,
plus ``num_eval`` evaluation images with ``evaluation_{xyz,K,scale}.json``
(ground truth included, unlike the official release). The output is
deterministic: sample ``i`` of a split is drawn from its own generator seeded
by (seed, split, i), so the bytes are the same whatever the number of workers.
Generation is atomic: it happens in a hidden sibling folder renamed into
place at the end, so an interrupted run never leaves a dataset that looks
complete.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from handzoo.data import freihand_layout as layout
from handzoo.data.synthetic import photo_scene, scene
from handzoo.errors import UsageError
from handzoo.paths import synthetic_home

GENERATORS: dict[str, Callable[..., dict[str, np.ndarray]]] = {
    "synth2": scene.sample_hand,
    "synth3": photo_scene.sample_hand,
}
"""Every generator version that can still be reproduced, by name: ``sample_hand(rng,
image_size, **options)`` of each. A version's output never changes; a change to the
pose prior, renderer or layout is a new version."""
GENERATOR_VERSION = "synth3"
"""The default version (photo-like skin, rooms, objects; see :mod:`.photo_scene`).
Cached datasets live in folders named after their version, so a new default regenerates."""


def sampler(version: str = GENERATOR_VERSION) -> Callable[..., dict[str, np.ndarray]]:
    """The ``sample_hand`` function of generator ``version`` (see :data:`GENERATORS`)."""
    try:
        return GENERATORS[version]
    except KeyError:
        known = ", ".join(GENERATORS)
        raise UsageError(f"unknown synthetic generator version {version!r}; choose one of {known}") from None


def sample_hand(rng: np.random.Generator, image_size: int = 224, *, version: str = GENERATOR_VERSION,
                **options) -> dict[str, np.ndarray]:
    """One sample of generator ``version`` (default :data:`GENERATOR_VERSION`): see
    :func:`.photo_scene.sample_hand` (synth3) and :func:`.scene.sample_hand` (synth2)
    for ``options`` and the keys returned."""
    return sampler(version)(rng, image_size, **options)

DEFAULT_NUM = 10000
"""Training samples of the embedded default (with the evaluation samples, one to two
minutes to generate on 2 cores; a 10-minute CPU run sees fewer than that)."""
DEFAULT_NUM_EVAL = 1000
"""Evaluation samples of the embedded default."""
IMAGE_SIZE = 224
MARKER = "synthetic.json"
"""Written last inside a generated dataset: what produced it (version, seed, counts)."""

_SPLIT_CODES = {"training": 0, "evaluation": 1}
_CHUNK = 32  # samples per task given to a worker process


def sample_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The generator of sample ``index`` of ``split`` ('training' or 'evaluation')."""
    return np.random.default_rng([int(seed), _SPLIT_CODES[split], int(index)])


def _render_chunk(task: tuple[str, str, int, int, int, int, str]) -> tuple[str, int, np.ndarray, np.ndarray]:
    """Render and write samples [start, stop) of a split; returns their xyz (n,21,3) and K (n,3,3)."""
    root, split, seed, start, stop, size, version = task
    render = sampler(version)
    xyz = np.empty((stop - start, 21, 3), dtype=np.float32)
    K = np.empty((stop - start, 3, 3), dtype=np.float32)
    for n, index in enumerate(range(start, stop)):
        sample = render(sample_rng(seed, split, index), size)
        layout.write_image(layout.rgb_path(root, split, index), sample["image"])
        if split == "training":
            layout.write_image(layout.mask_path(root, split, index), sample["mask"])
        xyz[n], K[n] = sample["joints3d"], sample["K"]
    return split, start, xyz, K


@contextlib.contextmanager
def _opencv_threads(count: int) -> Iterator[None]:
    """OpenCV's thread count set to ``count`` in this process for the duration."""
    import cv2

    previous = cv2.getNumThreads()
    cv2.setNumThreads(count)
    try:
        yield
    finally:
        cv2.setNumThreads(previous)


def _tasks(root: Path, seed: int, counts: dict[str, int], size: int, version: str) -> Iterator[tuple]:
    for split, count in counts.items():
        for start in range(0, count, _CHUNK):
            yield (str(root), split, seed, start, min(start + _CHUNK, count), size, version)


def _progress_bar(enabled: bool, total: int, description: str):
    if not enabled:
        return None
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
    )
    progress.start()
    progress.add_task(description, total=total)
    return progress


def generate_freihand(
    out_dir: str | Path,
    num: int,
    seed: int = 0,
    num_eval: int = 0,
    workers: int = 1,
    progress: bool = True,
    *,
    image_size: int = IMAGE_SIZE,
    overwrite: bool = False,
    version: str = GENERATOR_VERSION,
) -> Path:
    """Generate a synthetic dataset in the official FreiHAND layout.

    Writes ``training/rgb/%08d.jpg`` and ``training/mask/%08d.jpg`` for
    i < ``num``, ``training_{xyz,K,scale}.json``, and for i < ``num_eval``
    ``evaluation/rgb/%08d.jpg`` with ``evaluation_{xyz,K,scale}.json``; xyz are
    metres in the camera frame, canonical joint order; images are
    ``image_size``² RGB JPEGs, masks 0/255 JPEGs. A ``synthetic.json`` records
    the generator version, seed and counts.

    Args:
        out_dir: the dataset folder to create (must not exist or be empty,
            unless ``overwrite``).
        num: training samples (>= 1).
        seed: the dataset's seed; the same (seed, num, num_eval, image_size)
            always gives identical files, whatever ``workers``.
        num_eval: evaluation samples (>= 0).
        workers: processes rendering in parallel (1 = in this process).
        progress: show a progress bar on stderr.
        image_size: image side in pixels (FreiHAND: 224).
        overwrite: replace an existing ``out_dir``.
        version: the generator version (:data:`GENERATORS`; default :data:`GENERATOR_VERSION`).

    Returns:
        ``out_dir`` as a Path.
    """
    if num < 1 or num_eval < 0:
        raise UsageError(f"synthetic dataset: num must be >= 1 and num_eval >= 0, got {num}, {num_eval}")
    if workers < 1:
        raise UsageError(f"synthetic dataset: workers must be >= 1, got {workers}")
    sampler(version)  # an unknown version fails before anything is written
    out = Path(out_dir).expanduser()
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not overwrite:
        raise UsageError(f"{out} already exists and is not empty; choose another folder or overwrite it")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.partial-{uuid.uuid4().hex[:8]}"
    counts = {"training": num, "evaluation": num_eval}
    try:
        for split, count in counts.items():
            if count:
                layout.rgb_path(tmp, split, 0).parent.mkdir(parents=True)
        layout.mask_path(tmp, "training", 0).parent.mkdir(parents=True)
        xyz = {s: np.empty((c, 21, 3), np.float32) for s, c in counts.items()}
        K = {s: np.empty((c, 3, 3), np.float32) for s, c in counts.items()}
        bar = _progress_bar(progress, num + num_eval, f"synthetic hands → {out.name}")
        # One OpenCV thread per worker process (there is a process per core), set in this
        # process before the workers fork: a forked child that reconfigures OpenCV's
        # thread pool can hang on it.
        with _opencv_threads(1) if workers > 1 else contextlib.nullcontext():
            pool = ProcessPoolExecutor(max_workers=workers) if workers > 1 else None
            try:
                tasks = _tasks(tmp, seed, counts, image_size, version)
                results = pool.map(_render_chunk, tasks) if pool else map(_render_chunk, tasks)
                for split, start, chunk_xyz, chunk_K in results:
                    xyz[split][start : start + len(chunk_xyz)] = chunk_xyz
                    K[split][start : start + len(chunk_K)] = chunk_K
                    if bar is not None:
                        bar.advance(bar.task_ids[0], len(chunk_xyz))
            finally:
                if pool is not None:
                    pool.shutdown(cancel_futures=True)
                if bar is not None:
                    bar.stop()
        for split, count in counts.items():
            if count:
                layout.write_annotations(tmp, split, xyz[split], K[split])
        meta = {"generator": "handzoo.data.synthetic", "version": version, "seed": seed,
                "num": num, "num_eval": num_eval, "image_size": image_size}
        (tmp / MARKER).write_text(json.dumps(meta, indent=1) + "\n")
        _move_into_place(tmp, out, overwrite)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _move_into_place(tmp: Path, out: Path, overwrite: bool) -> None:
    if overwrite and out.exists():
        old = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:8]}"
        os.rename(out, old)
        os.rename(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(tmp, out)  # also replaces an empty folder; fails if another run got there first


def synthetic_root(num: int = DEFAULT_NUM, seed: int = 0, num_eval: int = DEFAULT_NUM_EVAL,
                   home: str | Path | None = None, version: str = GENERATOR_VERSION) -> Path:
    """Where :func:`ensure_synthetic` keeps a dataset:
    ``<home>/synthetic/<version>-n<num>-s<seed>`` (``-e<num_eval>`` appended when
    ``num_eval`` is not :data:`DEFAULT_NUM_EVAL`)."""
    sampler(version)
    name = f"{version}-n{num}-s{seed}"
    if num_eval != DEFAULT_NUM_EVAL:
        name += f"-e{num_eval}"
    return (Path(home).expanduser() / "synthetic" if home is not None else synthetic_home()) / name


# Disk use of one generated sample (224-px JPEG image and mask), measured on each default set.
MB_PER_SAMPLE = {"synth2": 293 / 11_000, "synth3": 249 / 11_000}


def ensure_synthetic(
    num: int = DEFAULT_NUM,
    seed: int = 0,
    num_eval: int = DEFAULT_NUM_EVAL,
    home: str | Path | None = None,
    progress: bool = True,
    version: str = GENERATOR_VERSION,
) -> Path:
    """The root of the cached synthetic FreiHAND-layout dataset of generator ``version``,
    generated on first use.

    Generation uses one process per CPU and shows a progress bar; later calls
    return at once. Concurrent first calls are safe: each renders into its
    own hidden folder and the first to finish wins.

    Returns:
        ``$HANDZOO_HOME/synthetic/<version>-n<num>-s<seed>`` (see :func:`synthetic_root`).
    """
    root = synthetic_root(num, seed, num_eval, home, version)
    if (root / MARKER).is_file():
        return root
    # A folder without the marker was not written by this function (generation is
    # atomic): replace it.
    stale = root.exists()
    if progress:
        # Said before the work starts: a command that only scores the evaluation
        # split still generates the whole set once (later commands reuse it).
        mb = (num + num_eval) * MB_PER_SAMPLE[version]
        print(
            f"handzoo: generating the synthetic set ({version}) once ({num:,} training + {num_eval:,} "
            f"evaluation images, about {mb:,.0f} MB) into {root}; later commands reuse it",
            file=sys.stderr,
        )
    try:
        generate_freihand(root, num, seed=seed, num_eval=num_eval, workers=os.cpu_count() or 1,
                          progress=progress, overwrite=stale, version=version)
    except OSError:
        if not (root / MARKER).is_file():  # not a lost race with another process
            raise
    return root
