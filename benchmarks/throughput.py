"""Training and inference throughput, side by side in one run.

Training (img/s, per batch size):

* **bare step**: the model's forward + L1 + backward + (fused on CUDA) Adam on
  a batch already on the device, same precision and layout as the runner
  (bf16 autocast where the runner uses it, channels_last), no augmentation,
  no data loading: the ceiling.
* **runner, cpu pipeline**: ``handzoo run``'s loop (``Trainer``) on a synthetic
  FreiHAND-layout folder with the image cache and the full augmentation
  (background, rotate, flip, occlude, color), augmented in the DataLoader
  workers.
* **runner, device pipeline**: the same with ``data.pipeline=device``: workers
  read uint8 crops, the augmentation runs batched on the device.

Runner rates are the runner's own steady-state figure (history.jsonl's
``img_per_s`` between the first logged step after warm-up and the last; epoch-end
validation excluded), data wait the runner's ``data_wait_fraction``.

Inference: ``handzoo.Predictor`` on 640×480 JPEG files, decoding on the CPU
and on the device, against a bare forward on ready tensors.

::

    python benchmarks/throughput.py --out bench-throughput                  # CPU: resnet18, 64 px
    python benchmarks/throughput.py --device cuda --model resnet101 --image-size 128 \\
        --batch-sizes 64,256,512 --workers 12 --out bench-throughput-gpu   # one GPU, < 10 min

Not a test: the figures go into benchmarks/README.md with the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

AUGMENT = ["background", "rotate", "flip", "occlude", "color"]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bare_step(model_name: str, size: int, batch: int, steps: int, device: torch.device, amp) -> float:
    """img/s of the plain step on data already on the device."""
    import handzoo

    model = handzoo.create_model(model_name, image_size=size).to(device).to(memory_format=torch.channels_last)
    fused = {"fused": True} if device.type == "cuda" else {}
    opt = torch.optim.Adam(model.parameters(), lr=1e-4, **fused)
    g = torch.Generator(device=device).manual_seed(0)
    x = torch.randn(batch, 3, size, size, device=device, generator=g).contiguous(
        memory_format=torch.channels_last
    )
    y = torch.randn(batch, 21, 3, device=device, generator=g) * 0.05
    model.train()

    def step() -> None:
        with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
            out = model(x)
        loss = (out.joints3d.float() - y).abs().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(3):  # cuDNN autotuning, allocator warm-up
        step()
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(device)
    return steps * batch / (time.perf_counter() - t0)


def runner(root: Path, args, batch: int, pipeline: str, out: Path) -> dict:
    """The runner's steady img/s and data wait on the synthetic folder."""
    from handzoo.config import RunConfig
    from handzoo.runner.trainer import Trainer

    warm = 3
    cfg = RunConfig().with_overrides(
        {
            "model.name": args.model,
            "data.name": "freihand",
            "data.root": str(root),
            "data.image_size": args.image_size,
            "data.batch_size": batch,
            "data.workers": args.workers,
            "data.image_cache": True,
            "data.augment": AUGMENT,
            "data.pipeline": pipeline,
            "data.val_fraction": 0.02,
            "run.max_steps": warm + args.steps,
            "run.log_every": warm,
            "run.checkpoint_every": 10**6,
            "run.device": args.device,
            "run.out": str(out),
        }
    )
    Trainer(cfg, out).run()
    rows = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    logged = [r for r in rows if "img_per_s" in r]
    first, last = logged[0], logged[-1]
    # img_per_s is cumulative from the second step: difference the elapsed times
    elapsed = lambda r: (r["step"] - 2) * batch / r["img_per_s"]  # noqa: E731
    steady = (last["step"] - first["step"]) * batch / max(elapsed(last) - elapsed(first), 1e-9)
    waits = [r["data_wait_fraction"] for r in rows if "data_wait_fraction" in r]
    return {"img_per_s": steady, "data_wait": float(np.mean(waits)) if waits else None}


def pipeline_check(root: Path, args, batch: int, device: torch.device) -> dict:
    """The device pipeline alone: ms per batch, and host synchronisations in one call (CUDA)."""
    import warnings

    import handzoo
    from handzoo.data.augment import build_pipeline
    from handzoo.data.device_augment import device_pipeline
    from handzoo.data.freihand import IMAGENET_MEAN, IMAGENET_STD

    ds = handzoo.create_dataset("freihand", root=str(root), image_size=args.image_size, uint8_images=True)
    samples = [ds[i % len(ds)] for i in range(batch)]
    batch_t = torch.utils.data.default_collate(samples)
    batch_t = {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch_t.items()}
    twin, _ = device_pipeline(build_pipeline(AUGMENT), IMAGENET_MEAN, IMAGENET_STD)
    g = torch.Generator(device=device).manual_seed(0)
    twin(batch_t, g)  # constants are made on the first call
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(10):
        twin(batch_t, g)
    _sync(device)
    out = {"batch": batch, "ms_per_batch": 100 * (time.perf_counter() - t0)}
    if device.type == "cuda":
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            torch.cuda.set_sync_debug_mode("warn")
            try:
                twin(batch_t, g)
            finally:
                torch.cuda.set_sync_debug_mode("default")
        messages = [str(w.message) for w in caught if "synchroniz" in str(w.message).lower()]
        out.update(host_syncs=len(messages), examples=messages[:3])
    return out


