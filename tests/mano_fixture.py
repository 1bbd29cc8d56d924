"""Random but correctly shaped MANO model files, written by the tests themselves.

The real MANO files are licensed and never part of the repository. These stand-ins
have MANO's structure: 778 vertices, 16 joints with MANO's kinematic tree,
1538 faces, a sparse J_regressor (scipy csc, rows summing to 1), shapedirs
(778,3,10), posedirs (778,3,135), skinning weights (778,16) with rows summing
to 1, 45 orthonormal PCA components and a mean pose. The geometry is hand-sized
(metres): vertices scattered around the bones of a flat hand, the fingertip
vertices FreiHAND and manopth use placed at the fingertips, so errors in metres
mean what they would with the real model.

Two encodings of the same numbers:

* ``plain``: numpy arrays and a scipy csc matrix, like the files smplx's
  ``clean_ch.py`` writes;
* ``chumpy``: Python-2-era protocol-2 pickles as the official download is:
  arrays wrapped in ``chumpy.ch.Ch`` objects (and ``chumpy.ch_ops`` /
  ``chumpy.reordering`` expressions), array buffers as byte strings
  (``BINSTRING``), numpy under ``numpy.core`` and the sparse regressor as an
  old ``scipy.sparse.csc.csc_matrix``. The fake classes only exist in
  ``sys.modules`` while the file is written.
"""

from __future__ import annotations

import contextlib
import io
import pickle
import struct
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

NUM_VERTICES = 778
NUM_FACES = 1538
NUM_JOINTS = 16
# MANO's kintree_table row 0 (the root's parent is 2**32 - 1 in the real files).
MANO_PARENTS = [4294967295, 0, 1, 2, 0, 4, 5, 0, 7, 8, 0, 10, 11, 0, 13, 14]
FREIHAND_TIPS = (744, 320, 443, 555, 672)  # thumb, index, middle, ring, little
MANOPTH_TIPS = (745, 317, 444, 556, 673)

# MANO joint order: wrist, index1-3, middle1-3, little1-3, ring1-3, thumb1-3.
# Per finger in that order: base joint (metres, wrist at origin), direction, segment lengths.
_FINGERS = {
    "index": ((0.088, 0.024, 0.000), (1.0, 0.10, 0.0), (0.039, 0.024, 0.021)),
    "middle": ((0.092, 0.003, 0.000), (1.0, 0.00, 0.0), (0.044, 0.028, 0.023)),
    "little": ((0.076, -0.032, 0.004), (1.0, -0.22, 0.0), (0.032, 0.020, 0.019)),
    "ring": ((0.086, -0.015, 0.002), (1.0, -0.10, 0.0), (0.041, 0.027, 0.022)),
    "thumb": ((0.024, 0.020, -0.008), (0.65, 0.70, -0.25), (0.043, 0.032, 0.027)),
}
_TIP_FINGER_ORDER = ("thumb", "index", "middle", "ring", "little")


def _skeleton() -> tuple[np.ndarray, np.ndarray]:
    """(16,3) MANO joints and (5,3) fingertips thumb->little, metres."""
    joints = [np.zeros(3)]
    tips = {}
    for name, (base, direction, lengths) in _FINGERS.items():
        d = np.asarray(direction) / np.linalg.norm(direction)
        p = np.asarray(base, dtype=np.float64)
        for length in lengths:
            joints.append(p.copy())
            p = p + length * d
        tips[name] = p
    return np.stack(joints), np.stack([tips[f] for f in _TIP_FINGER_ORDER])


