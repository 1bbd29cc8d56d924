"""Forward + backward of every registered model at 128 px, batch 32.

``pytest benchmarks/test_bench_models.py --benchmark-only -s``; set
``HANDZOO_BENCH_DEVICE=cuda`` for the GPU (bf16 autocast, channels_last, as
the runner trains). The figure is img/s of one training step (forward, L1 on
the joints, backward), the same work the runner does per image.
"""

from __future__ import annotations

import os
import time

import pytest
import torch

import handzoo
from handzoo.environment import machine_info

DEVICE = torch.device(os.environ.get("HANDZOO_BENCH_DEVICE", "cpu"))
SIZE = int(os.environ.get("HANDZOO_BENCH_SIZE", "128"))
BATCH = int(os.environ.get("HANDZOO_BENCH_BATCH", "32"))
# Trainable models of the base install; models behind an optional extra (MediaPipe Hands: no
# torch weights, its own tests) are left out.
MODELS = [
    n
    for n in handzoo.list_models()
    if "{" not in n and not handzoo.get_registry().get("model", n).metadata.get("extra")
] + ["timm/convnext_tiny"]


@pytest.mark.parametrize("name", MODELS)
def test_forward_backward(benchmark, name):
    torch.manual_seed(0)
    model = handzoo.create_model(name, image_size=SIZE).to(DEVICE).train()
    x = torch.randn(BATCH, 3, SIZE, SIZE, device=DEVICE)
    y = torch.randn(BATCH, 21, 3, device=DEVICE) * 0.05
    cuda = DEVICE.type == "cuda"
    if cuda:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)

    def step():
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda):
            out = model(x)
        loss = (out.joints3d.float() - y).abs().mean()
        model.zero_grad(set_to_none=True)
        loss.backward()
        if cuda:
            torch.cuda.synchronize()

    step()  # warm-up: allocation, cuDNN autotuning
    t0 = time.perf_counter()
    benchmark.pedantic(step, rounds=3 if not cuda else 10, iterations=1)
    seconds = benchmark.stats.stats.median
    params = sum(p.numel() for p in model.parameters()) / 1e6
    benchmark.extra_info.update({"img_per_s": BATCH / seconds, "params_m": params, **machine_info(DEVICE)})
    print(
        f"\n{name}: {BATCH / seconds:.1f} img/s fwd+bwd at {SIZE}px batch {BATCH} on {DEVICE} "
        f"({params:.1f} M params, {time.perf_counter() - t0:.1f} s)"
    )
