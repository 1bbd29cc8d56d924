"""How much faster a fine-tuning step of ``mediapipe-hand-full`` gets with its early stages frozen.

A frozen prefix of the trunk needs no backward pass at all (nothing before
it asks for a gradient), so freezing the high-resolution stem and first stage
removes the costliest part of the backward. Forward + backward + Adam step of
batch 16 at 224 px in channels-last float32 (as the runner trains on a CPU),
each setting against full fine-tuning in the same process; median of the
timed steps after two warm-up steps.

    python benchmarks/freeze_speed.py --steps 8
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import handzoo
from handzoo.runner.trainer import freeze_parameters

SETTINGS = {
    "everything trained": [],
    "stem frozen": ["backbone.stem"],
    "stem + stage1 frozen (the recipe)": ["backbone.stem", "backbone.stage1"],
    "stem to stage2 frozen": ["backbone.stem", "backbone.stage1", "backbone.stage2"],
}


def step_seconds(model: torch.nn.Module, frozen: list[str], steps: int, batch: int, size: int) -> float:
    """Median seconds of one training step with the parameters under ``frozen`` left out."""
    for p in model.parameters():
        p.requires_grad_(True)
    freeze_parameters(model, frozen)  # as optim.freeze does in a run
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    images = torch.rand(batch, 3, size, size).contiguous(memory_format=torch.channels_last)
    target = torch.zeros(batch, 21, 3)
    times = []
    for _ in range(steps + 2):
        start = time.perf_counter()
        loss = (model(images).joints3d - target).abs().mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
    return statistics.median(times[2:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--size", type=int, default=224)
    args = parser.parse_args()
    # Random weights time exactly like MediaPipe's: no download needed.
    model = handzoo.create_model("mediapipe-hand-full", image_size=args.size)
    model = model.train().to(memory_format=torch.channels_last)
    base = None
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch}, {args.size} px")
    for label, frozen in SETTINGS.items():
        seconds = step_seconds(model, frozen, args.steps, args.batch, args.size)
        base = base or seconds
        print(f"{label:36s} {args.batch / seconds:6.1f} img/s  {base / seconds:.2f}x")


if __name__ == "__main__":
    main()