def make_mano_data(side: str = "right", seed: int = 0) -> dict[str, Any]:
    """A MANO model dict (the keys of the official pickles) with random, plausible numbers."""
    rng = np.random.default_rng(seed)
    joints, tips = _skeleton()
    # Segment owned by each joint: from the joint to its child (distal joints: to the tip).
    children = {p: j for j, p in enumerate(MANO_PARENTS) if j > 0 and p != 0}
    finger_tip = {3: 1, 6: 2, 9: 4, 12: 3, 15: 0}  # distal MANO joint -> tip row
    seg_end = np.zeros((NUM_JOINTS, 3))
    for j in range(1, NUM_JOINTS):
        seg_end[j] = joints[children[j]] if j in children else tips[finger_tip[j]]

    owner = rng.integers(0, NUM_JOINTS, NUM_VERTICES)
    verts = np.zeros((NUM_VERTICES, 3))
    for v in range(NUM_VERTICES):
        j = owner[v]
        if j == 0:  # palm: between the wrist and the finger bases
            base = joints[[1, 4, 7, 10, 13][rng.integers(5)]]
            verts[v] = rng.uniform(0.1, 0.9) * base
        else:
            verts[v] = joints[j] + rng.uniform(0, 1) * (seg_end[j] - joints[j])
        verts[v] += rng.normal(0, 0.006, 3)
    for tip_ids in (FREIHAND_TIPS, MANOPTH_TIPS):
        for t, v in enumerate(tip_ids):
            distal = [15, 3, 6, 12, 9][t]
            owner[v] = distal
            verts[v] = tips[t] + rng.normal(0, 0.0015, 3)

    weights = np.zeros((NUM_VERTICES, NUM_JOINTS))
    main = rng.uniform(0.55, 1.0, NUM_VERTICES)
    weights[np.arange(NUM_VERTICES), owner] = main
    parent = np.array([0] + MANO_PARENTS[1:])[owner]
    weights[np.arange(NUM_VERTICES), parent] += 1.0 - main

    rows, cols, vals = [], [], []
    for j in range(NUM_JOINTS):
        near = np.argsort(np.linalg.norm(verts - joints[j], axis=1))[:12]
        w = rng.uniform(0.2, 1.0, near.size)
        rows += [j] * near.size
        cols += near.tolist()
        vals += (w / w.sum()).tolist()
    regressor = sp.csc_matrix((vals, (rows, cols)), shape=(NUM_JOINTS, NUM_VERTICES))

    faces = np.stack([rng.choice(NUM_VERTICES, 3, replace=False) for _ in range(NUM_FACES)]).astype(np.uint32)
    components = np.linalg.qr(rng.normal(size=(45, 45)))[0].T  # orthonormal rows
    data = {
        "v_template": verts,
        "shapedirs": rng.normal(0, 0.004, (NUM_VERTICES, 3, 10)),
        "posedirs": rng.normal(0, 0.002, (NUM_VERTICES, 3, 135)),
        "J_regressor": regressor,
        "weights": weights,
        "kintree_table": np.array([MANO_PARENTS, list(range(NUM_JOINTS))], dtype=np.int64),
        "f": faces,
        "hands_components": components,
        "hands_mean": rng.normal(0, 0.15, 45),
        "hands_coeffs": rng.normal(0, 0.5, (64, 45)),
        "bs_style": "lbs",
        "bs_type": "lrotmin",
    }
    if side == "left":  # the mirror image across x = 0, triangles flipped to keep them outward
        data["v_template"] = verts * np.array([-1.0, 1.0, 1.0])
        data["shapedirs"][:, 0, :] *= -1
        data["f"] = faces[:, ::-1].copy()
    data["J"] = regressor @ data["v_template"]
    return data


# --------------------------------------------------------------------------- writers


def write_plain(path: Path, data: dict[str, Any]) -> Path:
    with path.open("wb") as fh:
        pickle.dump(data, fh, protocol=2)
    return path


