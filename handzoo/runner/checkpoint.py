"""Resumable checkpoints: written atomically, loaded with ``weights_only=True``.

A checkpoint holds the model, optimiser, scheduler and grad-scaler states, the
RNG states of torch (CPU and CUDA), numpy and Python, and the data position
(epoch and batches consumed in it), so ``--resume`` after a SIGKILL continues
the same schedule to the same final step.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

CHECKPOINT_NAME = "checkpoint.pt"


def rng_state() -> dict[str, Any]:
    """Every RNG the run uses, in types that ``torch.load(weights_only=True)`` accepts."""
    np_state = np.random.get_state()
    py_version, py_internal, py_gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {
            "keys": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "python": {"version": py_version, "internal": list(py_internal), "gauss": py_gauss},
    }


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    n = state["numpy"]
    np.random.set_state(
        ("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"])
    )
    p = state["python"]
    random.setstate((p["version"], tuple(p["internal"]), p["gauss"]))


def save_atomic(obj: Any, path: str | Path) -> None:
    """``torch.save`` to a temporary file in the same folder, fsync, then rename over ``path``.

    A reader (or a run killed mid-write) therefore sees either the old
    checkpoint or the new one, never a truncated file; a failed write (disk
    full) keeps the old one and raises :class:`handzoo.files.OutputError`.
    """
    from handzoo.files import write_atomic

    write_atomic(path, lambda tmp: torch.save(obj, tmp), "checkpoint", sync=True)


def _is_damage(exc: BaseException) -> bool:
    """Whether ``torch.load`` failed because the file is not a whole checkpoint (empty, cut, foreign)."""
    import pickle
    import zipfile

    if isinstance(exc, EOFError | pickle.UnpicklingError | zipfile.BadZipFile):
        return True
    text = str(exc)
    return isinstance(exc, RuntimeError) and any(
        mark in text for mark in ("PytorchStreamReader", "central directory", "zip archive", "magic number")
    )


CHECKPOINT_KEYS = ("model", "optimizer", "scheduler", "scaler", "rng", "step", "total_steps")


def load(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint without executing pickled code.

    Raises:
        DataError: the file is empty, truncated, not a checkpoint or lacks one of
            :data:`CHECKPOINT_KEYS` (one line saying how to start over).
    """
    from handzoo.errors import DataError, first_line

    path = Path(path)
    fix = f"it cannot be resumed: start over with --force (same --out {path.parent}) or choose another --out"
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise DataError(f"{path}: no checkpoint there; start the run without --resume") from None
    except Exception as exc:
        if not _is_damage(exc):
            raise  # out of memory, no permission...: the checkpoint may be fine, so no advice to delete it
        size = path.stat().st_size if path.exists() else 0
        first = first_line(exc)[:120]
        reason = "an empty file" if size == 0 else f"{type(exc).__name__}: {first}"
        raise DataError(f"{path}: the checkpoint is damaged ({reason}); {fix}") from None
    missing = [k for k in CHECKPOINT_KEYS if not isinstance(state, dict) or k not in state]
    if missing:
        raise DataError(f"{path}: not a handzoo checkpoint (no {', '.join(missing)}); {fix}")
    return state
