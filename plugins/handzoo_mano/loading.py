"""Find and read the user's licensed MANO model files, without chumpy.

The official ``MANO_RIGHT.pkl`` / ``MANO_LEFT.pkl`` (https://mano.is.tue.mpg.de,
"Models & Code") are Python-2 pickles. Some of their arrays are chumpy objects
(``chumpy.ch.Ch``, sometimes ``chumpy.ch_ops.*`` or ``chumpy.reordering.*``
expressions), and chumpy no longer installs on current Python/NumPy. This
module reads them with a restricted :class:`pickle.Unpickler`:

* chumpy classes become small stand-ins that keep their pickled state; the
  state of a ``Ch`` is a dict whose ``'x'`` holds the array, and expressions
  are evaluated with numpy from their operands;
* numpy arrays and dtypes, scipy sparse matrices (rebuilt as dense arrays
  from their ``data``/``indices``/``indptr``) and a few harmless builtins are
  allowed;
* anything else is refused, so loading a file never runs foreign code.

Python-2 byte strings are read with ``encoding="latin1"``, which is what numpy
expects for the raw array buffers inside such pickles.
"""

from __future__ import annotations

import importlib
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from handzoo.plugin_api import DataError, UsageError

ENV_MANO_DIR = "HANDZOO_MANO_DIR"
MANO_URL = "https://mano.is.tue.mpg.de"
SIDES = ("right", "left")

NUM_VERTICES = 778
NUM_JOINTS = 16
NUM_BETAS = 10
NUM_POSE_BASIS = 9 * (NUM_JOINTS - 1)  # 135: (R - I) of the 15 finger joints

# key -> expected shape (None: any length on that axis)
REQUIRED_KEYS: dict[str, tuple[int | None, ...]] = {
    "v_template": (NUM_VERTICES, 3),
    "shapedirs": (NUM_VERTICES, 3, None),
    "posedirs": (NUM_VERTICES, 3, NUM_POSE_BASIS),
    "J_regressor": (NUM_JOINTS, NUM_VERTICES),
    "weights": (NUM_VERTICES, NUM_JOINTS),
    "kintree_table": (2, NUM_JOINTS),
    "f": (None, 3),
}
OPTIONAL_KEYS: dict[str, tuple[int | None, ...]] = {
    "hands_components": (None, 3 * (NUM_JOINTS - 1)),
    "hands_mean": (3 * (NUM_JOINTS - 1),),
}


def mano_filename(side: str) -> str:
    """``MANO_RIGHT.pkl`` or ``MANO_LEFT.pkl``."""
    if side not in SIDES:
        raise UsageError(f"side must be 'right' or 'left', got {side!r}")
    return f"MANO_{side.upper()}.pkl"


def _where_to_get(name: str) -> str:
    return (
        f"download the MANO model ({name}) from {MANO_URL} ('Models & Code', free registration and "
        f"licence acceptance required; handzoo cannot ship it) and put it in the folder named by "
        f"{ENV_MANO_DIR} or pass its path as model_path / mano_dir"
    )


def find_mano_file(model_path: str | os.PathLike[str] | None = None, side: str = "right") -> Path:
    """Resolve the MANO pickle to load.

    Args:
        model_path: a ``.pkl`` file, or a folder holding ``MANO_RIGHT.pkl`` /
            ``MANO_LEFT.pkl``; None reads the folder from ``HANDZOO_MANO_DIR``.
        side: 'right' or 'left' (picks the file inside a folder).

    Raises:
        UsageError: no file there, saying where to download it and where to put it.
    """
    name = mano_filename(side)
    if model_path is None:
        env = os.environ.get(ENV_MANO_DIR)
        if not env:
            raise UsageError(f"no MANO model: {ENV_MANO_DIR} is not set; {_where_to_get(name)}")
        model_path = env
    path = Path(model_path).expanduser()
    if path.is_dir():
        path = path / name
    if not path.is_file():
        raise UsageError(f"MANO model file {path} does not exist; {_where_to_get(name)}")
    return path


