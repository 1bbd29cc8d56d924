"""First-party plugin: MediaPipe Hands as a detector (``mediapipe``) and as a model (``mediapipe-hands``).

MediaPipe is an optional extra (``pip install 'handzoo[mediapipe]'``,
``mediapipe==0.10.21``; it pins numpy<2 and protobuf<5, so a virtual
environment of its own is best). Both are registered whether or not it is
installed, so ``handzoo list`` shows them; building one without MediaPipe is
a one-line error naming the extra. MediaPipe runs offline: its wheel carries
the palm detector and the 21-landmark model.
"""

from __future__ import annotations

from handzoo.plugin_api import hookimpl

EXTRA_HINT = "pip install 'handzoo[mediapipe]' (mediapipe==0.10.21, best in a virtual environment of its own)"


def mediapipe_detector(
    max_hands: int = 4, min_confidence: float = 0.5, model_complexity: int = 1, selfie: bool = False
):
    """MediaPipe's palm detector and landmarks: a box around each hand's 21 landmarks, score, handedness."""
    from handzoo_mediapipe.hands import MediaPipeDetector

    return MediaPipeDetector(max_hands, min_confidence, model_complexity, selfie)


def mediapipe_hands(image_size: int = 224, min_confidence: float = 0.3, model_complexity: int = 1):
    """MediaPipe Hands' world landmarks (metres) as a model: crops in, HandOutput out (inference only)."""
    from handzoo_mediapipe.hands import MediaPipeHandsModel

    return MediaPipeHandsModel(image_size, min_confidence, model_complexity)


@hookimpl
def register_detectors(register):
    register("mediapipe", mediapipe_detector, extra="mediapipe")


@hookimpl
def register_models(register):
    paper = "Zhang et al. 2020, MediaPipe Hands: On-device Real-time Hand Tracking"
    # Its weights come with the mediapipe wheel: `handzoo leaderboard --models mediapipe-hands` ranks it.
    register("mediapipe-hands", mediapipe_hands, extra="mediapipe", paper=paper, builtin_weights=True)
