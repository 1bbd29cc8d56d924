"""Learning benchmark: PA-MPJPE / constant baseline against training images seen, for every head.

Each (backbone, head) pair is trained by ``handzoo run`` on the embedded
synthetic hands for the same wall-clock budget; every epoch's validation row
of history.jsonl gives one point (images seen = step x batch size, ratio =
val PA-MPJPE / the constant pose's). The curves go into one picture, the
last points into a Markdown table and a JSON file::

    python benchmarks/learning.py --out bench-learning       # CPU: resnet18, 64 px, 2.5 min a head
    python benchmarks/learning.py --device cuda --models resnet50 --image-size 128 --batch-size 128 \\
        --workers 12 --minutes 2 --out bench-learning-gpu   # one GPU: 4 heads, ends within 10 minutes

Not a test: it trains for minutes and its figures go into benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

# head label -> `--set` overrides of the model's options
HEADS = {
    "direct": [],
    "direct-2.5d": ["--set", "model.options.head_cfg={target: 2.5d}"],
    "heatmap25d": ["--set", "model.options.head=heatmap25d"],
    "integral": ["--set", "model.options.head=integral"],
}


def run_one(model: str, head: str, args: argparse.Namespace, out: Path) -> dict:
    """Train one pair; returns its curve and last point."""
    folder = out / f"{model}-{head}"
    cmd = [sys.executable, "-m", "handzoo", "run", model, "--out", str(folder), "--force"]
    cmd += [
        "--device",
        args.device,
        "--image-size",
        str(args.image_size),
        "--batch-size",
        str(args.batch_size),
    ]
    cmd += ["--set", f"run.time_budget_min={args.minutes}", "--set", "optim.loss=l1_pa"]
    cmd += [
        "--set",
        "optim.schedule=cosine",
        "--set",
        f"optim.lr={args.lr}",
        "--set",
        "optim.warmup_steps=30",
    ]
    cmd += ["--set", f"run.checkpoint_every={args.checkpoint_every}", "--set", "data.image_cache=true"]
    cmd += HEADS[head]
    if args.workers is not None:
        cmd += ["--workers", str(args.workers)]
    started = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        return {"model": model, "head": head, "error": done.stderr.strip().splitlines()[-1:]}
    rows = [json.loads(line) for line in (folder / "history.jsonl").read_text().splitlines() if line.strip()]
    batch = args.batch_size
    curve = [
        (r["step"] * batch, r["val_pa_mpjpe_mm"] / r["val_baseline_pa_mpjpe_mm"])
        for r in rows
        if "val_pa_mpjpe_mm" in r
    ]
    metrics = json.loads((folder / "metrics.json").read_text())
    return {
        "model": model,
        "head": head,
        "images_seen": curve[-1][0] if curve else 0,
        "pa_mpjpe_mm": metrics["pa_mpjpe_mm"],
        "baseline_mm": metrics["baseline_pa_mpjpe_mm"],
        "ratio": metrics["pa_mpjpe_mm"] / metrics["baseline_pa_mpjpe_mm"],
        "seconds": seconds,
        "curve": curve,
    }


def plot(results: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    for r in results:
        if r.get("curve"):
            xs, ys = zip(*r["curve"], strict=True)
            ax.plot(xs, ys, marker="o", label=f"{r['model']} + {r['head']}")
    ax.axhline(1.0, color="grey", linestyle="--", label="constant pose (1.0)")
    ax.set_xlim(left=0)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("training images seen")
    ax.set_ylabel("val PA-MPJPE / constant baseline")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")  # the points sit high: keep the legend off them
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["resnet18"])
    parser.add_argument("--heads", nargs="+", default=list(HEADS), choices=list(HEADS))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--minutes", type=float, default=2.5, help="training budget of each run")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--checkpoint-every", type=int, default=200)
    parser.add_argument("--out", default="bench-learning")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("OMP_NUM_THREADS", str(os.cpu_count() or 1))
    # Generate the synthetic set first, so no run's budget pays for it.
    from handzoo.data.synthetic import ensure_synthetic

    ensure_synthetic()
    results = []
    for model in args.models:
        for head in args.heads:
            result = run_one(model, head, args, out)
            results.append(result)
            shown = result.get("error") or f"{result['ratio']:.2f}x after {result['images_seen']} images"
            print(f"{model} + {head}: {shown}", flush=True)
    (out / "learning.json").write_text(json.dumps({"args": vars(args), "results": results}, indent=2) + "\n")
    title = f"{args.device}, {args.image_size} px, {args.minutes:g} min per run"
    plot(results, out / "learning.png", title)
    lines = ["| backbone | head | images seen | val PA-MPJPE mm | baseline mm | ratio |"]
    lines.append("|---|---|---:|---:|---:|---:|")
    for r in results:
        if "ratio" in r:
            lines.append(
                f"| {r['model']} | {r['head']} | {r['images_seen']:,} | {r['pa_mpjpe_mm']:.2f} | "
                f"{r['baseline_mm']:.2f} | {r['ratio']:.2f} |"
            )
    (out / "learning.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
