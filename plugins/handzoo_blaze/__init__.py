"""First-party plugin: MediaPipe's hand networks as native PyTorch models (no MediaPipe runtime).

Registers
* backbone ``blazehand`` (MediaPipe's landmark trunk; ``variant`` full/lite,
  ``feature_stride`` 8/16/32) for any registered head;
* head ``mediapipe-landmarks`` (MediaPipe's own fully connected outputs);
* models ``mediapipe-hand-full`` and ``mediapipe-hand-lite`` (trunk + those
  heads, 224 px, RGB in [0, 1]) whose pretrained weights are converted from
  the ``.tflite`` files inside the ``mediapipe==0.10.21`` wheel on PyPI
  (Apache-2.0): ``handzoo pull mediapipe-hand-full`` fetches and converts them once;
* detector ``blazepalm`` (MediaPipe's palm detector with its anchors,
  weighted non-maximum suppression and the rotated hand crop).

Modules: :mod:`handzoo_blaze.tflite_graph` reads a ``.tflite`` file,
:mod:`handzoo_blaze.convert` assigns its tensors to a module,
:mod:`handzoo_blaze.blazehand` / :mod:`handzoo_blaze.blazepalm` are the networks.
"""

from __future__ import annotations

from pathlib import Path

from handzoo.plugin_api import hookimpl

CATALOGUE = Path(__file__).with_name("zoo.yaml")
UPSTREAM_LICENCE = "Apache-2.0"
PAPER = "Zhang et al. 2020, MediaPipe Hands: On-device Real-time Hand Tracking"
# Recorded in converted weight files; a change of the layer order or layouts bumps it, so that
# files converted by an earlier version are converted again.
CONVERTER_VERSION = "1"


def _blazehand_backbone(variant: str = "full", feature_stride: int = 32):
    """MediaPipe's hand landmark trunk: images (B,3,H,W) in [0, 1] -> features (B,C,H/s,W/s)."""
    from handzoo_blaze.blazehand import BlazeHandTrunk

    return BlazeHandTrunk(variant, feature_stride)


def _landmark_head(in_features: int):
    """MediaPipe's own outputs: world landmarks as joints3d, screen landmarks as joints2d, scores."""
    from handzoo_blaze.models import MediaPipeLandmarkHead

    return MediaPipeLandmarkHead(in_features)


def _model_factory(variant: str):
    def build(
        head: str = "mediapipe-landmarks",
        image_size: int = 224,
        head_cfg: dict | None = None,
        feature_stride: int | None = None,
    ):
        """MediaPipe's landmark network (or its trunk with another head), RGB in [0, 1]."""
        from handzoo_blaze.models import build_blazehand_model

        return build_blazehand_model(variant, head, image_size, head_cfg, feature_stride)

    return build


def _convert_weights(variant: str):
    def convert(path: str | Path):
        """The model's state dict read from MediaPipe's hand_landmark_{variant}.tflite."""
        from handzoo_blaze.blazehand import BlazeHand
        from handzoo_blaze.convert import convert as convert_tflite

        return convert_tflite(BlazeHand(variant), path, arch=f"mediapipe-hand-{variant}")

    return convert


@hookimpl
def register_backbones(register):
    register(
        "blazehand",
        _blazehand_backbone,
        description="MediaPipe's hand landmark trunk (full/lite)",
        family="blaze",
    )


@hookimpl
def register_heads(register):
    register("mediapipe-landmarks", _landmark_head, outputs=["joints3d", "joints2d"])


@hookimpl
def register_models(register):
    for variant in ("full", "lite"):
        register(
            f"mediapipe-hand-{variant}",
            _model_factory(variant),
            description=f"MediaPipe's hand landmark network ({variant}) in PyTorch, trainable",
            family="blaze",
            paper=PAPER,
            weights_converter=_convert_weights(variant),
            converter_version=CONVERTER_VERSION,
        )
    register(
        "mediapipe-hand-lift",
        _lift,
        description="MediaPipe's full + lite networks, screen landmarks lifted in 3D with the crop's K",
        family="blaze",
        paper=PAPER,
    )


def _lift(image_size: int = 224, depth_scale: float = 1.0):
    """MediaPipe's full and lite networks averaged, screen landmarks lifted to 3D with the crop's K."""
    from handzoo_blaze.lift import build_lift

    return build_lift(image_size, depth_scale)


@hookimpl
def register_detectors(register):
    def blazepalm(variant: str = "full", max_hands: int = 4, min_score: float = 0.5):
        """MediaPipe's palm detector: rotated hand boxes, score, handedness unknown."""
        from handzoo_blaze.detector import BlazePalmDetector

        return BlazePalmDetector(variant=variant, max_hands=max_hands, min_score=min_score)

    def palm_files():
        from handzoo_blaze.sources import PALM_FILES

        return PALM_FILES

    # `handzoo pull blazepalm [--from FILE]` fetches (or takes) these, as for a model's weights; a
    # callable, so that registering imports none of the download machinery.
    register("blazepalm", blazepalm, weight_files=palm_files)


@hookimpl
def register_catalogues(register):
    register(CATALOGUE)
