"""Heads that predict in image space and lift to 3D exactly: 2.5D heatmaps, integral regression, direct 2.5D.

Every head here predicts, per joint, its pixel ``(u, v)`` in the input image,
its depth relative to the wrist ``zr`` in units of the reference bone, and one
bone length ``s`` (metres) per hand; :func:`handzoo_heads.image_space.from_25d`
turns that into camera-frame joints with the input crop's ``K`` (exact
perspective, root depth from the reference bone, Iqbal et al. ECCV 2018), and
the head returns them root-relative (:class:`handzoo.HandOutput.joints3d`)
with ``joints2d`` = ``(u, v)``. Without ``K`` the default camera of
:mod:`handzoo.inference.camera` is used (said once in the log).

Loss terms of their own (added to the run's joint loss; weights in
``loss_weights``): ``uv`` (L1 of pixels / image width), ``depth`` (L1 of
``zr``), ``scale`` (L1 of ``log s``) and, for the heatmap head, ``heatmap``:
the Jensen-Shannon divergence between each joint's heatmap and a Gaussian at
its true pixel (σ = one heatmap cell). Why that regulariser: a soft-argmax
only constrains the heatmap's mean, so without it the network can spread the
mass (a blurred, multi-modal map whose mean happens to be right) and the
coordinates stop improving; the JS term keeps each map one sharp peak at the
right place (Nibali et al., "Numerical coordinate regression with CNNs",
2018, found it the best of the regularisers they compared).
"""

from __future__ import annotations

import logging
import math
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from handzoo.plugin_api import DEFAULT_FOV_DEG, ConfigError, HandOutput, merge_loss_weights
from handzoo_heads.image_space import default_K, from_25d, to_25d

logger = logging.getLogger("handzoo")

NUM_JOINTS = 21

SCALE_INIT = 0.045  # metres: a typical middle-finger MCP -> PIP bone
BASE_WEIGHTS = {"uv": 0.1, "depth": 0.01, "scale": 0.01}


def upsampling_neck(in_features: int, channels: int, stages: int) -> tuple[nn.Module, int]:
    """``stages`` x (4x4 transposed conv, stride 2, BN, ReLU): stride 32 features become stride 32/2^stages.

    Returns (the neck, its output channels). ``stages=0`` is the identity.
    """
    layers: list[nn.Module] = []
    c = in_features
    for _ in range(stages):
        layers += [
            nn.ConvTranspose2d(c, channels, 4, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True),
        ]
        c = channels
    return (nn.Sequential(*layers) if layers else nn.Identity()), c


