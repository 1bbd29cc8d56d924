"""FreiHAND submissions: write, read and score ``pred.json`` like the official evaluation.

The format is the one the FreiHAND toolkit's ``pred.py`` dumps and its
``eval.py`` reads (the CodaLab server runs the same script)::

    pred.json = [xyz_list, verts_list]
    xyz_list[i]   = 21 x [x, y, z]   metres, camera frame, canonical (FreiHAND) joint order
    verts_list[i] = 778 x [x, y, z]  metres, camera frame, MANO vertex order

one entry per evaluation image (3,960), zipped for upload (``pred.json`` at the
top of the zip). Both lists must have one entry per image: ``eval.py`` asserts
it and indexes ``verts_list[i]`` for every image. A model without a mesh writes
what the official template (``pred_template`` in ``pred.py``) writes, an
all-zero (778,3) array per image: the evaluation then runs, and its mesh
numbers (PA-MPVPE, F-scores) are meaningless; :func:`load_submission` reads
such placeholders back as "no vertices" and :func:`score_submission` leaves the
mesh metrics out.

Joint errors are reported like ``eval.py``: centimetres under the official key
names of its ``scores.txt`` (``xyz_al_mean3d`` ...), plus millimetres under
handzoo's report names (``pa_mpjpe_mm`` ...). The Procrustes-aligned numbers
do not depend on where a root-relative prediction is placed in the camera
frame; the unaligned ones (``xyz_mean3d``, ``mpjpe_mm``) do: see
:func:`place_root_relative`.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from handzoo.data.freihand_layout import annotation_path
from handzoo.errors import DataError

__all__ = [
    "NUM_JOINTS",
    "NUM_VERTS",
    "PRED_FILE",
    "load_submission",
    "place_root_relative",
    "score_submission",
    "write_submission",
]

PRED_FILE = "pred.json"
NUM_JOINTS = 21
NUM_VERTS = 778


# --------------------------------------------------------------------------- write


def _as_array(x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def write_submission(
    path: str | Path,
    xyz: Any,
    verts: Any | None = None,
    decimals: int | None = None,
) -> Path:
    """Write a FreiHAND submission.

    Args:
        path: ``*.zip`` (what CodaLab takes: ``pred.json`` inside) or ``*.json``.
        xyz: (N,21,3) metres, absolute camera frame, canonical joint order
            (see :func:`place_root_relative` for root-relative predictions).
        verts: (N,778,3) metres, camera frame, or None for a joints-only model:
            all-zero (778,3) placeholders are written, as the official template does.
        decimals: round coordinates to this many decimals (6 = 1 µm) to shrink
            the file; None keeps full float64 precision.

    Returns:
        The path written. Raises ``ValueError`` for wrong shapes or non-finite values.
    """
    path = Path(path)
    if path.suffix.lower() not in (".zip", ".json"):
        raise ValueError(f"{path}: a submission is written as .zip or .json, got {path.suffix!r}")
    xyz = _as_array(xyz)
    if xyz.ndim != 3 or xyz.shape[1:] != (NUM_JOINTS, 3):
        raise ValueError(f"xyz: expected shape (N,{NUM_JOINTS},3), got {xyz.shape}")
    _check_finite(xyz, "xyz", what="joint")
    n = xyz.shape[0]
    if verts is None:
        verts = np.zeros((n, NUM_VERTS, 3))
    else:
        verts = _as_array(verts)
        if verts.ndim != 3 or verts.shape != (n, NUM_VERTS, 3):
            raise ValueError(f"verts: expected shape ({n},{NUM_VERTS},3), got {verts.shape}")
        _check_finite(verts, "verts", what="vertex")
    if decimals is not None:
        xyz, verts = np.round(xyz, decimals), np.round(verts, decimals)
    text = json.dumps([xyz.tolist(), verts.tolist()])
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    if path.suffix.lower() == ".zip":
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(PRED_FILE, text)
    else:
        tmp.write_text(text)
    tmp.replace(path)  # a killed writer never leaves a half-written submission
    return path


def _check_finite(arr: np.ndarray, name: str, what: str) -> None:
    bad = ~np.isfinite(arr).reshape(len(arr), -1).all(axis=1)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{name}: {what} entry {first} contains NaN or Inf")


# ---------------------------------------------------------------------------- read


MAX_PRED_BYTES = 1 << 30  # 1 GiB: a full FreiHAND submission with vertices is about 0.2 GB of JSON


def _too_big(name: str, size: int) -> DataError:
    return DataError(
        f"{name}: {size} bytes of JSON, more than the {MAX_PRED_BYTES >> 20} MiB a submission may hold "
        "(a full FreiHAND one is about 200 MiB); is it the right file?"
    )


def _read_member(zf: zipfile.ZipFile, member: str, name: str) -> bytes:
    """A zip member's bytes, refused before reading when its declared size passes the bound and
    while reading when the actual data does (a header may lie)."""
    declared = zf.getinfo(member).file_size
    if declared > MAX_PRED_BYTES:
        raise _too_big(name, declared)
    with zf.open(member) as f:
        raw = f.read(MAX_PRED_BYTES + 1)
    if len(raw) > MAX_PRED_BYTES:
        raise _too_big(name, len(raw))
    return raw


def _read_pred_json(path: Path) -> tuple[Any, str]:
    """The parsed JSON and a display name (``sub.zip:pred.json``) for messages."""
    if not path.is_file():
        raise DataError(f"{path}: submission file not found")
    if path.suffix.lower() == ".zip" or zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            members = [m for m in zf.namelist() if m.lower().endswith(".json")]
            exact = [m for m in members if Path(m).name == PRED_FILE]
            # Like eval.py: take pred.json, else the single JSON file there is.
            chosen = exact or (members if len(members) == 1 else [])
            if len(chosen) != 1:
                raise DataError(
                    f"{path}: expected {PRED_FILE} inside the zip, found JSON files "
                    f"{members or 'none'}; write it with handzoo.submission.write_submission"
                )
            name = f"{path.name}:{chosen[0]}"
            raw = _read_member(zf, chosen[0], name)
    else:
        name = path.name
        if path.stat().st_size > MAX_PRED_BYTES:
            raise _too_big(name, path.stat().st_size)
        raw = path.read_bytes()
    try:
        return json.loads(raw), name
    except (ValueError, UnicodeDecodeError) as exc:
        raise DataError(f"{name}: not valid JSON ({exc})") from exc


def _stack_entries(entries: Any, name: str, what: str, expected: int | None) -> np.ndarray:
    """(N,P,3) float64 from a list of (P,3) lists; errors name the first bad entry.

    ``expected`` is the required P, or None to take it from the first entry.
    """
    if not isinstance(entries, list):
        raise DataError(f"{name}: the {what} list is a {type(entries).__name__}, expected a list")
    if not entries:
        return np.zeros((0, expected or 0, 3))
    try:
        arr = np.asarray(entries, dtype=np.float64)
    except (ValueError, TypeError):
        arr = None  # ragged or non-numeric: find the culprit below
    if arr is None or arr.ndim != 3 or arr.shape[2] != 3 or (expected and arr.shape[1] != expected):
        want_p = expected
        for i, entry in enumerate(entries):
            try:
                e = np.asarray(entry, dtype=np.float64)
            except (ValueError, TypeError):
                raise DataError(f"{name}: {what} entry {i} is not a list of numbers") from None
            if want_p is None:
                want_p = e.shape[0] if e.ndim == 2 else None
            if e.ndim != 2 or e.shape != (want_p, 3):
                n_points = f"{e.shape[0]} points" if e.ndim == 2 else f"shape {e.shape}"
                raise DataError(
                    f"{name}: {what} entry {i} has {n_points} (shape {e.shape}), "
                    f"expected ({want_p}, 3)"
                )
        raise DataError(f"{name}: {what} entries do not form an (N,P,3) array")
    bad = ~np.isfinite(arr).reshape(len(arr), -1).all(axis=1)
    if bad.any():
        raise DataError(f"{name}: {what} entry {int(np.flatnonzero(bad)[0])} contains NaN or Inf")
    return arr


def load_submission(path: str | Path) -> tuple[np.ndarray, np.ndarray | None]:
    """Read a submission written by :func:`write_submission` or any FreiHAND tool.

    Args:
        path: ``*.zip`` holding ``pred.json`` (or a single JSON file), or the JSON itself.

    Returns:
        ``(xyz (N,21,3), verts (N,V,3) or None)`` float64 metres. Vertices are None
        when every entry is an all-zero placeholder or an empty list.

    Raises:
        DataError: naming the file and the first bad entry (wrong point count,
            NaN/Inf, mismatched list lengths, not ``[xyz_list, verts_list]``).
    """
    path = Path(path)
    pred, name = _read_pred_json(path)
    if not isinstance(pred, list) or len(pred) != 2:
        got = f"a list of {len(pred)}" if isinstance(pred, list) else type(pred).__name__
        raise DataError(f"{name}: expected [xyz_list, verts_list] (a list of 2 lists), got {got}")
    xyz = _stack_entries(pred[0], name, "joint", NUM_JOINTS)
    verts_list = pred[1]
    if not isinstance(verts_list, list) or len(verts_list) != len(xyz):
        got = len(verts_list) if isinstance(verts_list, list) else type(verts_list).__name__
        raise DataError(
            f"{name}: {len(xyz)} joint entries but {got} vertex entries; the official "
            "evaluation needs one of each per image (write zeros (778,3) for no mesh)"
        )
    if all(isinstance(v, list) and not v for v in verts_list):
        return xyz, None
    verts = _stack_entries(verts_list, name, "vertex", None)
    if not verts.any():
        return xyz, None
    return xyz, verts


# --------------------------------------------------------------------------- score


def _load_gt(root: Path, set_name: str, key: str, points: int | None) -> np.ndarray:
    path = annotation_path(root, set_name, key)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(
            f"{path.name} not found in {root}: scoring needs the FreiHAND evaluation "
            "annotations (evaluation_xyz.json, optionally evaluation_verts.json) in the root"
        ) from None
    except ValueError as exc:
        raise DataError(f"{path.name}: not valid JSON ({exc})") from exc
    what = "joint" if key == "xyz" else "vertex"
    return _stack_entries(data, path.name, what, points)


def score_submission(
    pred_path: str | Path,
    data_root: str | Path,
    set_name: str = "evaluation",
    memory_budget_mb: float = 256.0,
) -> dict[str, float]:
    """Score a submission against the annotations in ``data_root``, as official ``eval.py``.

    Args:
        pred_path: the submission (.zip or .json, see :func:`load_submission`).
        data_root: FreiHAND root holding ``<set_name>_xyz.json`` and, for mesh
            metrics, ``<set_name>_verts.json`` directly inside it.
        set_name: annotation prefix, ``evaluation`` (or ``training`` for a
            self-check on training annotations).
        memory_budget_mb: bound for the F-score nearest-neighbour temporaries.

    Returns:
        Official ``scores.txt`` names: ``xyz_mean3d``, ``xyz_al_mean3d`` (cm),
        ``xyz_auc3d``, ``xyz_al_auc3d``; with meshes also ``mesh_mean3d``,
        ``mesh_al_mean3d`` (cm), ``mesh_auc3d``, ``mesh_al_auc3d``,
        ``f_score_5``, ``f_al_score_5``, ``f_score_15``, ``f_al_score_15``.
        handzoo names: ``pa_mpjpe_mm``, ``mpjpe_mm`` (absolute camera frame),
        ``auc_pa_0_50mm``, ``auc_0_50mm``; with meshes ``pa_mpvpe_mm``,
        ``mpvpe_mm``, ``f5``, ``f15`` (aligned F-scores, the published ones).
        Plus ``num_samples``. Mesh keys appear only when both the prediction
        and ``data_root`` have vertices.
    """
    from handzoo import metrics

    root = Path(data_root)
    pred_xyz, pred_verts = load_submission(pred_path)
    gt_xyz = _load_gt(root, set_name, "xyz", NUM_JOINTS)
    pred_name = Path(pred_path).name
    if len(pred_xyz) != len(gt_xyz):
        raise DataError(
            f"{pred_name}: {len(pred_xyz)} joint entries, expected {len(gt_xyz)} "
            f"(one per entry of {set_name}_xyz.json)"
        )
    if len(gt_xyz) == 0:
        raise DataError(f"{set_name}_xyz.json: no samples to score")
    p, g = torch.from_numpy(pred_xyz), torch.from_numpy(gt_xyz)
    pa = metrics.pa_mpjpe(p, g).mean().item()
    raw = metrics.mpjpe(p, g).mean().item()
    out: dict[str, float] = {
        "xyz_mean3d": raw * 100.0,
        "xyz_auc3d": metrics.pck_auc(p, g, aligned=False).mean().item(),
        "xyz_al_mean3d": pa * 100.0,
        "xyz_al_auc3d": metrics.pck_auc(p, g).mean().item(),
    }
    out.update(pa_mpjpe_mm=pa * 1000.0, mpjpe_mm=raw * 1000.0)
    out.update(auc_pa_0_50mm=out["xyz_al_auc3d"], auc_0_50mm=out["xyz_auc3d"])

    verts_path = annotation_path(root, set_name, "verts")
    if pred_verts is not None and verts_path.is_file():
        gt_verts = _load_gt(root, set_name, "verts", None)
        if len(gt_verts) != len(gt_xyz):
            raise DataError(
                f"{verts_path.name}: {len(gt_verts)} entries, expected {len(gt_xyz)} "
                f"(one per entry of {set_name}_xyz.json)"
            )
        if pred_verts.shape[1] != gt_verts.shape[1]:
            raise DataError(
                f"{pred_name}: vertex entries have {pred_verts.shape[1]} points, expected "
                f"{gt_verts.shape[1]} like {verts_path.name} (MANO topology)"
            )
        out.update(_mesh_scores(pred_verts, gt_verts, memory_budget_mb))
    out["num_samples"] = float(len(gt_xyz))
    return out


def _mesh_scores(pred: np.ndarray, gt: np.ndarray, memory_budget_mb: float) -> dict[str, float]:
    from handzoo import metrics

    p, g = torch.from_numpy(pred), torch.from_numpy(gt)
    thresholds = metrics.FSCORE_THRESHOLDS
    aligned = metrics.mesh_metrics(p, g, thresholds, memory_budget_mb=memory_budget_mb)
    f_raw = metrics.fscore(p, g, thresholds, aligned=False, memory_budget_mb=memory_budget_mb)
    raw = metrics.mpjpe(p, g).mean().item()
    pa = aligned["pa_mpvpe"].mean().item()
    out = {
        "mesh_mean3d": raw * 100.0,
        "mesh_auc3d": metrics.pck_auc(p, g, aligned=False).mean().item(),
        "mesh_al_mean3d": pa * 100.0,
        "mesh_al_auc3d": metrics.pck_auc(p, g).mean().item(),
        "pa_mpvpe_mm": pa * 1000.0,
        "mpvpe_mm": raw * 1000.0,
    }
    for i, t in enumerate(thresholds):
        mm = round(t * 1000)
        out[f"f_score_{mm}"] = f_raw[:, i].mean().item()
        out[f"f_al_score_{mm}"] = aligned[f"f{mm}"].mean().item()
        out[f"f{mm}"] = out[f"f_al_score_{mm}"]
    return out


# ------------------------------------------------------------------- placement


def place_root_relative(
    joints_rel: Any,
    K: Any,
    scale: Any | None = None,
    uv: Any | None = None,
    root_depth: float | Sequence[float] | torch.Tensor | None = None,
) -> torch.Tensor:
    """Put root-relative joints into absolute camera coordinates for a submission.

    FreiHAND gives, per evaluation image, the intrinsics ``K`` and the length
    of one reference bone (``evaluation_scale.json`` = |xyz[9] - xyz[10]|, the
    middle finger's MCP->PIP bone). The method, in two steps:

    1. **Scale** (when ``scale`` is given): multiply the prediction by
       ``scale / |joints_rel[9] - joints_rel[10]|``, so its reference bone has
       the given metric length.
    2. **Translation** ``t``, added to every joint:

       * with ``uv`` (the model's 2D joints in the image ``K`` belongs to): the
         ``t`` that best reprojects the joints onto ``uv``, by linear least
         squares on the algebraic reprojection error ``(K_0 - u K_2)(X + t) = 0``
         and ``(K_1 - v K_2)(X + t) = 0`` (42 equations, 3 unknowns). With the
         true scale and exact 2D joints this recovers the true position.
       * otherwise ``root_depth`` (metres, scalar or (N,)): the wrist is put on
         the optical axis, ``t = (0, 0, root_depth)`` (on the ray through the
         principal point for any ``K``).

    Procrustes-aligned metrics are unchanged by both steps (the alignment
    removes scale and translation); only the unaligned ``xyz_mean3d`` depends
    on them.

    Args:
        joints_rel: (N,21,3) metres, canonical order, any origin (root-relative).
        K: (N,3,3) intrinsics. scale: optional (N,) metres.
        uv: optional (N,21,2) pixels. root_depth: used when ``uv`` is None.

    Returns:
        (N,21,3) metres, camera frame, dtype of ``joints_rel`` (float64 math).
    """
    x = torch.as_tensor(joints_rel)
    out_dtype = x.dtype if x.is_floating_point() else torch.float64
    x = x.to(torch.float64)
    if x.ndim != 3 or x.shape[1:] != (NUM_JOINTS, 3):
        raise ValueError(f"joints_rel: expected shape (N,{NUM_JOINTS},3), got {tuple(x.shape)}")
    n = x.shape[0]
    k = torch.as_tensor(K, dtype=torch.float64, device=x.device)
    if k.shape != (n, 3, 3):
        raise ValueError(f"K: expected shape ({n},3,3), got {tuple(k.shape)}")
    if scale is not None:
        s = torch.as_tensor(scale, dtype=torch.float64, device=x.device).reshape(-1)
        if s.shape != (n,):
            raise ValueError(f"scale: expected {n} values, got shape {tuple(s.shape)}")
        bone = torch.linalg.vector_norm(x[:, 9] - x[:, 10], dim=-1)
        if bool((bone <= 0).any()):
            first = int(torch.nonzero(bone <= 0)[0])
            raise ValueError(f"joints_rel: sample {first} has joints 9 and 10 at the same place")
        x = x * (s / bone)[:, None, None]
    if uv is not None:
        p = torch.as_tensor(uv, dtype=torch.float64, device=x.device)
        if p.shape != (n, NUM_JOINTS, 2):
            raise ValueError(f"uv: expected shape ({n},{NUM_JOINTS},2), got {tuple(p.shape)}")
        # rows (N,J,2,3): K_0 - u K_2 and K_1 - v K_2; each row a with a·(X + t) = 0
        rows = k[:, None, :2, :] - p[..., None] * k[:, None, 2:3, :]
        a = rows.reshape(n, -1, 3)
        b = -(rows * x[:, :, None, :]).sum(-1).reshape(n, -1, 1)
        t = torch.linalg.lstsq(a, b).solution[..., 0]
    elif root_depth is not None:
        depth = torch.as_tensor(root_depth, dtype=torch.float64, device=x.device)
        depth = depth.expand(n) if depth.ndim == 0 else depth.reshape(-1)
        if depth.shape != (n,):
            raise ValueError(f"root_depth: expected a float or {n} values, got {tuple(depth.shape)}")
        principal = torch.stack([k[:, 0, 2], k[:, 1, 2], torch.ones_like(k[:, 0, 2])], dim=-1)
        ray = torch.linalg.solve(k, principal[..., None])[..., 0]  # (0,0,1) for a pinhole K
        t = ray / ray[:, 2:3] * depth[:, None] - x[:, 0]
    else:
        raise ValueError("place_root_relative needs uv (2D joints) or root_depth to place the hand")
    return (x + t[:, None, :]).to(out_dtype)
