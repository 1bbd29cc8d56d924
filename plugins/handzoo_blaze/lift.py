"""``mediapipe-hand-lift``: MediaPipe's screen landmarks lifted to 3D through the crop's camera.

MediaPipe's landmark network gives, per joint, its pixel (u, v) in the crop
and a depth z relative to the wrist "in roughly the scale of x" (pixels); it
also gives metric "world" landmarks. On real photos the screen landmarks
carry more of the pose than the world ones. This model turns them into a 3D
hand with the crop's intrinsics K (exact perspective, first principles):

* a joint at depth Z projects to u = f·X/Z + cx, so X = (u − cx)·Z/f;
* the relative depth in pixels is z = (Z − Zr)·f/Zr·k, with Zr the wrist's
  depth and k the network's depth scale, so Z = Zr·(1 + z/(k·f));
* hence, up to the global factor Zr/f, the joint is
  P = ((u − cx)·(1 + z'/f), (v − cy)·(1 + z'/f), f + z') with z' = z/k;

``depth_scale`` (1/k) is the one number this adds; it is fitted on the
embedded synthetic hands (``benchmarks/fit_lift.py``), never on real photos.
The lifted shape takes its metric size from the world landmarks (the sum of
its 20 bone lengths), and the full and lite networks are averaged (both see
the same crop, so their lifted shapes share one frame).

Without K the default camera of :mod:`handzoo.inference.defaults` is used.
"""

from __future__ import annotations

import torch
from torch import nn

from handzoo.plugin_api import BONES, DEFAULT_FOV_DEG, HandOutput
from handzoo_blaze.blazehand import INPUT_SIZE
from handzoo_blaze.models import wrist_from_2d

_PARENT = torch.tensor([p for p, _ in BONES])
_CHILD = torch.tensor([c for _, c in BONES])


def lift_screen(screen: torch.Tensor, K: torch.Tensor, depth_scale: torch.Tensor | float) -> torch.Tensor:
    """(B,21,3) screen landmarks (u, v pixels of the input, z relative depth in pixels) + (B,3,3) K
    -> (B,21,3) the perspective 3D shape, root-relative, in units of Zr/f (see the module docstring)."""
    f = K[:, 0, 0, None]
    u, v = screen[..., 0] - K[:, 0, 2, None], screen[..., 1] - K[:, 1, 2, None]
    z = (screen[..., 2] - screen[:, :1, 2]) * depth_scale
    # fx and fy may differ (non-square pixels): each axis uses its own focal length for x and y.
    grow = 1.0 + z / f
    points = torch.stack([u * grow * f / K[:, 0, 0, None], v * grow * f / K[:, 1, 1, None], f + z], dim=-1)
    return points - points[:, :1]


def skeleton_length(joints: torch.Tensor) -> torch.Tensor:
    """(B,) the sum of the 20 bone lengths of (B,21,3) joints."""
    parent, child = _PARENT.to(joints.device), _CHILD.to(joints.device)
    return torch.linalg.vector_norm(joints[:, child] - joints[:, parent], dim=-1).sum(-1)


def default_camera(batch: int, height: int, width: int, like: torch.Tensor) -> torch.Tensor:
    """(B,3,3): the Predictor's default camera across the whole input (handzoo.inference.camera.default_K)."""
    from handzoo.plugin_api import default_K

    K = torch.as_tensor(default_K((0.0, 0.0, float(width), float(height)), DEFAULT_FOV_DEG), dtype=like.dtype)
    return K.to(like.device).expand(batch, 3, 3)


def lift_members(
    screens: list[torch.Tensor],
    worlds: list[torch.Tensor],
    K: torch.Tensor,
    depth_scale: torch.Tensor | float,
) -> torch.Tensor:
    """(B,21,3) joints3d (metres, root-relative) from each member's screen landmarks (B,21,3) and
    world landmarks (B,21,3): the lifted shapes averaged, sized as the averaged world landmarks."""
    shape = torch.stack([lift_screen(s, K, depth_scale) for s in screens]).mean(0)
    world = torch.stack(worlds).mean(0)
    return shape * (skeleton_length(world) / skeleton_length(shape).clamp_min(1e-9))[:, None, None]


class MediaPipeLift(nn.Module):
    """Images (B,3,S,S) in [0, 1] (+ the crop's K) -> HandOutput from the lifted screen landmarks.

    ``members``: MediaPipe landmark models (``mediapipe-hand-full``, ``-lite``)
    whose outputs are averaged. ``joints3d`` is the lifted shape (metres, sized
    as the world landmarks), ``joints2d`` the members' mean screen landmarks,
    ``extras`` the mean hand and left-hand scores, the world landmarks and
    (eval with K) ``root``, the wrist placed to reproject onto joints2d.
    """

    def __init__(self, members: list[nn.Module], depth_scale: float = 1.0) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)
        self.depth_scale = nn.Parameter(torch.tensor(float(depth_scale)))
        self.preprocessing = dict(members[0].preprocessing)
        self.handzoo_metadata = {"members": len(members)}

    def forward(self, images: torch.Tensor, K: torch.Tensor | None = None) -> HandOutput:
        return self._combine([m(images) for m in self.members], images, K)

    def inference_runner(self):
        """The forward on the members' fast CPU paths (None when one has none: the forward serves)."""
        runners = [m.inference_runner() for m in self.members]
        if any(r is None for r in runners):
            return None

        def run(images: torch.Tensor, K: torch.Tensor | None = None) -> HandOutput:
            return self._combine([r(images) for r in runners], images, K)

        return run

    def _combine(self, outs: list[HandOutput], images: torch.Tensor, K: torch.Tensor | None) -> HandOutput:
        """The members' outputs for ``images`` -> the model's (see the class docstring)."""
        b, _, h, w = images.shape
        camera = K if K is not None else default_camera(b, h, w, images)
        px = w / INPUT_SIZE  # the relative depth is in the network's 224-px units, joints2d in the input's
        world = torch.stack([o.joints3d for o in outs]).mean(0)
        joints3d = lift_members(
            [self._screen(o, px) for o in outs], [o.joints3d for o in outs], camera, self.depth_scale
        )
        joints2d = torch.stack([o.joints2d for o in outs]).mean(0)
        extras = {
            "hand_score": torch.stack([o.extras["hand_score"] for o in outs]).mean(0),
            "left_score": torch.stack([o.extras["left_score"] for o in outs]).mean(0),
            "world_joints3d": world,
        }
        if K is not None and not self.training:
            extras.update(wrist_from_2d(joints3d, joints2d, K))
        return HandOutput(joints3d=joints3d, joints2d=joints2d, extras=extras)

    @staticmethod
    def _screen(out: HandOutput, px: float) -> torch.Tensor:
        """(B,21,3): joints2d (pixels of the input) and the relative depth in the same pixels."""
        return torch.cat([out.joints2d, out.extras["relative_depth"][..., None] * px], dim=-1)


def build_lift(image_size: int = INPUT_SIZE, depth_scale: float = 1.0) -> MediaPipeLift:
    """``mediapipe-hand-full`` and ``-lite`` (MediaPipe's heads) averaged through the screen lift."""
    from handzoo.plugin_api import checked_build

    members = [checked_build("model", f"mediapipe-hand-{v}", image_size=image_size) for v in ("full", "lite")]
    return MediaPipeLift(members, depth_scale)