class ImageSpaceHead(nn.Module):
    """Shared parts: the camera, the lift to 3D, the scale branch and the 2.5D loss terms.

    Subclasses implement :meth:`predict_25d` -> ``(uv (B,21,2) px, zr (B,21), extras)``.
    """

    extra_terms: tuple[str, ...] = ()

    def __init__(self, in_features: int, loss_weights: dict[str, float] | None = None) -> None:
        super().__init__()
        weights = {**BASE_WEIGHTS, **{k: 0.01 for k in self.extra_terms}}
        self.loss_weights = merge_loss_weights(weights, loss_weights, "this head")
        self.scale = nn.Linear(in_features, 1)
        nn.init.zeros_(self.scale.weight)
        nn.init.constant_(self.scale.bias, math.log(SCALE_INIT))
        self._warned = False

    def camera(self, K: torch.Tensor | None, image_hw: tuple[int, int], like: torch.Tensor) -> torch.Tensor:
        """(B,3,3) intrinsics of the input: the given K, or the default camera (said once)."""
        if K is not None:
            return K.to(like)
        if not self._warned:
            logger.warning(
                "%s: no camera K given; lifting to 3D with the default camera (%g degrees across)",
                type(self).__name__,
                DEFAULT_FOV_DEG,
            )
            self._warned = True
        return default_K(image_hw[0], image_hw[1], DEFAULT_FOV_DEG, like).expand(like.shape[0], 3, 3)

    def predict_25d(
        self, features: torch.Tensor, image_hw: tuple[int, int]
    ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        raise NotImplementedError

    def forward(
        self, features: torch.Tensor, K: torch.Tensor | None = None, image_hw: tuple[int, int] | None = None
    ) -> HandOutput:
        """features (B,C,h,w) float32 -> HandOutput(joints3d root-relative metres, joints2d pixels).

        Args:
            K: (B,3,3) intrinsics of the input crop, pixels; None: the default camera.
            image_hw: the input's (H, W); default: the features' size x 32.
        """
        if image_hw is None:
            image_hw = (features.shape[-2] * 32, features.shape[-1] * 32)
        uv, zr, extras = self.predict_25d(features, image_hw)
        s = torch.exp(self.scale(features.mean(dim=(2, 3)))).squeeze(-1)
        cam = self.camera(K, image_hw, uv)
        joints, _ = from_25d(uv, zr, cam, s)
        root = joints[:, :1]
        extras.update(zr=zr, scale=s, root=root[:, 0], image_width=image_hw[1])
        return HandOutput(joints3d=joints - root, joints2d=uv, extras=extras)

    # -- loss terms (handzoo.losses.ExtraLosses) ------------------------------------------
    def extra_loss_weights(self) -> dict[str, float]:
        return dict(self.loss_weights)

    def extra_losses(self, output: HandOutput, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """``uv``, ``depth``, ``scale`` (and the subclass's terms) against the batch's 2.5D truth."""
        extras = output.extras or {}
        gt = batch["joints3d"].to(output.joints3d)
        width = float(extras["image_width"])
        K = batch.get("K")
        if K is None:
            K = default_K(int(width), int(width), DEFAULT_FOV_DEG, gt).expand(gt.shape[0], 3, 3)
        uv, zr, s = to_25d(gt, K.to(gt))
        terms = {
            "uv": (output.joints2d - uv).abs().mean() / width,
            "depth": (extras["zr"] - zr).abs().mean(),
            "scale": (torch.log(extras["scale"]) - torch.log(s)).abs().mean(),
        }
        terms.update(self.own_losses(extras, uv))
        return terms

    def own_losses(self, extras: dict[str, torch.Tensor], uv: torch.Tensor) -> dict[str, torch.Tensor]:
        return {}


def _cell_centres(n: int, step: float, like: torch.Tensor) -> torch.Tensor:
    """Pixel coordinates of the centres of ``n`` cells ``step`` pixels wide (pixel i covers [i, i+1))."""
    return (torch.arange(n, dtype=like.dtype, device=like.device) + 0.5) * step


class Heatmap25DHead(ImageSpaceHead):
    """Per-joint 2D heatmaps + soft-argmax for (u, v); relative depth from latent depth maps (2.5D).

    Args:
        in_features: C of the backbone's map.
        upsample: transposed-conv stages of the neck (2: stride 32 -> 8).
        neck_channels: width of the neck.
        loss_weights: overrides of the terms ``uv``, ``depth``, ``scale``, ``heatmap``.
    """

    extra_terms = ("heatmap",)

    def __init__(
        self,
        in_features: int,
        upsample: int = 2,
        neck_channels: int = 256,
        loss_weights: dict[str, float] | None = None,
    ) -> None:
        super().__init__(in_features, loss_weights)
        self.neck, c = upsampling_neck(in_features, neck_channels, upsample)
        self.maps = nn.Conv2d(c, 2 * NUM_JOINTS, 1)

    def predict_25d(self, features, image_hw):
        maps = self.maps(self.neck(features))
        logits, depth = maps[:, :NUM_JOINTS], maps[:, NUM_JOINTS:]
        b, j, h, w = logits.shape
        prob = F.softmax(logits.reshape(b, j, h * w), dim=-1).reshape(b, j, h, w)
        xs = _cell_centres(w, image_hw[1] / w, prob)
        ys = _cell_centres(h, image_hw[0] / h, prob)
        u = (prob.sum(2) * xs).sum(-1)
        v = (prob.sum(3) * ys).sum(-1)
        zr = (prob * depth).sum((2, 3))
        return torch.stack([u, v], -1), zr, {"heatmaps": prob}

    def own_losses(self, extras, uv):
        prob = extras["heatmaps"]
        h, w = prob.shape[-2:]
        cell = float(extras["image_width"]) / w  # pixels per heatmap cell
        dy = _cell_centres(h, 1.0, prob) - (uv[..., 1:] / cell)  # (B,21,h), in cells
        dx = _cell_centres(w, 1.0, prob) - (uv[..., :1] / cell)  # (B,21,w)
        target = torch.exp(-0.5 * (dy[..., :, None] ** 2 + dx[..., None, :] ** 2))  # σ = one cell
        target = target / target.sum((2, 3), keepdim=True).clamp_min(1e-12)
        mix = 0.5 * (prob + target)
        eps = 1e-12

        def kl(p, q):
            return (p * (torch.log(p + eps) - torch.log(q + eps))).sum((2, 3))

        return {"heatmap": (0.5 * kl(prob, mix) + 0.5 * kl(target, mix)).mean()}


class IntegralHead(ImageSpaceHead):
    """Integral regression (Sun et al., ECCV 2018): a 3D heatmap per joint, x, y and depth as its expectation.

    Args:
        in_features: C of the backbone's map.
        depth_bins: D bins of relative depth over ``[-depth_range, depth_range]`` bone lengths.
        upsample, neck_channels: the neck, as for :class:`Heatmap25DHead`.
    """

    def __init__(
        self,
        in_features: int,
        depth_bins: int = 32,
        depth_range: float = 5.0,
        upsample: int = 2,
        neck_channels: int = 256,
        loss_weights: dict[str, float] | None = None,
    ) -> None:
        super().__init__(in_features, loss_weights)
        if depth_bins < 2:
            raise ConfigError(f"depth_bins={depth_bins}: the integral head needs at least 2 depth bins")
        self.depth_bins, self.depth_range = depth_bins, depth_range
        self.neck, c = upsampling_neck(in_features, neck_channels, upsample)
        self.volume = nn.Conv2d(c, NUM_JOINTS * depth_bins, 1)

    def predict_25d(self, features, image_hw):
        vol = self.volume(self.neck(features))
        b, _, h, w = vol.shape
        d = self.depth_bins
        prob = F.softmax(vol.reshape(b, NUM_JOINTS, d * h * w), dim=-1).reshape(b, NUM_JOINTS, d, h, w)
        xs = _cell_centres(w, image_hw[1] / w, prob)
        ys = _cell_centres(h, image_hw[0] / h, prob)
        zs = torch.linspace(-self.depth_range, self.depth_range, d, dtype=prob.dtype, device=prob.device)
        u = (prob.sum((2, 3)) * xs).sum(-1)
        v = (prob.sum((2, 4)) * ys).sum(-1)
        zr = (prob.sum((3, 4)) * zs).sum(-1)
        return torch.stack([u, v], -1), zr, {}


class Direct25DHead(ImageSpaceHead):
    """The seed's global pool -> linear, regressing the 2.5D target: (u, v) and relative depth per joint."""

    def __init__(self, in_features: int, dropout: float = 0.0, loss_weights: dict[str, float] | None = None):
        super().__init__(in_features, loss_weights)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.fc = nn.Linear(in_features, NUM_JOINTS * 3)
        nn.init.normal_(self.fc.weight, std=1e-3)
        nn.init.zeros_(self.fc.bias)

    def predict_25d(self, features, image_hw):
        out = self.fc(self.dropout(features.mean(dim=(2, 3)))).view(-1, NUM_JOINTS, 3)
        # zero output: every joint at the image centre (scaled by Python numbers: a tensor of the
        # size made each forward would be a host-to-device copy waiting for the GPU)
        unit = 0.5 + 0.25 * out[..., :2]
        uv = torch.stack([unit[..., 0] * image_hw[1], unit[..., 1] * image_hw[0]], dim=-1)
        return uv, out[..., 2], {}
