"""Hands found for the user, and left hands: the detector kind, ``predict --detect``, mirror equivariance.

The detector is a third-party plugin installed as a real distribution (an
entry point in a site folder): it "finds" one hand in each half of an image,
the left half's a left hand. Left-hand handling is tested by equivariance on
every model family: the prediction for the mirrored image with ``hand="left"``
is the mirrored prediction for the original.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

import handzoo
from handzoo.cli import main
from handzoo.errors import UsageError
from handzoo.inference.detection import Detection, check_detections, hand_box
from handzoo.inference.predictor import Predictor
from tests.conftest import predict_args, write_distribution

HALVES_DETECTOR = '''
import handzoo
from handzoo.inference.detection import Detection


class Halves:
    """One hand in each half of the image: the left half's is a left hand (score 0.6), the right's 0.9."""

    name = "halves"

    def detect(self, image):
        h, w = image.shape[:2]
        return [
            Detection((0.1 * w, 0.2 * h, 0.45 * w, 0.7 * h), 0.6, "left"),
            Detection((0.55 * w, 0.2 * h, 0.9 * w, 0.7 * h), 0.9, "right"),
        ]


@handzoo.hookimpl
def register_detectors(register):
    register("halves", Halves, description="two hands, one per image half (a test detector)")
'''


@pytest.fixture
def detector_plugin(plugin_site):
    write_distribution(
        plugin_site,
        "handzoo-halves",
        "1.0",
        {"halves": "handzoo_halves"},
        {"handzoo_halves": HALVES_DETECTOR},
    )
    return plugin_site


def _photo(path, w=96, h=64, seed=0):
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (h // 8, w // 8, 3), dtype=np.uint8)
    Image.fromarray(small).resize((w, h), Image.Resampling.BICUBIC).save(path)
    return path


def test_the_detector_kind_is_listed_and_its_output_checked(detector_plugin, capsys):
    assert "halves" in handzoo.list_detectors()
    assert main_code(["list", "detectors"]) == 0 and "halves" in capsys.readouterr().out
    found = check_detections([Detection((0, 0, 1, 1), 0.2), {"box": (1, 1, 3, 2), "score": 0.7}], "x")
    assert [d.score for d in found] == [0.7, 0.2]  # best first
    with pytest.raises(UsageError, match="detector 'x': detection 0 has box"):
        check_detections([Detection((3, 0, 1, 1))], "x")
    with pytest.raises(UsageError, match="handedness 'up'"):
        check_detections([Detection((0, 0, 1, 1), 1.0, "up")], "x")
    assert hand_box((10, 20, 30, 30), margin=1.5) == (5.0, 10.0, 35.0, 40.0)  # square 20 px, grown to 30


def main_code(args):
    with pytest.raises(SystemExit) as stop:
        main(args)
    return stop.value.code


def test_predict_detect_writes_every_hand_best_first(detector_plugin, tmp_path, capsys):
    from tests.conftest import export_random_weights

    (tmp_path / "w").mkdir()
    weights = export_random_weights(tmp_path / "w", "resnet18", 32)
    photos = tmp_path / "photos"
    photos.mkdir()
    _photo(photos / "a.jpg")
    out = tmp_path / "out"
    args = predict_args(photos, weights, out, "--detect", "halves")
    assert main_code(args) == 0, capsys.readouterr().err
    data = json.loads((out / "a.json").read_text())
    assert data["detector"] == "halves" and data["num_hands"] == 2 and (out / "a_skeleton.png").is_file()
    right, left = data["hands"]  # best first: the right half's hand scored 0.9
    assert (right["hand"], right["score"], left["hand"], left["score"]) == ("right", 0.9, "left", 0.6)
    assert right["box"] == pytest.approx(list(hand_box((0.55 * 96, 0.2 * 64, 0.9 * 96, 0.7 * 64))))
    # Each hand is the model's prediction for its own crop, the left one mirrored and back.
    with Predictor("resnet18", weights=weights, device="cpu") as alone:
        image = Image.open(photos / "a.jpg")
        boxes = [tuple(h["box"]) for h in data["hands"]]
        direct = alone.predict([image, image], boxes=boxes)
    np.testing.assert_allclose(np.array(right["joints3d_mm"]) / 1000, direct[0].joints3d, atol=1e-6)
    # --max-hands keeps the best; --hand right overrides the detector's handedness
    assert main_code([*args, "--max-hands", "1", "--hand", "right", "--out", str(tmp_path / "o1")]) == 0
    one = json.loads((tmp_path / "o1" / "a.json").read_text())
    assert one["num_hands"] == 1 and one["hands"][0]["score"] == 0.9
    assert main_code([*args, "--box", "1,2,3,4"]) == 2 and "without --box" in capsys.readouterr().err
    assert main_code([*args[:-2], "--max-hands", "2"]) == 2
    assert main_code([*args[:-1], "nosuch"]) == 2 and "unknown detector 'nosuch'" in capsys.readouterr().err


@pytest.mark.parametrize("model", ["resnet18", "resnet50-mano", "resnet50-2.5d", "resnet50-integral"])
def test_a_left_hand_is_mirrored_for_the_model_and_back(model, tmp_path):
    """Equivariance: predict(mirror(I), left) == mirror(predict(I, right)), on every model family."""
    torch.manual_seed(0)
    net = handzoo.create_model(model, image_size=32).eval()
    photo = np.asarray(Image.open(_photo(tmp_path / "p.png", 80, 60, seed=3)))
    mirrored = np.ascontiguousarray(photo[:, ::-1])
    right = Predictor(net, device="cpu", hand="right")
    left = Predictor(net, device="cpu", hand="left")
    [a] = right.predict(photo)
    [b] = left.predict(mirrored)
    flip = np.diag([-1.0, 1.0, 1.0])
    np.testing.assert_allclose(b.joints3d, a.joints3d @ flip, atol=1e-5)
    np.testing.assert_allclose(b.joints2d[:, 0], 80 - a.joints2d[:, 0], atol=1e-3)
    np.testing.assert_allclose(b.joints2d[:, 1], a.joints2d[:, 1], atol=1e-3)
    assert (a.hand, b.hand) == ("right", "left")
    # Without the mirror the random network is not equivariant: the test above has teeth.
    [c] = right.predict(mirrored)
    assert np.abs(c.joints3d - a.joints3d @ flip).max() > 1e-4  # 10x the tolerance above


def test_the_mediapipe_detector_is_named_when_mediapipe_is_missing(tmp_path, capsys):
    pytest.importorskip("handzoo_mediapipe")
    try:
        import mediapipe  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("mediapipe is installed: the detector works")
    from tests.conftest import export_random_weights

    (tmp_path / "w").mkdir()
    weights = export_random_weights(tmp_path / "w", "resnet18", 32)
    _photo(tmp_path / "a.jpg")
    code = main_code(
        [
            "predict",
            "resnet18",
            str(tmp_path / "a.jpg"),
            "--weights",
            str(weights),
            "--detect",
            "mediapipe",
            "--out",
            str(tmp_path / "o"),
            "--device",
            "cpu",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "pip install 'handzoo[mediapipe]'" in err and err.count("\n") == 1