def mano_file_available(model_path: str | os.PathLike[str] | None = None, side: str = "right") -> bool:
    """True when :func:`find_mano_file` would find a file."""
    try:
        find_mano_file(model_path, side)
    except UsageError:
        return False
    return True


# --------------------------------------------------------------------------- stand-ins


class ChumpyObject:
    """What a pickled chumpy object becomes: its class name and its pickled state."""

    chumpy_class = "chumpy.ch.Ch"

    def __new__(cls, *args: Any, **kwargs: Any) -> ChumpyObject:
        obj = super().__new__(cls)
        obj.state = {}
        return obj

    def __setstate__(self, state: Any) -> None:
        self.state = state if isinstance(state, dict) else {"_state": state}

    def __repr__(self) -> str:
        return f"<{self.chumpy_class} stand-in, terms {sorted(k for k in self.state if k[:1] != '_')}>"


class SparseMatrixState:
    """What a pickled scipy sparse matrix becomes; :func:`to_numpy` makes it dense."""

    sparse_format = "csc"

    def __new__(cls, *args: Any, **kwargs: Any) -> SparseMatrixState:
        obj = super().__new__(cls)
        obj.state = {}
        return obj

    def __setstate__(self, state: Any) -> None:
        self.state = state if isinstance(state, dict) else {}


_STANDINS: dict[tuple[str, str], type] = {}


def _standin(base: type, module: str, name: str, **attrs: Any) -> type:
    key = (module, name)
    if key not in _STANDINS:
        _STANDINS[key] = type(name, (base,), {"__module__": __name__, **attrs})
    return _STANDINS[key]


def _numpy_attr(submodule: str, name: str) -> Any:
    # numpy 2 moved numpy.core to numpy._core (the old path warns); old files name numpy.core.
    for prefix in ("numpy._core.", "numpy.core."):
        try:
            return getattr(importlib.import_module(prefix + submodule), name)
        except (ImportError, AttributeError):
            continue
    raise AttributeError(f"numpy has no {submodule}.{name}")


