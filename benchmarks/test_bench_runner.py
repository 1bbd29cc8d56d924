"""Train-step throughput of ``handzoo run``'s loop against a bare PyTorch loop.

Same model, batch, in-memory data and device in the same process; the figure
is the ratio runner img/s / bare img/s (target >= 0.95). Run with
``pytest benchmarks/test_bench_runner.py --benchmark-only``; set
``HANDZOO_BENCH_DEVICE=cuda`` and ``HANDZOO_BENCH_MODEL=resnet101`` for the GPU
figures.
"""

from __future__ import annotations

import json
import os
import time

import pytest
import torch

import handzoo
import handzoo.plugins

DEVICE = os.environ.get("HANDZOO_BENCH_DEVICE", "cpu")
MODEL = os.environ.get("HANDZOO_BENCH_MODEL", "resnet18")
SIZE = int(os.environ.get("HANDZOO_BENCH_SIZE", "64"))
BATCH = int(os.environ.get("HANDZOO_BENCH_BATCH", "32"))
STEPS = int(os.environ.get("HANDZOO_BENCH_STEPS", "30"))
RESULTS: dict[str, float] = {}


class InMemoryHands(torch.utils.data.Dataset):
    """Fixed random tensors: the data pipeline costs nothing, so the loops are compared alone."""

    def __init__(self, split="train", image_size=SIZE, n=BATCH * 8, **ignored):
        g = torch.Generator().manual_seed(0)
        self.images = torch.randn(n, 3, image_size, image_size, generator=g)
        self.joints3d = torch.randn(n, 21, 3, generator=g) * 0.05

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return {"image": self.images[i], "joints3d": self.joints3d[i], "index": i}


class _Plugin:
    @handzoo.hookimpl
    def register_datasets(self, register):
        register("bench-inmemory", InMemoryHands)


@pytest.fixture(scope="module", autouse=True)
def _dataset():
    host = handzoo.plugins.get_host()
    host.add(_Plugin(), name="bench-inmemory")
    yield
    host.remove("bench-inmemory")


def _bare_loop() -> float:
    """img/s of the plainest loop: DataLoader, forward, L1, backward, Adam."""
    dev = torch.device(DEVICE)
    model = handzoo.create_model(MODEL, image_size=SIZE).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    loader = torch.utils.data.DataLoader(InMemoryHands(), batch_size=BATCH, shuffle=True, drop_last=True)
    amp = dev.type == "cuda"
    step, t0 = 0, None
    while step < STEPS:
        for batch in loader:
            if step == 2:
                if dev.type == "cuda":
                    torch.cuda.synchronize()
                t0 = time.perf_counter()
            x = batch["image"].to(dev, non_blocking=True)
            y = batch["joints3d"].to(dev, non_blocking=True)
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp):
                out = model(x)
            loss = (out.joints3d.float() - (y - y[:, :1])).abs().mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            if step >= STEPS:
                break
    if dev.type == "cuda":
        torch.cuda.synchronize()
    return (STEPS - 2) * BATCH / (time.perf_counter() - t0)


def _runner(tmp_path) -> float:
    """img/s inside handzoo's training loop (its own rate column in history.jsonl)."""
    from handzoo.runner.plan import resolve_config
    from handzoo.runner.trainer import Trainer

    flags = {
        "data.name": "bench-inmemory",
        "data.image_size": SIZE,
        "data.batch_size": BATCH,
        "data.workers": 0,
        "run.max_steps": STEPS,
        "run.device": DEVICE,
        "run.checkpoint_every": 10**6,
        "run.log_every": STEPS,
        "data.augment": [],
    }
    cfg, _ = resolve_config(MODEL, flags, [])
    Trainer(cfg, tmp_path / "run").run()
    rows = [json.loads(line) for line in (tmp_path / "run" / "history.jsonl").read_text().splitlines()]
    return [r for r in rows if "img_per_s" in r][-1]["img_per_s"]


def test_bare_loop(benchmark):
    RESULTS["bare"] = benchmark.pedantic(_bare_loop, rounds=1, iterations=1)


def test_runner_loop(benchmark, tmp_path):
    RESULTS["runner"] = benchmark.pedantic(_runner, args=(tmp_path,), rounds=1, iterations=1)
    bare = RESULTS.get("bare") or _bare_loop()
    ratio = RESULTS["runner"] / bare
    benchmark.extra_info.update({"runner_img_s": RESULTS["runner"], "bare_img_s": bare, "ratio": ratio})
    print(
        f"\n{MODEL} {SIZE}px batch {BATCH} on {DEVICE}: runner {RESULTS['runner']:.1f} img/s, "
        f"bare {bare:.1f} img/s, ratio {ratio:.3f}"
    )
