"""Defaults of the 2D approximation, importable without numpy (the CLI shows them in --help).

See :mod:`handzoo.inference.camera` for what they mean.
"""

from handzoo.conventions import DEFAULT_FOV_DEG as DEFAULT_FOV_DEG  # the camera: a contract item
from handzoo.conventions import DEFAULT_ROOT_DEPTH as DEFAULT_ROOT_DEPTH

HANDS = ("left", "right")  # a detection's handedness
HAND_CHOICES = ("auto", *HANDS)  # --hand: auto takes the detector's handedness (right without one)
DEFAULT_DETECTOR = "blazepalm"  # `--detect` given alone: MediaPipe's palm detector in PyTorch (handzoo_blaze)
# `handzoo predict photo.jpg` with no model named (detects too): the best on real photos (README).
DEFAULT_MODEL = "mediapipe-hand-lift"
