"""The MediaPipe plugin: a detector and a model behind handzoo's interfaces (when mediapipe is installed).

Install it in a virtual environment of its own (`pip install -e '.[dev,mediapipe]'`);
the base install and CI skip these tests. Without MediaPipe, building either part
is a one-line error naming the extra (tested in every install).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import handzoo
from handzoo.errors import UsageError

try:
    import mediapipe  # noqa: F401

    HAVE_MEDIAPIPE = True
except ImportError:
    HAVE_MEDIAPIPE = False

needs_mediapipe = pytest.mark.skipif(not HAVE_MEDIAPIPE, reason="mediapipe is not installed (an extra)")


def test_both_parts_are_registered_whether_or_not_mediapipe_is_installed():
    assert "mediapipe" in handzoo.list_detectors() and "mediapipe-hands" in handzoo.list_models()
    entry = handzoo.get_registry().get("model", "mediapipe-hands")
    assert entry.metadata["builtin_weights"] is True and entry.metadata["extra"] == "mediapipe"


@pytest.mark.skipif(HAVE_MEDIAPIPE, reason="mediapipe is installed")
def test_without_mediapipe_building_a_part_names_the_extra():
    for kind, name in (("detector", "mediapipe"), ("model", "mediapipe-hands")):
        with pytest.raises(UsageError, match=r"pip install 'handzoo\[mediapipe\]'"):
            handzoo.get_registry().create(kind, name)


def test_handedness_labels_are_swapped_back_for_ordinary_photos():
    from handzoo_mediapipe.hands import _hand

    assert (_hand("Left", selfie=False), _hand("Right", selfie=False)) == ("right", "left")
    assert (_hand("Left", selfie=True), _hand("Right", selfie=True)) == ("left", "right")


@needs_mediapipe
def test_no_hand_in_a_blank_image_is_reported_not_dropped():
    detector = handzoo.get_registry().create("detector", "mediapipe")
    assert detector.detect(np.full((240, 320, 3), 128, np.uint8)) == []
    model = handzoo.create_model("mediapipe-hands", image_size=128)
    out = model(torch.zeros(2, 3, 128, 128))
    assert out.joints3d.shape == (2, 21, 3) and float(out.joints3d.abs().max()) == 0.0
    assert out.extras["detected"].tolist() == [False, False]