def predictor_figures(args, folder: Path, device: torch.device) -> dict:
    """Predictor on 640×480 JPEGs (cpu and device decoding) against a bare forward."""
    from PIL import Image

    from handzoo.inference.predictor import Predictor

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(args.predict_images):
        small = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
        Image.fromarray(small).resize((640, 480), Image.Resampling.BICUBIC).save(
            folder / f"{i}.jpg", quality=90
        )
        paths.append(folder / f"{i}.jpg")
    out: dict[str, float] = {}
    for decode in ("cpu", "device"):
        pred = Predictor(args.model, device=str(device), batch_size=args.predict_batch, decode=decode)
        pred.predict(paths[: args.predict_batch])  # warm-up
        _sync(device)
        t0 = time.perf_counter()
        pred.predict(paths)
        _sync(device)
        out[f"predictor_{decode}"] = len(paths) / (time.perf_counter() - t0)
        pred.close()
    model = pred.model
    x = torch.randn(args.predict_batch, 3, pred.size, pred.size, device=device)  # the Predictor's input size
    with torch.inference_mode():
        for _ in range(3):
            model(x)
        _sync(device)
        t0 = time.perf_counter()
        rounds = max(1, len(paths) // args.predict_batch)
        for _ in range(rounds):
            model(x).joints3d.float().cpu()
        _sync(device)
    out["bare_forward"] = rounds * args.predict_batch / (time.perf_counter() - t0)
    return out


def machine(device: torch.device) -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    text = f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__}"
    if device.type == "cuda":
        text = f"{torch.cuda.get_device_name(device)}; " + text
    return text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--model", default="resnet18")
    ap.add_argument("--image-size", type=int, default=64)
    ap.add_argument("--batch-sizes", default="32,64")
    ap.add_argument("--steps", type=int, default=10, help="timed steps per figure (after 3 warm-up steps)")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument(
        "--images", type=int, default=0, help="training images (default: one epoch)"
    )
    ap.add_argument("--predict-images", type=int, default=128)
    ap.add_argument("--predict-batch", type=int, default=32)
    ap.add_argument("--out", default="bench-throughput")
    args = ap.parse_args()

    from handzoo.data.synthetic.generator import generate_freihand
    from handzoo.device import amp_dtype_for

    device = torch.device(args.device)
    if device.type == "cuda":  # what the Trainer sets, before the bare step too, so both sides match
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    amp = amp_dtype_for(device, True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sizes = [int(b) for b in args.batch_sizes.split(",")]
    root = out / "data"
    if not (root / "training_xyz.json").exists():
        # one epoch of the largest batch, so no epoch-end validation interrupts the timing
        num = args.images or int(max(sizes) * (args.steps + 4) / 0.98) + 1
        generate_freihand(root, num=num, seed=0, workers=os.cpu_count() or 1, progress=True)

    results = {"machine": machine(device), "model": args.model, "image_size": args.image_size, "rows": []}
    for batch in sizes:
        row = {"batch": batch, "bare": bare_step(args.model, args.image_size, batch, args.steps, device, amp)}
        for pipeline in ("cpu", "device"):
            r = runner(root, args, batch, pipeline, out / f"run-{pipeline}-{batch}")
            row[pipeline], row[f"{pipeline}_wait"] = r["img_per_s"], r["data_wait"]
        results["rows"].append(row)
        print(json.dumps(row), flush=True)
        (out / "throughput.json").write_text(json.dumps(results, indent=2) + "\n")  # kept if killed later
    results["pipeline"] = pipeline_check(root, args, max(sizes), device)
    print(json.dumps(results["pipeline"]), flush=True)
    results["predict"] = predictor_figures(args, out / "jpegs", device)
    (out / "throughput.json").write_text(json.dumps(results, indent=2) + "\n")

    lines = [
        f"Machine: {results['machine']}; {args.model} at {args.image_size} px, "
        f"AMP {str(amp).removeprefix('torch.') if amp else 'off'}, {args.workers} workers",
        "",
        "| batch | bare step | runner, cpu pipeline | ratio | data wait "
        "| runner, device pipeline | ratio | data wait |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results["rows"]:
        pct = lambda v: "-" if v is None else f"{100 * v:.0f} %"  # noqa: E731
        lines.append(
            f"| {r['batch']} | {r['bare']:.0f} | {r['cpu']:.0f} | {r['cpu'] / r['bare']:.2f} "
            f"| {pct(r['cpu_wait'])} "
            f"| {r['device']:.0f} | {r['device'] / r['bare']:.2f} | {pct(r['device_wait'])} |"
        )
    p, q = results["predict"], results["pipeline"]
    syncs = f"; host synchronisations in one call: {q['host_syncs']}" if "host_syncs" in q else ""
    lines += [
        "",
        f"Device pipeline alone ({', '.join(AUGMENT)}), batch {q['batch']}: {q['ms_per_batch']:.1f} ms"
        f" per batch ({1000 * q['batch'] / q['ms_per_batch']:.0f} img/s){syncs}",
        "",
        f"Predictor, 640×480 JPEGs, batch {args.predict_batch}: bare forward {p['bare_forward']:.0f} img/s; "
        f"CPU decoding {p['predictor_cpu']:.0f} ({p['predictor_cpu'] / p['bare_forward']:.2f}×); "
        f"device decoding {p['predictor_device']:.0f} ({p['predictor_device'] / p['bare_forward']:.2f}×)",
    ]
    (out / "throughput.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
