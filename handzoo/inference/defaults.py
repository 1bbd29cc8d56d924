"""Defaults of the 2D approximation, importable without numpy (the CLI shows them in --help).

See :mod:`handzoo.inference.camera` for what they mean.
"""

DEFAULT_FOV_DEG = 20.0  # horizontal field of view across the crop, degrees (FreiHAND: about 16-31)
DEFAULT_ROOT_DEPTH = 0.5  # metres from the camera plane to the wrist
HANDS = ("left", "right")  # a detection's handedness
HAND_CHOICES = ("auto", *HANDS)  # --hand: auto takes the detector's handedness (right without one)
DEFAULT_DETECTOR = "blazepalm"  # `--detect` given alone: MediaPipe's palm detector in PyTorch (handzoo_blaze)
# `handzoo predict photo.jpg` with no model named (detects too): the best on real photos (README).
DEFAULT_MODEL = "mediapipe-hand-lift"
