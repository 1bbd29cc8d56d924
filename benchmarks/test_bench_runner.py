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
from handzoo.environment import cpu_supports_bf16

DEVICE = os.environ.get("HANDZOO_BENCH_DEVICE", "cpu")
MODEL = os.environ.get("HANDZOO_BENCH_MODEL", "resnet18")
SIZE = int(os.environ.get("HANDZOO_BENCH_SIZE", "64"))
BATCH = int(os.environ.get("HANDZOO_BENCH_BATCH", "32"))
STEPS = int(os.environ.get("HANDZOO_BENCH_STEPS", "30"))
RESULTS: dict[str, float] = {}


class InMemoryHands(torch.utils.data.Dataset):
    """Fixed random tensors: the data pipeline costs nothing, so the loops are compared alone.

    Long enough that no epoch ends (and no epoch-end validation runs) within
    the timed steps; items repeat a small bank of tensors.
    """

    def __init__(self, split="train", image_size=None, bank=256, **ignored):
        g = torch.Generator().manual_seed(0)
        size = image_size or SIZE
        self.images = torch.randn(bank, 3, size, size, generator=g)
        self.labels = torch.randn(bank, 21, 3, generator=g) * 0.05
        self.length = BATCH * (STEPS + 4) if split == "train" else BATCH
        self.joints3d = self.labels[torch.arange(self.length) % bank]

    def __len__(self):
        return self.length

    def __getitem__(self, i):
        k = i % len(self.images)
        return {"image": self.images[k], "joints3d": self.labels[k], "index": i}


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
    # The runner's precision and layout: bf16 autocast on CUDA and on CPUs with native
    # bf16, channels_last everywhere; a faster runner would otherwise be no news.
    amp = dev.type == "cuda" or (dev.type == "cpu" and cpu_supports_bf16())
    model = model.to(memory_format=torch.channels_last)
    step, t0 = 0, None
    while step < STEPS:
        for batch in loader:
            if step == 2:
                if dev.type == "cuda":
                    torch.cuda.synchronize()
                t0 = time.perf_counter()
            x = batch["image"].to(dev, non_blocking=True).contiguous(memory_format=torch.channels_last)
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


ROUNDS = int(os.environ.get("HANDZOO_BENCH_ROUNDS", "3"))


def test_runner_vs_bare_loop(benchmark, tmp_path):
    """Alternate the two loops ROUNDS times; compare medians (the machine's noise hits both)."""
    import statistics

    bare_rates, runner_rates = [], []
    for r in range(ROUNDS):
        bare_rates.append(_bare_loop())
        runner_rates.append(_runner(tmp_path / f"r{r}"))
    RESULTS["bare"] = statistics.median(bare_rates)
    RESULTS["runner"] = statistics.median(runner_rates)
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)
    bare = RESULTS["bare"]
    ratio = RESULTS["runner"] / bare
    benchmark.extra_info.update({"runner_img_s": RESULTS["runner"], "bare_img_s": bare, "ratio": ratio})
    print(
        f"\n{MODEL} {SIZE}px batch {BATCH} on {DEVICE}: runner {RESULTS['runner']:.1f} img/s, "
        f"bare {bare:.1f} img/s, ratio {ratio:.3f}"
    )
