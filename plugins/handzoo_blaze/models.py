"""``mediapipe-hand-{full,lite}``: the landmark network as a handzoo model (trunk + head), trainable.

The model is a :class:`handzoo.model.HandModel`: the ``blazehand`` trunk as
backbone and MediaPipe's own fully connected outputs as the default head
(:class:`MediaPipeLandmarkHead`), so its state dict equals
:class:`handzoo_blaze.blazehand.BlazeHand`'s and the converted ``.tflite``
weights load into it directly. Any registered head can take the trunk's
place of the default (``head="integral"``, with ``feature_stride`` 8/16/32).
"""

from __future__ import annotations

from typing import Any

import torch

from handzoo.plugin_api import ConfigError, HandModel, HandOutput, gather_index
from handzoo_blaze.blazehand import INPUT_SIZE, LandmarkHeads

DEFAULT_HEAD = "mediapipe-landmarks"
# MediaPipe's landmark order, matched to the canonical one by name (handzoo.joints): the identity.
_TO_CANONICAL = gather_index("mediapipe", "canonical")
_REORDER = list(range(21)) != _TO_CANONICAL


class MediaPipeLandmarkHead(LandmarkHeads):
    """MediaPipe's four outputs as a :class:`HandOutput` of the input crop.

    * ``joints3d`` (B,21,3): the world landmarks (metres, image axes), minus the wrist;
    * ``joints2d`` (B,21,2): the screen landmarks' x, y, rescaled from the
      network's 224-px frame to pixels of the actual input;
    * ``extras``: ``hand_score`` (B,) probability of a hand, ``left_score`` (B,)
      probability that it is a left hand in an ordinary (unmirrored) photo,
      ``relative_depth`` (B,21) the screen landmarks' z (224-px units, wrist-relative),
      and, in eval mode when the input's ``K`` is given, ``root`` (B,3): the
      wrist in the camera frame (metres) that best reprojects joints3d onto
      joints2d, so the Predictor draws the network's own 2D joints.
    """

    def forward(
        self, features: torch.Tensor, K: torch.Tensor | None = None, image_hw: tuple[int, int] | None = None
    ) -> HandOutput:
        landmarks, hand_flag, handedness, world = super().forward(features)
        b = landmarks.shape[0]
        world = world.view(b, 21, 3)
        screen = landmarks.view(b, 21, 3)
        if _REORDER:
            world, screen = world[:, _TO_CANONICAL], screen[:, _TO_CANONICAL]
        # The fully connected layer's pixel units are those of a 224-px input, whatever the size.
        scale = 1.0 if image_hw is None else image_hw[-1] / INPUT_SIZE
        joints3d, joints2d = world - world[:, :1], screen[..., :2] * scale
        extras = {
            "hand_score": hand_flag[:, 0],
            # MediaPipe's "Right" is a left hand in an unmirrored photo.
            "left_score": handedness[:, 0],
            "relative_depth": screen[..., 2] - screen[:, :1, 2],
        }
        if K is not None and not self.training:
            extras.update(wrist_from_2d(joints3d, joints2d, K))
        return HandOutput(joints3d=joints3d, joints2d=joints2d, extras=extras)


def wrist_from_2d(joints3d: torch.Tensor, joints2d: torch.Tensor, K: torch.Tensor) -> dict[str, torch.Tensor]:
    """``{"root": (B,3)}``: the wrist in the camera frame (metres) that best reprojects the root-relative
    ``joints3d`` onto ``joints2d`` through ``K`` (:func:`handzoo.submission.place_root_relative`), so the
    Predictor draws the model's own 2D joints; {} while tracing for an export (inference only)."""
    if torch.jit.is_tracing():
        return {}
    from handzoo.plugin_api import place_root_relative

    placed = place_root_relative(joints3d.detach(), K, uv=joints2d.detach())
    return {"root": placed[:, 0].to(joints3d.dtype)}


class BlazeHandModel(HandModel):
    """A :class:`HandModel` on the ``blazehand`` trunk that offers the Predictor a faster CPU path."""

    def inference_runner(self):
        """``(images, K=None) -> HandOutput`` equal to ``forward`` in eval, the trunk on the fastest backend
        (:func:`handzoo_blaze.inference.landmark_runner`), built from the weights loaded at call time;
        None where it does not apply (input sizes not a multiple of 32), and the forward serves."""
        from handzoo_blaze.blazehand import FEATURE_STRIDES
        from handzoo_blaze.inference import landmark_runner

        if self.preprocessing["input_size"][-1] % max(FEATURE_STRIDES):
            return None  # an odd map at a stride-2 layer: the padding does not fold; forward it is
        try:
            return landmark_runner(self)
        except Exception as exc:  # an exporter's failure must not stop predictions: the forward serves
            import warnings

            warnings.warn(
                f"fast inference path unavailable ({type(exc).__name__}: {exc}); using forward", stacklevel=2
            )
            return None


def build_blazehand_model(
    variant: str,
    head: str = DEFAULT_HEAD,
    image_size: int = INPUT_SIZE,
    head_cfg: dict[str, Any] | None = None,
    feature_stride: int | None = None,
) -> HandModel:
    """The blazehand trunk with MediaPipe's head (default) or any registered head."""
    from handzoo.plugin_api import create_backbone, create_head

    if head == DEFAULT_HEAD and feature_stride not in (None, 32):
        raise ConfigError(
            f"head {DEFAULT_HEAD!r} pools the stride-32 map; drop feature_stride or pick another head"
        )
    trunk = create_backbone("blazehand", variant=variant, feature_stride=feature_stride or 32)
    head_module = create_head(head, trunk.num_features, **(head_cfg or {}))
    return BlazeHandModel(trunk, head_module, image_size=image_size)
