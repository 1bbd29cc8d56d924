"""FreiHAND annotation files: strict parsing, validation and a cache of parsed arrays.

Each ``<split>_<key>.json`` is a JSON list with one entry per unique sample.
It is parsed entry by entry (so a 1.3 GB ``training_verts.json`` never exists
as one Python object tree), every entry is checked, and the result is saved as
``.npy`` under ``$HANDZOO_HOME/cache/freihand/`` (``HANDZOO_HOME`` defaults to
``~/.cache/handzoo``). The cache file name holds a hash of the JSON file's
path and one of its size and mtime, so an edited or touched file is parsed
again; files are written atomically (temporary name, then rename).

Errors name the file, the entry and the fix, e.g.
``training_xyz.json: entry 17 has 20 joints, expected 21``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from handzoo.errors import DataError
from handzoo.paths import freihand_cache_dir

# Bump when parsing or validation changes, so old cache files are not reused.
CACHE_FORMAT = 2  # 2: coordinates farther than MAX_COORDINATE_M are refused
MAX_COORDINATE_M = 20.0  # no camera-frame joint of a photographed hand lies farther away


@dataclass(frozen=True)
class AnnotationSpec:
    """Shape of one entry, its dtype, and the words used in error messages."""

    shape: tuple[int, ...]
    dtype: str
    words: tuple[tuple[str, str], ...]  # (plural, singular) per nesting level


SPECS: dict[str, AnnotationSpec] = {
    "xyz": AnnotationSpec((21, 3), "float64", (("joints", "joint"), ("coordinates", "coordinate"))),
    "K": AnnotationSpec((3, 3), "float64", (("rows", "row"), ("values", "value"))),
    "scale": AnnotationSpec((), "float64", ()),
    "mano": AnnotationSpec((61,), "float32", (("values", "value"),)),
    "verts": AnnotationSpec((778, 3), "float32", (("vertices", "vertex"), ("coordinates", "coordinate"))),
}

_WS = re.compile(r"[ \t\n\r]*")


def cache_dir() -> Path:
    """``$HANDZOO_HOME/cache/freihand`` (``HANDZOO_HOME`` defaults to ``~/.cache/handzoo``)."""
    return freihand_cache_dir()


def iter_json_list(text: str, name: str) -> Iterator[Any]:
    """Yield the entries of a top-level JSON list one at a time."""
    decoder = json.JSONDecoder()
    pos = _WS.match(text, 0).end()
    if text[pos : pos + 1] != "[":
        raise DataError(f"{name}: expected a JSON list of per-sample entries")
    pos = _WS.match(text, pos + 1).end()
    if text[pos : pos + 1] == "]":
        return
    index = 0
    while True:
        try:
            obj, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            raise DataError(
                f"{name}: entry {index} is not valid JSON ({exc.msg} at char {exc.pos})"
            ) from None
        yield obj
        index += 1
        pos = _WS.match(text, pos).end()
        sep = text[pos : pos + 1]
        if sep == "]":
            return
        if sep != ",":
            raise DataError(
                f"{name}: malformed JSON after entry {index - 1} (char {pos}); re-download the file"
            )
        pos = _WS.match(text, pos + 1).end()


def _shape_problem(
    obj: Any, shape: tuple[int, ...], words: tuple[tuple[str, str], ...], where: str
) -> str | None:
    """Why ``obj`` is not a nested list of ``shape``: the first offending level, in words."""
    if not shape:
        if isinstance(obj, bool) or not isinstance(obj, (int, float)):
            return f"{where} is {obj!r}, expected a number"
        return None
    plural, singular = words[0]
    if not isinstance(obj, list):
        return f"{where} is {type(obj).__name__}, expected a list of {shape[0]} {plural}"
    if len(obj) != shape[0]:
        return f"{where} has {len(obj)} {plural}, expected {shape[0]}"
    for k, item in enumerate(obj):
        problem = _shape_problem(item, shape[1:], words[1:], f"{where}, {singular} {k}")
        if problem:
            return problem
    return None


def _describe_shape(obj: Any, spec: AnnotationSpec, where: str) -> str:
    return _shape_problem(obj, spec.shape, spec.words, where) or f"{where} does not have shape {spec.shape}"


def _entry_array(obj: Any, spec: AnnotationSpec, name: str, index: int) -> np.ndarray:
    # FreiHAND stores mano as [[61 values]] and some tools write scale as [value].
    if spec.shape in ((61,), ()) and isinstance(obj, list) and len(obj) == 1:
        obj = obj[0]
    where = f"{name}: entry {index}"
    try:
        arr = np.asarray(obj, dtype=np.float64)
    except (ValueError, TypeError):
        raise DataError(_describe_shape(obj, spec, where)) from None
    if arr.shape != spec.shape:
        raise DataError(_describe_shape(obj, spec, where))
    if not np.all(np.isfinite(arr)):
        raise DataError(f"{where} holds NaN or infinite values; fix or remove the sample")
    return arr


def _check_values(key: str, arr: np.ndarray, name: str) -> None:
    """Physical sanity: a wrong unit or a broken camera is an error, not a silently wrong label."""
    if key == "xyz" and len(arr):
        bad = np.flatnonzero((arr[..., 2] <= 0).any(axis=1))
        if bad.size:
            raise DataError(
                f"{name}: entry {bad[0]} has joints at z <= 0 (behind the camera); "
                "xyz must be metres in the camera frame"
            )
        depth = float(np.median(arr[..., 2]))
        if depth > 20.0:
            raise DataError(
                f"{name}: median depth is {depth:.1f} m; xyz must be metres (the file looks like millimetres)"
            )
        far = np.flatnonzero((np.abs(arr) > MAX_COORDINATE_M).any(axis=(1, 2)))
        if far.size:
            value = float(np.abs(arr[far[0]]).max())
            raise DataError(
                f"{name}: entry {far[0]} has a coordinate of {value:g} m (more than {MAX_COORDINATE_M:g} m "
                "from the camera); xyz must be metres in the camera frame: fix or remove the sample"
            )
    elif key == "K":
        bad = np.flatnonzero(
            (arr[:, 0, 0] <= 0) | (arr[:, 1, 1] <= 0) | np.any(arr[:, 2] != (0, 0, 1), axis=1)
        )
        if bad.size:
            raise DataError(
                f"{name}: entry {bad[0]} is not an intrinsics matrix (need fx, fy > 0 and last row 0 0 1)"
            )
    elif key == "scale":
        bad = np.flatnonzero(arr <= 0)
        if bad.size:
            raise DataError(f"{name}: entry {bad[0]} is {arr[bad[0]]}, expected a positive length in metres")


def parse_annotation(path: Path, key: str) -> np.ndarray:
    """Parse and validate ``path`` (one of the ``*_<key>.json`` files).

    Returns:
        (N, *SPECS[key].shape) array: xyz (N,21,3) m; K (N,3,3); scale (N,) m;
        mano (N,61) float32; verts (N,778,3) m float32.

    Raises:
        DataError: naming the file and the first bad entry.
    """
    spec = SPECS[key]
    name = path.name
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read ({exc})") from exc
    rows = [
        _entry_array(obj, spec, name, i).astype(spec.dtype, copy=False)
        for i, obj in enumerate(iter_json_list(text, name))
    ]
    del text
    arr = np.stack(rows) if rows else np.zeros((0, *spec.shape), spec.dtype)
    _check_values(key, arr, name)
    return arr


def _cache_names(path: Path) -> tuple[str, str]:
    st = path.stat()
    where = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:12]
    stamp = hashlib.sha1(f"{st.st_size}:{st.st_mtime_ns}:{CACHE_FORMAT}".encode()).hexdigest()[:12]
    return f"{path.stem}-{where}-", f"{path.stem}-{where}-{stamp}.npy"


def cached_path(path: Path) -> Path:
    """Where the parsed array of ``path`` is (or would be) cached."""
    return cache_dir() / _cache_names(path)[1]


def load_annotation(path: Path, key: str, mmap: bool = False) -> np.ndarray:
    """The validated array of ``path``, from the cache when the file is unchanged.

    Args:
        path: ``ROOT/<split>_<key>.json``.
        key: xyz, K, scale, mano or verts.
        mmap: memory-map the cached array (for the large ``verts``).
    """
    prefix, filename = _cache_names(path)
    folder = cache_dir()
    target = folder / filename
    if target.exists():
        try:
            cached = np.load(target, mmap_mode="r" if mmap else None)
            if cached.shape[1:] == SPECS[key].shape and cached.dtype == SPECS[key].dtype:
                return cached
            problem = f"shape {cached.shape}, dtype {cached.dtype}"
        except (OSError, ValueError, EOFError) as exc:  # a zero-byte file is an EOFError
            problem = f"{type(exc).__name__}: {exc}"
        warnings.warn(f"cache file {target} is damaged ({problem}); rebuilt from {path.name}", stacklevel=2)
    arr = parse_annotation(path, key)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{filename}.{os.getpid()}.tmp"
        with open(tmp, "wb") as f:
            np.save(f, arr)
        os.replace(tmp, target)
        for old in folder.glob(prefix + "*.npy"):  # versions of this file that are now stale
            if old != target:
                old.unlink(missing_ok=True)
    except OSError as exc:
        warnings.warn(f"cannot cache {path.name} in {folder} ({exc}); it will be parsed again", stacklevel=2)
        return arr
    return np.load(target, mmap_mode="r") if mmap else arr
