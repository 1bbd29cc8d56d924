"""How real do the synthetic hands look? MediaPipe Hands, trained on photographs, is the judge.

For every image of a FreiHAND-layout split (default: the embedded synthetic
set's evaluation split), MediaPipe Hands (``solutions.hands``,
``static_image_mode=True``) looks for one hand. Printed and written to
``OUT/judge.json``: the detection rate, MediaPipe's PA-MPJPE on the images
where it found a hand (its world landmarks, root-relative), the constant
pose's PA-MPJPE on the same images (the Procrustes mean of the training
labels, as every run's baseline), their ratio, and ``OUT/misses.png``, a grid
of images it missed.

Needs the ``[mediapipe]`` extra, which pins numpy<2 and protobuf<5: run it in
a virtual environment of its own::

    python benchmarks/mediapipe_judge.py --out judge-synth3                     # the default set
    python benchmarks/mediapipe_judge.py --generator synth2 --out judge-synth2  # an earlier version
    python benchmarks/mediapipe_judge.py --root DIR --pad 448 --out judge       # any FreiHAND-layout folder

The embedded sets are generated (once, cached) by the generator of the
virtual environment the script runs in; pass ``--root`` to judge a set
written by another environment byte for byte.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image


def judge(root: Path, split: str, limit: int | None, pad: int, min_confidence: float) -> dict:
    from handzoo_mediapipe.hands import new_hands, world_joints

    import handzoo
    from handzoo.metrics import pa_mpjpe
    from handzoo.scoring.baseline import constant_pose_errors, procrustes_mean, training_labels

    hands = new_hands(1, 1, min_confidence)
    ds = handzoo.create_dataset("freihand", root=str(root), split=split, image_size=224)
    train = handzoo.create_dataset("freihand", root=str(root), split="train", image_size=224)
    shape = procrustes_mean(torch.as_tensor(training_labels(train), dtype=torch.float64))
    n = len(ds) if limit is None else min(limit, len(ds))
    found, gts, preds, misses = [], [], [], []
    started = time.perf_counter()
    for i in range(n):
        image = Image.open(ds.image_path(i)).convert("RGB")
        if pad and max(image.size) < pad:  # MediaPipe's palm detector likes context around the hand
            canvas = Image.new("RGB", (pad, pad), tuple(int(v) for v in np.asarray(image)[0, 0]))
            canvas.paste(image, ((pad - image.width) // 2, (pad - image.height) // 2))
            image = canvas
        joints = world_joints(hands.process(np.asarray(image)))
        gt = np.asarray(ds.xyz[ds.annotation_index(i)], dtype=np.float64)
        if joints is not None:
            preds.append(joints)
            gts.append(gt - gt[:1])
            found.append(i)
        elif len(misses) < 36:
            misses.append(ds.image_path(i))
    seconds = time.perf_counter() - started
    out: dict = {
        "root": str(root),
        "split": split,
        "images": n,
        "detected": len(found),
        "detection_rate": len(found) / max(n, 1),
        "pad": pad,
        "min_confidence": min_confidence,
        "seconds": round(seconds, 1),
    }
    if found:
        gt_t, pred_t = torch.as_tensor(np.stack(gts)), torch.as_tensor(np.stack(preds))
        out["mediapipe_pa_mpjpe_mm"] = float(pa_mpjpe(pred_t, gt_t).mean()) * 1000
        out["constant_pa_mpjpe_mm"] = float(constant_pose_errors(shape, gt_t).mean()) * 1000
        out["ratio"] = out["mediapipe_pa_mpjpe_mm"] / out["constant_pa_mpjpe_mm"]
    out["misses"] = [str(p) for p in misses]
    return out


def miss_grid(paths: list[str], path: Path, tile: int = 112) -> None:
    """Up to 36 missed images, 6 per row."""
    if not paths:
        return
    cols = 6
    rows = -(-len(paths) // cols)
    grid = Image.new("RGB", (cols * tile, rows * tile), (255, 255, 255))
    for k, p in enumerate(paths):
        grid.paste(Image.open(p).convert("RGB").resize((tile, tile)), ((k % cols) * tile, (k // cols) * tile))
    grid.save(path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", help="FreiHAND-layout folder (default: the embedded synthetic set)")
    ap.add_argument("--generator", help="version of the embedded set, without --root (default: the current)")
    ap.add_argument("--split", default="eval", help="eval (default), val or train")
    ap.add_argument("--limit", type=int, help="only the first N images")
    ap.add_argument("--pad", type=int, default=0, help="paste each image on a PAD x PAD canvas first")
    ap.add_argument("--min-confidence", type=float, default=0.1)
    ap.add_argument("--out", default="judge")
    args = ap.parse_args()
    if args.root is not None and args.generator is not None:
        ap.error("--generator chooses an embedded set; with --root the folder says what it holds")
    if args.root is None:
        from handzoo.data.synthetic import GENERATOR_VERSION, ensure_synthetic

        args.root = str(ensure_synthetic(version=args.generator or GENERATOR_VERSION))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result = judge(Path(args.root), args.split, args.limit, args.pad, args.min_confidence)
    miss_grid(result["misses"], out / "misses.png")
    (out / "judge.json").write_text(json.dumps(result, indent=2) + "\n")
    summary = {k: v for k, v in result.items() if k != "misses"}
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
