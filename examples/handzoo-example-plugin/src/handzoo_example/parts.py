"""The example plugin's parts (imported only when one is built)."""

from __future__ import annotations

import math

import numpy as np
import torch
from pydantic import Field
from torch import nn

from handzoo.plugin_api import (
    Augmenter,
    AugmenterParams,
    BatchAugmenter,
    Detection,
    HandOutput,
    build_pipeline,
    project,
)


class TinyCNN(nn.Module):
    """images (B,3,S,S) -> features (B,4*width,S/8,S/8)."""

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        layers, channels = [], 3
        for out in (width, 2 * width, 4 * width):
            layers += [nn.Conv2d(channels, out, 3, stride=2, padding=1), nn.BatchNorm2d(out), nn.ReLU()]
            channels = out
        self.body = nn.Sequential(*layers)
        self.num_features = channels
        self.preprocessing = {"mean": (0.5, 0.5, 0.5), "std": (0.25, 0.25, 0.25)}

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.body(images)


class MLPHead(nn.Module):
    """features (B,C,h,w), float32 -> HandOutput(joints3d (B,21,3) metres, root-relative, canonical order)."""

    def __init__(self, in_features: int, hidden: int = 64) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(in_features, hidden), nn.ReLU(), nn.Linear(hidden, 63))
        # recorded in the weights' header and checked on load
        self.handzoo_metadata = {"example_head_hidden": hidden}

    def forward(self, features: torch.Tensor) -> HandOutput:
        joints = self.mlp(features.mean(dim=(2, 3))).view(-1, 21, 3) * 0.1
        return HandOutput(joints3d=joints - joints[:, :1])


class NoiseParams(AugmenterParams):
    """Gaussian pixel noise."""

    p: float = Field(0.5, ge=0.0, le=1.0)
    sigma: float = Field(8.0, ge=0.0, le=128.0, description="standard deviation, grey levels")


class Noise(Augmenter):
    """Adds Gaussian noise to the image; labels, mask and K are unchanged."""

    name = "example-noise"
    Params = NoiseParams
    commutes_with_geometry = True  # noise drawn after a warp is noise all the same

    def apply(self, sample, rng):
        image = sample["image"].astype(np.float32)
        image += rng.normal(0.0, self.params.sigma, image.shape).astype(np.float32)
        out = dict(sample)
        out["image"] = np.clip(image, 0, 255).astype(np.uint8)
        return out

    def batched(self):
        return BatchNoise(self.params)


class BatchNoise(BatchAugmenter):
    """The same noise on a whole batch on the training device (``data.pipeline=device``)."""

    name = "example-noise"
    commutes_with_geometry = True

    def apply(self, batch, generator):
        image = batch["image"]  # (B,3,S,S) float, 0..255
        noise = torch.randn(image.shape, generator=generator, device=image.device)
        batch["image"] = (image + self.params.sigma * noise).clamp(0, 255)
        return batch


def _random_hand(rng: np.random.Generator) -> np.ndarray:
    """(21,3) metres, canonical order: five straight fingers fanned from the wrist, randomly turned."""
    joints = np.zeros((21, 3))
    for finger in range(5):
        angle = math.radians(-40 + 20 * finger + rng.normal(0, 5))
        direction = np.array([math.sin(angle), -math.cos(angle), rng.normal(0, 0.2)])
        for k in range(4):
            joints[1 + 4 * finger + k] = direction * (0.05 + 0.025 * k)
    q = rng.normal(size=4)
    q /= np.linalg.norm(q)
    w, x, y, z = q
    rotation = np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ]
    )
    return joints @ rotation.T + np.array([0.0, 0.0, 0.5])


class DotHands(torch.utils.data.Dataset):
    """Random hands drawn as white dots on black at 64 px, augmented, returned at ``image_size``.

    Samples follow handzoo's dataset contract; :meth:`labels` gives the split's
    joints without drawing anything (the runner's constant baseline uses it).
    """

    SOURCE = 64

    def __init__(self, split, image_size, augment, augment_cfg, mean, std, val_fraction, seed, num) -> None:
        rng = np.random.default_rng(12345)
        hands = np.stack([_random_hand(rng) for _ in range(num)])
        n_val = max(1, round(num * val_fraction))
        self.joints = {"train": hands[n_val:], "val": hands[:n_val], "eval": hands[:n_val]}[split]
        self.split, self.image_size, self.seed = split, image_size, seed
        self.K = np.array([[80.0, 0.0, 32.0], [0.0, 80.0, 32.0], [0.0, 0.0, 1.0]])
        self.pipeline = build_pipeline(augment or [], augment_cfg)
        self.mean = np.asarray(mean, np.float32)[:, None, None]
        self.std = np.asarray(std, np.float32)[:, None, None]

    def __len__(self) -> int:
        return len(self.joints)

    def labels(self) -> np.ndarray:
        return self.joints

    def __getitem__(self, index: int) -> dict:
        joints = self.joints[index]
        uv = project(joints, self.K)
        image = np.zeros((self.SOURCE, self.SOURCE, 3), np.uint8)
        for u, v in uv.astype(int):
            image[max(v - 1, 0) : v + 2, max(u - 1, 0) : u + 2] = 255
        raw = {"image": image, "mask": None, "joints3d": joints, "joints2d": uv, "K": self.K}
        rng = np.random.default_rng([self.seed or 0, index])
        raw = self.pipeline(raw, rng, (self.image_size, self.image_size))
        x = (raw["image"].transpose(2, 0, 1).astype(np.float32) / 255.0 - self.mean) / self.std
        return {
            "image": torch.from_numpy(x),
            "joints3d": torch.from_numpy(raw["joints3d"].astype(np.float32)),
            "K": torch.from_numpy(raw["K"].astype(np.float32)),
            "index": index,
        }


def wing_loss(output, batch, width_mm: float, curvature_mm: float) -> dict[str, torch.Tensor]:
    """Wing loss on root-relative coordinates (mm): log-shaped below ``width_mm``, linear above."""
    gt = batch["joints3d"].to(output.joints3d)
    err = (output.joints3d - (gt - gt[:, :1])).abs() * 1000.0
    c = width_mm - width_mm * math.log(1.0 + width_mm / curvature_mm)
    loss = torch.where(err < width_mm, width_mm * torch.log1p(err / curvature_mm), err - c)
    return {"loss": loss.mean() / 1000.0, "wing_mm": loss.mean().detach()}


def pck(pred: torch.Tensor, gt: torch.Tensor, threshold_m: float) -> torch.Tensor:
    """(N,) fraction of joints within ``threshold_m`` metres (root-relative, no alignment)."""
    dist = torch.linalg.vector_norm((pred - pred[:, :1]) - (gt - gt[:, :1]), dim=-1)
    return (dist <= threshold_m).to(pred.dtype).mean(dim=-1)


class BrightBox:
    """A detector: the box around every pixel brighter than ``threshold`` (one hand, or none)."""

    crop_margin = 1.3  # the squared box is grown by this much into the crop

    def __init__(self, threshold: int) -> None:
        self.threshold = threshold

    def detect(self, image: np.ndarray) -> list[Detection]:
        bright = image.max(axis=2) > self.threshold  # (H,W) from the upright uint8 RGB photo
        if not bright.any():
            return []
        v, u = np.nonzero(bright)
        box = (float(u.min()), float(v.min()), float(u.max() + 1), float(v.max() + 1))  # pixels
        return [Detection(box, score=float(bright.mean()), handedness="right")]