_BUILTINS = {"object": object, "set": set, "frozenset": frozenset, "complex": complex, "slice": slice}
_SPARSE_FORMATS = {
    f"{fmt}_{kind}": fmt for fmt in ("csc", "csr", "coo") for kind in ("matrix", "array")
}


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler for MANO files: chumpy stand-ins, numpy, scipy sparse, nothing else."""

    def __init__(self, file: Any, source: str = "<pickle>") -> None:
        super().__init__(file, encoding="latin1")
        self.source = source

    def find_class(self, module: str, name: str) -> Any:
        if module == "chumpy" or module.startswith("chumpy."):
            return _standin(ChumpyObject, module, name, chumpy_class=f"{module}.{name}")
        if module.startswith("scipy.sparse") and name in _SPARSE_FORMATS:
            return _standin(SparseMatrixState, module, name, sparse_format=_SPARSE_FORMATS[name])
        multiarray = ("numpy.core.multiarray", "numpy._core.multiarray")
        if module in multiarray and name in ("_reconstruct", "scalar"):
            return _numpy_attr("multiarray", name)
        if module in ("numpy.core.numeric", "numpy._core.numeric") and name == "_frombuffer":
            return _numpy_attr("numeric", name)
        if module == "numpy" and name in ("ndarray", "dtype"):
            return getattr(np, name)
        if module in ("copyreg", "copy_reg") and name == "_reconstructor":
            import copyreg

            return copyreg._reconstructor
        if module in ("builtins", "__builtin__") and name in _BUILTINS:
            return _BUILTINS[name]
        if module == "_codecs" and name == "encode":  # how Python 3 writes bytes at protocol 2
            import codecs

            return codecs.encode
        return self._refuse(module, name)

    def _refuse(self, module: str, name: str) -> Any:
        raise DataError(
            f"{self.source}: refuses to load {module}.{name}; a MANO model file holds only chumpy, "
            "numpy and scipy.sparse objects (is this the official MANO_*.pkl?)"
        )


# --------------------------------------------------------------------------- evaluation

_UNARY = {
    "negative": np.negative,
    "square": np.square,
    "sqrt": np.sqrt,
    "exp": np.exp,
    "log": np.log,
    "sin": np.sin,
    "cos": np.cos,
    "tan": np.tan,
    "arcsin": np.arcsin,
    "arccos": np.arccos,
    "arctan": np.arctan,
    "absolute": np.abs,
    "reciprocal": np.reciprocal,
    "nan_to_num": np.nan_to_num,
    "floor": np.floor,
    "ceil": np.ceil,
    "sign": np.sign,
}
# class name -> (operand term names, numpy function)
_BINARY = {
    "add": (("a", "b"), np.add),
    "subtract": (("a", "b"), np.subtract),
    "multiply": (("a", "b"), np.multiply),
    "divide": (("x1", "x2"), np.divide),
    "power": (("x", "pow"), np.power),
    "dot": (("a", "b"), np.dot),
    "maximum": (("a", "b"), np.maximum),
    "minimum": (("a", "b"), np.minimum),
}


def _term(obj: ChumpyObject, name: str, default: Any = None) -> Any:
    return obj.state.get(name, default)


def _evaluate_chumpy(obj: ChumpyObject) -> np.ndarray:
    """The value (``.r``) of a chumpy object, computed with numpy."""
    kind = obj.chumpy_class.rsplit(".", 1)[-1]
    s = obj.state
    if kind == "Ch":
        if "x" not in s:
            raise ValueError(f"{obj.chumpy_class} without an 'x' array")
        return to_numpy(s["x"])
    if kind in _UNARY:
        return _UNARY[kind](to_numpy(s["x"]))
    if kind in _BINARY:
        (left, right), fn = _BINARY[kind]
        return fn(to_numpy(s[left]), to_numpy(s[right]))
    a = to_numpy(s["a"]) if "a" in s else None
    if kind == "transpose":
        return np.ascontiguousarray(np.transpose(a, axes=_term(obj, "axes")))
    if kind == "Reshape":
        return a.reshape(_term(obj, "newshape"))
    if kind == "Select":
        out = a.ravel()[np.asarray(s["idxs"])]
        shape = _term(obj, "preferred_shape")
        return out.reshape(shape) if shape is not None else out
    if kind == "Concatenate":
        parts = [to_numpy(s[t]) for t in s.get("dterms", [])]
        return np.concatenate(parts, axis=_term(obj, "axis", 0))
    if kind in ("sum", "mean"):
        return getattr(np, kind)(to_numpy(s["x"]), axis=_term(obj, "axis"))
    if kind in ("amax", "amin", "cumsum"):
        return getattr(np, kind)(a, axis=_term(obj, "axis"))
    simple = {
        "Tile": lambda: np.tile(a, s["reps"]),
        "Repeat": lambda: np.repeat(a, s["repeats"], _term(obj, "axis")),
        "Roll": lambda: np.roll(a, s["shift"], _term(obj, "axis")),
        "Rot90": lambda: np.rot90(a, _term(obj, "k", 1)),
        "Diag": lambda: np.diag(a, _term(obj, "k", 0)),
        "DiagFlat": lambda: np.diagflat(a, _term(obj, "k", 0)),
        "rollaxis": lambda: np.rollaxis(a, s["axis"], _term(obj, "start", 0)),
        "swapaxes": lambda: np.swapaxes(a, s["axis1"], s["axis2"]),
        "clip": lambda: np.clip(a, _term(obj, "a_min"), _term(obj, "a_max")),
        "Sort": lambda: np.sort(a, _term(obj, "axis", -1)),
    }
    if kind in simple:
        return simple[kind]()
    if kind == "AtleastNd":
        x = to_numpy(s["x"])
        return {1: np.atleast_1d, 2: np.atleast_2d, 3: np.atleast_3d}[s["ndims"]](x)
    raise ValueError(f"unsupported chumpy expression {obj.chumpy_class}")


def _sparse_to_dense(obj: SparseMatrixState) -> np.ndarray:
    s = obj.state
    shape = tuple(int(n) for n in (s.get("_shape") or s.get("shape")))
    data = np.asarray(s["data"], dtype=np.float64)
    dense = np.zeros(shape, dtype=np.float64)
    if obj.sparse_format == "coo":
        rows, cols = s["coords"] if "coords" in s else (s["row"], s["col"])
    else:
        indptr = np.asarray(s["indptr"], dtype=np.int64)
        outer = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
        inner = np.asarray(s["indices"], dtype=np.int64)
        rows, cols = (inner, outer) if obj.sparse_format == "csc" else (outer, inner)
    np.add.at(dense, (np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)), data)
    return dense


def to_numpy(value: Any) -> np.ndarray:
    """A loaded value as a numpy array: chumpy stand-ins evaluated, sparse matrices made dense."""
    if isinstance(value, ChumpyObject):
        return np.asarray(_evaluate_chumpy(value))
    if isinstance(value, SparseMatrixState):
        return _sparse_to_dense(value)
    if hasattr(value, "toarray"):  # a real scipy sparse matrix
        return np.asarray(value.toarray())
    return np.asarray(value)


def load_mano_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a MANO pickle into plain numpy arrays.

    Returns:
        A dict with at least ``v_template`` (778,3), ``shapedirs`` (778,3,10+),
        ``posedirs`` (778,3,135), ``J_regressor`` (16,778) dense, ``weights``
        (778,16), ``kintree_table`` (2,16) int64, ``f`` (F,3) int64, all in
        metres where they are lengths; plus ``hands_components`` (C,45) and
        ``hands_mean`` (45,) when present. Other keys are kept, evaluated when
        possible (values that cannot be evaluated are dropped).

    Raises:
        DataError: the file is not a readable MANO model, naming the key and the fix.
    """
    path = Path(path)
    try:
        with path.open("rb") as fh:
            raw = RestrictedUnpickler(fh, source=str(path)).load()
    except DataError:
        raise
    except Exception as exc:  # truncated files, wrong formats
        raise DataError(
            f"{path}: not a readable MANO pickle ({type(exc).__name__}: {exc}); download it again from "
            f"{MANO_URL}"
        ) from exc
    if not isinstance(raw, dict):
        raise DataError(f"{path}: holds a {type(raw).__name__}, expected the dict of a MANO model")

    out: dict[str, Any] = {}
    for key, value in raw.items():
        wanted = key in REQUIRED_KEYS or key in OPTIONAL_KEYS
        if isinstance(value, (str, bytes, int, float)) and not wanted:
            out[key] = value
            continue
        try:
            out[key] = to_numpy(value)
        except Exception as exc:
            if wanted:
                raise DataError(f"{path}: key {key!r} could not be read ({exc})") from exc
    for key, shape in {**REQUIRED_KEYS, **OPTIONAL_KEYS}.items():
        if key not in out:
            if key in REQUIRED_KEYS:
                raise DataError(f"{path}: key {key!r} is missing; is this the official MANO_*.pkl?")
            continue
        got = out[key].shape
        if len(got) != len(shape) or any(e is not None and e != g for e, g in zip(shape, got, strict=True)):
            want = tuple("N" if e is None else e for e in shape)
            raise DataError(f"{path}: key {key!r} has shape {got}, expected {want}")
    if out["shapedirs"].shape[2] < NUM_BETAS:
        raise DataError(f"{path}: 'shapedirs' has {out['shapedirs'].shape[2]} shape components, need 10")
    out["kintree_table"] = out["kintree_table"].astype(np.int64)
    out["f"] = out["f"].astype(np.int64)
    return out
