"""Fit ``mediapipe-hand-lift``'s one number on the synthetic hands, measure it, write its weights.

The model (``plugins/handzoo_blaze/lift.py``) averages MediaPipe's full and
lite networks and lifts their screen landmarks to 3D with the crop's K; its
only free number is ``depth_scale`` (the network's relative depth to pixels).
This script

1. runs both networks once on N images of the embedded synthetic **train**
   split (the runner's val split is held out) and picks the depth scale with
   the lowest PA-MPJPE on a 0.05 grid over [1, 5] (the real photos play no part);
2. writes the model's weights (MediaPipe's converted tensors stored as
   float16, which holds them exactly, and the fitted scale) with a handzoo
   header, named after the file's sha256 like ``handzoo publish`` does.

Measure it afterwards with ``handzoo eval`` (synthetic val, real photos).

    python benchmarks/fit_lift.py --num 640 --out plugins/handzoo_blaze
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import numpy as np
import torch
from handzoo_blaze.lift import lift_members

import handzoo
from handzoo.interfaces import part_metadata
from handzoo.metrics import pa_mpjpe
from handzoo.weights import export_weights, weights_metadata


def member_outputs(model, dataset, num: int, batch: int = 32):
    """Per member: screen (N,21,3) and world (N,21,3); and the labels (N,21,3) and K (N,3,3)."""
    screens = [[] for _ in model.members]
    worlds = [[] for _ in model.members]
    labels, cameras = [], []
    with torch.no_grad():
        for start in range(0, num, batch):
            items = [dataset[i] for i in range(start, min(start + batch, num))]
            x = torch.stack([torch.as_tensor(it["image"]) for it in items])
            for k, member in enumerate(model.members):
                out = member(x)
                screens[k].append(model._screen(out, x.shape[-1] / 224))
                worlds[k].append(out.joints3d)
            labels.append(torch.stack([torch.as_tensor(it["joints3d"]) for it in items]))
            cameras.append(torch.stack([torch.as_tensor(it["K"]) for it in items]).float())
    cat = torch.cat
    return [cat(s) for s in screens], [cat(w) for w in worlds], cat(labels).double(), cat(cameras)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num", type=int, default=640, help="synthetic training images to fit on")
    parser.add_argument("--out", type=Path, default=Path("plugins/handzoo_blaze"))
    args = parser.parse_args()
    model = handzoo.create_model("mediapipe-hand-lift").eval()
    for member, variant in zip(model.members, ("full", "lite"), strict=True):
        state = handzoo.create_model(f"mediapipe-hand-{variant}", pretrained=True).state_dict()
        member.load_state_dict(state)
    train = handzoo.create_dataset(
        "synthetic", split="train", image_size=224, augment=[], mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0)
    )
    screens, worlds, labels, K = member_outputs(model, train, args.num)
    grid = np.round(np.arange(1.0, 5.0001, 0.05), 2)
    errors = [
        float(pa_mpjpe(lift_members(screens, worlds, K, s).double(), labels).mean()) * 1000 for s in grid
    ]
    best = float(grid[int(np.argmin(errors))])
    print(
        f"depth scale fitted on {args.num} synthetic training images: {best} "
        f"(PA-MPJPE {min(errors):.2f} mm there; 1.0 gives {errors[0]:.2f} mm)"
    )
    with torch.no_grad():
        model.depth_scale.fill_(best)
    cfg = {"model": {"name": "mediapipe-hand-lift", "options": {}}, "data": {"image_size": 224}}
    provenance = {
        "licence": "Apache-2.0",
        "provenance": (
            "MediaPipe 0.10.21's hand_landmark_full.tflite and hand_landmark_lite.tflite (Apache-2.0), "
            f"converted by handzoo; depth_scale {best} fitted on {args.num} images of the embedded "
            "synthetic hands' training split"
        ),
    }
    meta = weights_metadata(
        "mediapipe-hand-lift", cfg, model.preprocessing, {}, part_metadata(model), provenance=provenance
    )
    args.out.mkdir(parents=True, exist_ok=True)
    tmp = export_weights(model, args.out / "mediapipe-hand-lift.safetensors", meta, lossless_half=True)
    digest = hashlib.sha256(tmp.read_bytes()).hexdigest()
    final = tmp.with_name(f"mediapipe-hand-lift-{digest[:8]}.safetensors")
    tmp.replace(final)
    print(f"wrote {final} ({final.stat().st_size / 1e6:.1f} MB, sha256 {digest})")


if __name__ == "__main__":
    main()
