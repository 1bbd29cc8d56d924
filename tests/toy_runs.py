"""A toy dataset plugin installed as a real distribution, and ``handzoo run`` in a subprocess on it.

Shared by the runner's tests: the ``toy_env`` fixture (``conftest.py``) installs
:data:`TOY_DATASET`, the ``randomhands`` dataset (a third-party plugin like any
other), and returns the environment for subprocesses; :func:`_run` runs
``python -m handzoo run ARGS`` with it.
"""

from __future__ import annotations

import subprocess
import sys

TOY_DATASET = '''
import numpy as np
import torch
import handzoo


class RandomHands(torch.utils.data.Dataset):
    """Deterministic random images and joints: sample i is the same in every process."""

    def __init__(self, split="train", image_size=32, n=48, **ignored):
        self.split, self.image_size, self.n = split, image_size, n
        rng = np.random.default_rng(0 if split == "train" else 1)
        # metres in front of a camera K (image-space heads lift with it; the others ignore it)
        self.joints3d = rng.normal(size=(n, 21, 3)).astype(np.float32) * 0.05 + np.float32([0, 0, 0.5])
        self.K = torch.tensor([[60.0, 0.0, image_size / 2], [0.0, 60.0, image_size / 2], [0.0, 0.0, 1.0]])

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(1000 * (self.split == "val") + i)
        image = torch.randn(3, self.image_size, self.image_size, generator=g)
        return {"image": image, "joints3d": torch.from_numpy(self.joints3d[i]), "K": self.K, "index": i}


@handzoo.hookimpl
def register_datasets(register):
    register("randomhands", RandomHands)


def _worst_joint():
    """Largest per-joint error of each sample (metres): a third-party metric."""
    return lambda pred, gt: torch.linalg.vector_norm(pred - gt, dim=-1).amax(dim=-1)


@handzoo.hookimpl
def register_metrics(register):
    register("worst_joint", _worst_joint, units="m", inputs="joints")
'''

COMMON = [
    "--data",
    "randomhands",
    "--image-size",
    "32",
    "--batch-size",
    "4",
    "--workers",
    "0",
    "--device",
    "cpu",
    "--set",
    "run.log_every=1",
]


def _run(args, env, cwd, timeout=300, check=True):
    res = subprocess.run(
        [sys.executable, "-m", "handzoo", "run", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check:
        assert res.returncode == 0, res.stderr[-3000:]
    return res
