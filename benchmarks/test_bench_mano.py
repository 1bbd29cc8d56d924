"""Speed of handzoo_mano.ManoLayer against smplx's MANO layer, forward + backward, batch 64, CPU.

Run: ``pytest benchmarks/test_bench_mano.py --benchmark-only``. Both layers load
the same MANO-shaped file (written by ``tests/mano_fixture.py``: the real model
is licensed), get the same pose, shape and translation, and must agree on the
vertices to 1e-5 m before anything is timed. Each benchmark also times both
layers interleaved in the same run (best of N, so load from other processes
hits both alike) and stores the speed-up over smplx in ``extra_info``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.mano_fixture

from handzoo_mano import ManoLayer

from handzoo.environment import machine_info
from tests.mano_fixture import write_mano_files

smplx = pytest.importorskip("smplx")

BATCH = 64
TARGET_SPEEDUP = 1.0  # no slower than smplx


@pytest.fixture(scope="module")
def steps(tmp_path_factory: pytest.TempPathFactory):
    """One forward + backward step of each layer on the same inputs, after checking they agree."""
    folder = str(write_mano_files(tmp_path_factory.mktemp("mano")))
    ours = ManoLayer(folder, flat_hand_mean=False)
    ref = smplx.MANO(folder, use_pca=False, flat_hand_mean=False, batch_size=BATCH)
    g = torch.Generator().manual_seed(0)
    orient = (torch.randn(BATCH, 3, generator=g) * 0.8).requires_grad_()
    pose = (torch.randn(BATCH, 45, generator=g) * 0.5).requires_grad_()
    betas = torch.randn(BATCH, 10, generator=g).requires_grad_()
    transl = torch.randn(BATCH, 3, generator=g) * 0.1
    with torch.no_grad():
        want = ref(global_orient=orient, hand_pose=pose, betas=betas, transl=transl).vertices
        gap = (ours(orient, pose, betas, transl).vertices - want).abs().max()
    assert gap <= 1e-5, f"layers disagree by {float(gap)} m"

    def handzoo_step() -> None:
        out = ours(orient, pose, betas, transl)
        (out.vertices.square().sum() + out.joints.sum()).backward()

    def smplx_step() -> None:
        out = ref(global_orient=orient, hand_pose=pose, betas=betas, transl=transl)
        (out.vertices.square().sum() + out.joints.sum()).backward()

    return {"handzoo": handzoo_step, "smplx": smplx_step}


def _interleaved_best(fns: dict, rounds: int) -> dict[str, float]:
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(rounds):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def _record(benchmark, steps) -> float:
    best = _interleaved_best(steps, rounds=40)
    speedup = best["smplx"] / best["handzoo"]
    benchmark.extra_info.update(
        machine_info(),
        batch=BATCH,
        handzoo_best_s=best["handzoo"],
        smplx_best_s=best["smplx"],
        speedup_vs_smplx=speedup,
        target_speedup=TARGET_SPEEDUP,
    )
    print(
        f"\nMANO forward+backward, batch {BATCH}: handzoo {best['handzoo'] * 1e3:.1f} ms, "
        f"smplx {best['smplx'] * 1e3:.1f} ms, speed-up {speedup:.2f}x"
    )
    return speedup


def test_bench_mano_layer_handzoo(benchmark, steps):
    """handzoo_mano.ManoLayer, forward + backward, batch 64."""
    benchmark.pedantic(steps["handzoo"], rounds=30, iterations=1, warmup_rounds=3)
    speedup = _record(benchmark, steps)
    assert speedup >= TARGET_SPEEDUP, f"{speedup:.2f}x: slower than smplx"


def test_bench_mano_layer_smplx(benchmark, steps):
    """smplx.MANO (the baseline), forward + backward, batch 64."""
    benchmark.pedantic(steps["smplx"], rounds=30, iterations=1, warmup_rounds=3)