class _Py2Pickler(pickle._Pickler):
    """Writes bytes as Python-2 ``str`` opcodes (what the official files hold)."""

    dispatch: ClassVar[dict] = dict(pickle._Pickler.dispatch)

    def save_bytes(self, obj: bytes) -> None:
        n = len(obj)
        if n < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([n]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", n) + obj)
        self.memoize(obj)

    dispatch[bytes] = save_bytes


def _ch_state(**terms: Any) -> dict[str, Any]:
    # What chumpy's Ch.__getstate__ leaves: the terms plus its bookkeeping.
    bookkeeping = {"_dirty_vars": set(terms), "_itr": None, "_depends_on_deps": {}}
    return {**terms, **bookkeeping, "_make_dense": False, "_make_sparse": False}


@contextlib.contextmanager
def _fake_chumpy() -> Iterator[dict[str, type]]:
    """Classes named ``chumpy.ch.Ch`` etc. (and the old ``scipy.sparse.csc``), only while pickling."""

    def make(module: str, name: str) -> type:
        def getstate(self: Any) -> dict[str, Any]:
            return self.state

        cls = type(name, (), {"__getstate__": getstate, "__module__": module, "__qualname__": name})
        return cls

    names = {
        "Ch": ("chumpy.ch", "Ch"),
        "multiply": ("chumpy.ch_ops", "multiply"),
        "Reshape": ("chumpy.reordering", "Reshape"),
        "transpose": ("chumpy.reordering", "transpose"),
        "csc_matrix": ("scipy.sparse.csc", "csc_matrix"),
    }
    classes = {key: make(*where) for key, where in names.items()}
    modules = ("chumpy", "chumpy.ch", "chumpy.ch_ops", "chumpy.reordering", "scipy.sparse.csc")
    saved = {m: sys.modules.get(m) for m in modules}
    try:
        for module in saved:
            sys.modules[module] = types.ModuleType(module)
        for cls in classes.values():
            setattr(sys.modules[cls.__module__], cls.__qualname__, cls)
        yield classes
    finally:
        for module, original in saved.items():
            if original is None:
                sys.modules.pop(module, None)
            else:
                sys.modules[module] = original


def write_chumpy_style(path: Path, data: dict[str, Any]) -> Path:
    """The same model as the official files encode it (see the module docstring)."""
    with _fake_chumpy() as c:

        def obj(kind: str, **state: Any) -> Any:
            o = object.__new__(c[kind])
            o.state = _ch_state(**state) if kind != "csc_matrix" else state
            return o

        def ch(x: Any) -> Any:
            return obj("Ch", x=np.asarray(x, dtype=np.float64))

        reg = data["J_regressor"].tocsc()
        posedirs = data["posedirs"]
        out = dict(data)
        out["v_template"] = ch(data["v_template"])
        out["shapedirs"] = ch(data["shapedirs"])
        out["posedirs"] = obj("Reshape", a=ch(posedirs.ravel()), newshape=posedirs.shape)
        out["weights"] = obj("multiply", a=ch(data["weights"]), b=ch(1.0))
        out["J"] = obj("transpose", a=ch(data["J"].T), axes=None)
        out["J_regressor"] = obj(
            "csc_matrix",
            _shape=reg.shape,
            data=reg.data,
            indices=reg.indices,
            indptr=reg.indptr,
            format="csc",
            maxprint=50,
        )
        buffer = io.BytesIO()
        _Py2Pickler(buffer, protocol=2).dump(out)
    # numpy of that era lived under numpy.core; GLOBAL names are newline-terminated text.
    raw = buffer.getvalue().replace(b"numpy._core.multiarray\n", b"numpy.core.multiarray\n")
    path.write_bytes(raw)
    return path


def write_mano_files(folder: Path, style: str = "plain", seed: int = 0) -> Path:
    """Write ``MANO_RIGHT.pkl`` and ``MANO_LEFT.pkl`` into ``folder`` ('plain' or 'chumpy' encoding)."""
    folder.mkdir(parents=True, exist_ok=True)
    writer = write_plain if style == "plain" else write_chumpy_style
    for side in ("right", "left"):
        writer(folder / f"MANO_{side.upper()}.pkl", make_mano_data(side, seed=seed + (side == "left")))
    return folder
