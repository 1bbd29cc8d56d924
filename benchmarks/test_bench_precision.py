"""Training-step throughput on the CPU by precision and memory layout.

One model, batch and set of random tensors; three variants of the same
Adam step, timed alternately in one process: float32 in the default
(contiguous) layout, the baseline; float32 channels_last; bf16 autocast
with channels_last, what ``handzoo run`` uses on CPUs with native bf16
(AVX512-BF16 or AMX). Figures are img/s and ratios to the baseline. Run with
``pytest benchmarks/test_bench_precision.py --benchmark-only``;
``HANDZOO_BENCH_MODEL`` (default resnet101), ``HANDZOO_BENCH_SIZE`` (64) and
``HANDZOO_BENCH_BATCH`` (32) change the case.
"""

from __future__ import annotations

import os
import statistics
import time

import pytest
import torch

import handzoo
from handzoo.environment import cpu_supports_bf16

MODEL = os.environ.get("HANDZOO_BENCH_MODEL", "resnet101")
SIZE = int(os.environ.get("HANDZOO_BENCH_SIZE", "64"))
BATCH = int(os.environ.get("HANDZOO_BENCH_BATCH", "32"))
STEPS = int(os.environ.get("HANDZOO_BENCH_STEPS", "4"))
ROUNDS = int(os.environ.get("HANDZOO_BENCH_ROUNDS", "3"))

VARIANTS = {
    "float32": (False, None),
    "float32, channels_last": (True, None),
    "bf16 autocast, channels_last": (True, torch.bfloat16),
}


def _rate(model, opt, images, target, channels_last: bool, dtype) -> float:
    layout = torch.channels_last if channels_last else torch.contiguous_format
    model.to(memory_format=layout)
    x = images.contiguous(memory_format=layout)

    def step():
        with torch.autocast("cpu", dtype=dtype or torch.float32, enabled=dtype is not None):
            out = model(x)
        loss = (out.joints3d.float() - target).abs().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    step()  # first call: oneDNN picks and caches its kernels
    t0 = time.perf_counter()
    for _ in range(STEPS):
        step()
    return STEPS * BATCH / (time.perf_counter() - t0)


@pytest.mark.skipif(not cpu_supports_bf16(), reason="this CPU has no native bf16")
def test_cpu_training_step_by_precision(benchmark):
    torch.manual_seed(0)
    model = handzoo.create_model(MODEL, image_size=SIZE)
    opt = torch.optim.Adam(model.parameters(), lr=1e-5)
    images = torch.randn(BATCH, 3, SIZE, SIZE)
    target = torch.randn(BATCH, 21, 3) * 0.05
    rates: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for _ in range(ROUNDS):  # alternated rounds: load on the machine hits every variant alike
        for name, (channels_last, dtype) in VARIANTS.items():
            rates[name].append(_rate(model, opt, images, target, channels_last, dtype))
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)
    base = statistics.median(rates["float32"])
    print(f"\n{MODEL} {SIZE}px batch {BATCH}, {torch.get_num_threads()} threads:")
    for name, values in rates.items():
        median = statistics.median(values)
        benchmark.extra_info[name] = median
        print(f"  {name:30s} {median:7.1f} img/s  {median / base:.2f}x")
