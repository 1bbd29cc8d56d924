"""How much of MediaPipe's error on the synthetic hands is a joint convention, not the pose?

Procrustes alignment removes a global similarity but not a fixed per-joint
offset (where a skeleton puts its wrist or fingertips). This script runs
``mediapipe-hand-full`` zero-shot on N images of the embedded synthetic
**train** split, fits the mean offset of every joint in a hand-local frame of
the prediction (origin: wrist; y: wrist -> middle MCP; z: palm normal from the
index and little MCPs), and applies it to the val split. If the convention
were the gap, val PA-MPJPE would drop towards the fine-tuned network's; the
real photos play no part.

    python benchmarks/convention_offset.py --num 640
"""

from __future__ import annotations

import argparse

import torch

import handzoo
from handzoo.metrics import pa_mpjpe, procrustes_align


def predictions(model, split: str, num: int, batch: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """(predicted, labelled) root-relative joints (N,21,3) metres, float64, of ``split``'s first ``num``."""
    ds = handzoo.create_dataset(
        "synthetic", split=split, image_size=224, augment=[], mean=(0.0,) * 3, std=(1.0,) * 3
    )
    preds, labels = [], []
    with torch.no_grad():
        for start in range(0, min(num, len(ds)), batch):
            items = [ds[i] for i in range(start, min(start + batch, num, len(ds)))]
            preds.append(model(torch.stack([torch.as_tensor(it["image"]) for it in items])).joints3d.double())
            labels.append(torch.stack([torch.as_tensor(it["joints3d"]) for it in items]).double())
    labels = torch.cat(labels)
    return torch.cat(preds), labels - labels[:, :1]


def hand_frames(joints: torch.Tensor) -> torch.Tensor:
    """(N,3,3) rotations whose columns are the hand-local x, y, z axes of ``joints`` (N,21,3)."""
    y = torch.nn.functional.normalize(joints[:, 9] - joints[:, 0], dim=-1)
    z = torch.nn.functional.normalize(torch.cross(joints[:, 5] - joints[:, 17], y, dim=-1), dim=-1)
    return torch.stack([torch.cross(y, z, dim=-1), y, z], dim=-1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num", type=int, default=640, help="synthetic training images to fit on")
    args = parser.parse_args()
    model = handzoo.create_model("mediapipe-hand-full", pretrained=True).eval()
    pred, labels = predictions(model, "train", args.num)
    # The label mapped onto the prediction, both in the prediction's hand frame: their mean difference.
    frames = hand_frames(pred)
    offset = torch.einsum("nji,nkj->ki", frames, procrustes_align(labels, pred) - pred) / len(pred)
    val_pred, val_labels = predictions(model, "val", 320)
    corrected = val_pred + torch.einsum("nij,kj->nki", hand_frames(val_pred), offset)
    before = float(pa_mpjpe(val_pred, val_labels).mean()) * 1000
    after = float(pa_mpjpe(corrected, val_labels).mean()) * 1000
    norms = ", ".join(f"{v:.1f}" for v in offset.norm(dim=-1).mul(1000).tolist())
    print(f"per-joint offsets fitted on {args.num} training images (mm): {norms}")
    print(f"val PA-MPJPE on {len(val_pred)} images: {before:.2f} mm zero-shot, {after:.2f} mm corrected")


if __name__ == "__main__":
    main()
