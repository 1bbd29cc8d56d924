"""MediaPipe's hand landmark network in PyTorch (``handzoo_blaze``) against the TFLite runtime.

The reference is ``ai_edge_litert`` running the very ``.tflite`` files the
converter reads (fetched once per test run from the ``mediapipe==0.10.21``
wheel, see the ``mediapipe_tflite`` fixture); every output must agree within
1e-5 of its own scale (max |difference| / max |value|), on random inputs and
on rendered hands.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from handzoo_blaze.blazehand import BlazeHand
from handzoo_blaze.convert import convert, load_tflite
from handzoo_blaze.layers import same_padding

import handzoo
from handzoo.errors import DataError, UsageError
from handzoo.joints import CANONICAL, MEDIAPIPE_LANDMARKS, MEDIAPIPE_TO_CANONICAL, gather_index
from tests.tflite_runtime import open_runtime, run_runtime

VARIANTS = ("full", "lite")
# The TFLite file's outputs by name, in BlazeHand.forward's order.
OUTPUTS = ("Identity", "Identity_1", "Identity_2", "Identity_3")
TOLERANCE = 1e-5


def _hand_images(n: int, size: int = 224) -> np.ndarray:
    """(n,size,size,3) float32 in [0,1]: rendered synthetic right hands (the generator's default)."""
    from handzoo.data.synthetic.generator import sample_hand

    rng = np.random.default_rng(7)
    return np.stack([sample_hand(rng, size)["image"] for _ in range(n)]).astype(np.float32) / 255.0


@pytest.fixture(scope="module", params=VARIANTS)
def landmark_pair(request, mediapipe_tflite):
    path = mediapipe_tflite[f"hand_landmark_{request.param}"]
    return request.param, path, load_tflite(BlazeHand(request.param), path).eval(), open_runtime(path)


@pytest.mark.parametrize("inputs", ["random", "hands"])
def test_blazehand_equals_the_tflite_runtime(landmark_pair, inputs):
    variant, _path, module, runtime = landmark_pair
    if inputs == "random":
        nhwc = np.random.default_rng(0).random((2, 224, 224, 3), dtype=np.float32)
    else:
        nhwc = _hand_images(2)
    expected = run_runtime(runtime, nhwc)
    with torch.no_grad():
        found = module(torch.from_numpy(nhwc).permute(0, 3, 1, 2))
    for name, value in zip(OUTPUTS, found, strict=True):
        ref = expected[name]
        assert value.shape == ref.shape, name
        scale = max(float(np.abs(ref).max()), 1e-6)
        err = float(np.abs(value.numpy() - ref).max()) / scale
        assert err < TOLERANCE, f"{variant} {inputs} {name}: {err:.2e} of its scale"


def test_the_model_gives_mediapipe_outputs_in_handzoo_terms(landmark_pair):
    """joints3d = world landmarks minus the wrist, joints2d = screen x, y (pixels of the input)."""
    variant, path, _module, runtime = landmark_pair
    model = handzoo.create_model(f"mediapipe-hand-{variant}").eval()
    model.load_state_dict(convert(BlazeHand(variant), path))
    nhwc = _hand_images(1)
    ref = run_runtime(runtime, nhwc)
    with torch.no_grad():
        out = model(torch.from_numpy(nhwc).permute(0, 3, 1, 2))
    world = ref["Identity_3"].reshape(1, 21, 3)
    screen = ref["Identity"].reshape(1, 21, 3)
    np.testing.assert_allclose(out.joints3d.numpy(), world - world[:, :1], atol=2e-6)
    np.testing.assert_allclose(out.joints2d.numpy(), screen[..., :2], atol=3e-3)  # 224-px scale
    np.testing.assert_allclose(out.extras["hand_score"].numpy(), ref["Identity_1"][:, 0], atol=1e-5)
    np.testing.assert_allclose(out.extras["left_score"].numpy(), ref["Identity_2"][:, 0], atol=1e-5)
    assert model.preprocessing == {
        "mean": (0.0, 0.0, 0.0),
        "std": (1.0, 1.0, 1.0),
        "input_size": (3, 224, 224),
    }


def test_mediapipe_landmarks_map_onto_the_canonical_joints_by_name():
    # MediaPipe's HandLandmark enumeration, written out as its documentation lists it.
    assert MEDIAPIPE_LANDMARKS[:5] == ("WRIST", "THUMB_CMC", "THUMB_MCP", "THUMB_IP", "THUMB_TIP")
    assert MEDIAPIPE_LANDMARKS[5:9] == (
        "INDEX_FINGER_MCP",
        "INDEX_FINGER_PIP",
        "INDEX_FINGER_DIP",
        "INDEX_FINGER_TIP",
    )
    assert MEDIAPIPE_LANDMARKS[17:] == ("PINKY_MCP", "PINKY_PIP", "PINKY_DIP", "PINKY_TIP")
    assert len(set(MEDIAPIPE_LANDMARKS)) == 21
    # The anatomy: thumb CMC/MCP/IP are its first three joints; the pinky is the little finger.
    assert MEDIAPIPE_TO_CANONICAL["THUMB_CMC"] == "thumb_mcp"
    assert MEDIAPIPE_TO_CANONICAL["THUMB_IP"] == "thumb_dip"
    assert MEDIAPIPE_TO_CANONICAL["MIDDLE_FINGER_PIP"] == "middle_pip"
    assert MEDIAPIPE_TO_CANONICAL["PINKY_TIP"] == "little_tip"
    assert sorted(MEDIAPIPE_TO_CANONICAL.values()) == sorted(CANONICAL)
    assert gather_index("mediapipe", "canonical") == list(range(21))


@pytest.mark.parametrize(
    ("size", "kernel", "stride", "expected"),
    # TF "SAME": out = ceil(size / stride), total = (out - 1) * stride + kernel - size, the odd pixel after.
    [
        (224, 3, 2, (0, 1)),
        (224, 5, 2, (1, 2)),
        (225, 3, 2, (1, 1)),
        (7, 3, 1, (1, 1)),
        (14, 5, 1, (2, 2)),
        (28, 1, 1, (0, 0)),
    ],
)
def test_same_padding_is_tensorflows(size, kernel, stride, expected):
    assert same_padding(size, kernel, stride) == expected


def test_the_converter_refuses_another_network_in_one_line(mediapipe_tflite):
    with pytest.raises(DataError) as info:
        convert(BlazeHand("full"), mediapipe_tflite["palm_detection_full"], arch="mediapipe-hand-full")
    message = str(info.value)
    assert "\n" not in message
    assert "palm_detection_full.tflite: operator" in message
    assert "PRELU" in message or "input" in message


def test_the_converter_refuses_the_other_variant_naming_the_operator(mediapipe_tflite):
    with pytest.raises(DataError) as info:
        convert(BlazeHand("full"), mediapipe_tflite["hand_landmark_lite"], arch="mediapipe-hand-full")
    message = str(info.value)
    assert "\n" not in message
    assert "hand_landmark_lite.tflite: operator" in message and "expects" in message


def test_the_converter_refuses_a_file_that_is_not_tflite(tmp_path):
    fake = tmp_path / "weights.tflite"
    fake.write_bytes(struct.pack("<I", 12) + b"NOPE" + bytes(64))
    with pytest.raises(DataError, match=r"weights\.tflite: not a TFLite model"):
        convert(BlazeHand("lite"), fake)


def test_a_truncated_trunk_feeds_any_head():
    for head, stride, channels in (("integral", 8, 40), ("heatmap25d", 16, 112), ("direct", 32, 1152)):
        model = handzoo.create_model("mediapipe-hand-full", head=head, feature_stride=stride, image_size=64)
        assert model.backbone.num_features == channels
        out = model(torch.rand(1, 3, 64, 64))
        assert out.joints3d.shape == (1, 21, 3)
    with pytest.raises(UsageError, match="stride-32"):
        handzoo.create_model("mediapipe-hand-full", feature_stride=8)


# --- a newcomer with a photo ------------------------------------------------------------------------------


def _photo_with_a_hand(path: Path, seed: int = 3) -> np.ndarray:
    """A rendered right hand pasted into a wider photo; returns its true joints2d in that photo."""
    from PIL import Image

    from handzoo.data.synthetic.generator import sample_hand

    sample = sample_hand(np.random.default_rng(seed), 200)
    photo = np.full((280, 420, 3), 120, np.uint8)
    photo[40:240, 180:380] = sample["image"]
    Image.fromarray(photo).save(path, quality=95)
    return sample["joints2d"] + np.array([180.0, 40.0])


def test_predict_a_photo_with_nothing_but_its_path(tmp_path, mediapipe_home, mediapipe_tflite, monkeypatch):
    """`handzoo predict photo.jpg`: blazepalm finds the hand, the default model predicts it, upright."""
    import json

    from handzoo.cli import main

    monkeypatch.setenv("HANDZOO_HOME", str(mediapipe_home))  # the fixture's verified files, no download
    truth = _photo_with_a_hand(tmp_path / "photo.jpg")
    with pytest.raises(SystemExit) as stop:
        main(["predict", str(tmp_path / "photo.jpg"), "--out", str(tmp_path / "out"), "--device", "cpu"])
    assert stop.value.code == 0
    data = json.loads((tmp_path / "out" / "photo.json").read_text())
    assert data["model"] == "mediapipe-hand-lift"
    assert len(data["hands"]) >= 1
    hand = data["hands"][0]
    assert hand["hand"] == "right" and "angle" in hand
    # The 2D joints, back in the photo's frame, lie on the rendered hand (it spans about 150 px).
    error = np.linalg.norm(np.asarray(hand["joints2d"]) - truth, axis=1)
    assert np.median(error) < 12.0, f"median 2D error {np.median(error):.1f} px"
    assert (tmp_path / "out" / "photo_skeleton.png").is_file()


def test_which_weights_predict_uses_when_none_are_named():
    from handzoo.commands.inference_commands import weights_source

    assert weights_source("mediapipe-hand-full", None, False) == (None, True)  # the zoo lists them
    assert weights_source("mediapipe-hand-full", "w.safetensors", False) == ("w.safetensors", False)
    assert weights_source("mediapipe-hands", None, True) == (None, False)  # its weights come with it
    with pytest.raises(UsageError, match=r"resnet18 has no published weights yet.*handzoo run resnet18"):
        weights_source("resnet18", None, False)
    with pytest.raises(UsageError, match="did you mean"):
        weights_source("mediapipe-hand-ful", None, False)


# --- fine-tuning --------------------------------------------------------------------------------------------


@pytest.fixture
def pulled(mediapipe_home, mediapipe_tflite, monkeypatch) -> Path:
    """HANDZOO_HOME with the verified MediaPipe files; returns the converted mediapipe-hand-full weights."""
    from handzoo.pull import pull

    monkeypatch.setenv("HANDZOO_HOME", str(mediapipe_home))
    return pull("mediapipe-hand-full")[1]


def test_the_cpu_plan_keeps_the_networks_own_input_size_and_a_fine_tuning_rate(monkeypatch):
    from handzoo.runner.plan import resolve_config

    tune = {"run.device": "cpu", "model.init": "mediapipe-hand-full"}  # what --init sets
    cfg, summary = resolve_config("mediapipe-hand-full", tune, [])
    assert cfg.data.image_size == 224 and cfg.optim.lr == pytest.approx(1e-4) and cfg.data.augment == []
    assert cfg.optim.schedule == "cosine" and cfg.optim.freeze == ["backbone.stem", "backbone.stage1"]
    assert cfg.model.init_blend == 0.75  # the exported weights: 75 % fine-tuned, 25 % MediaPipe's own
    # From random weights the recipe's freeze and blend are left out, and the summary says so.
    scratch, said = resolve_config("mediapipe-hand-full", {"run.device": "cpu"}, [])
    assert scratch.model.init_blend is None and scratch.optim.freeze == []
    assert scratch.optim.lr == cfg.optim.lr  # the rest of the plan stays
    assert "left out, as this run starts from random weights: model.init_blend, optim.freeze" in said
    pretrained, _ = resolve_config("mediapipe-hand-full", {"run.device": "cpu"}, ["model.pretrained=true"])
    assert pretrained.model.init_blend == 0.75
    assert cfg.run.time_budget_min == 12.0 and "this model's recipe" in summary
    other, _ = resolve_config("resnet18", {"run.device": "cpu"}, [])
    assert other.data.image_size == 64  # other models keep the generic plan


def test_a_new_head_trains_on_the_pretrained_trunk(pulled):
    from handzoo.builder import init_from
    from handzoo.weights import read_tensors

    model = handzoo.create_model("mediapipe-hand-full", head="integral", feature_stride=16)
    label, left = init_from(model, "mediapipe-hand-full", head_swap=True)
    assert label == "mediapipe-hand-full:mediapipe-0.10.21"
    source = read_tensors(pulled)
    own = model.state_dict()
    trunk = [k for k in own if k.startswith("backbone.")]
    assert trunk and all(torch.equal(own[k], source[k]) for k in trunk)
    assert any(k.startswith("backbone.stage4.") for k in left)  # the unused end of the trunk is left out
    assert any(k.startswith("head.") for k in left)


def test_handzoo_run_fine_tunes_mediapipe(tmp_path, pulled, capsys):
    from handzoo.cli import main
    from handzoo.data.synthetic.generator import generate_freihand
    from handzoo.weights import read_tensors

    generate_freihand(tmp_path / "synth", num=12, num_eval=2, seed=0, progress=False)
    args = ["run", "mediapipe-hand-full", "--init", "mediapipe-hand-full", "--data", "freihand"]
    args += ["--data-root", str(tmp_path / "synth"), "--max-steps", "2", "--batch-size", "2"]
    args += ["--image-size", "96", "--workers", "0", "--device", "cpu", "--out", str(tmp_path / "run")]
    args += ["--set", "optim.freeze=[backbone.stem,backbone.stage1]"]
    with pytest.raises(SystemExit) as stop:
        main(args)
    assert stop.value.code == 0, capsys.readouterr().err[-2000:]
    assert "initialised from mediapipe-hand-full:mediapipe-0.10.21" in capsys.readouterr().out
    start, end = read_tensors(pulled), read_tensors(tmp_path / "run" / "model.safetensors")
    frozen = [k for k in start if k.startswith(("backbone.stem.", "backbone.stage1."))]
    assert frozen and all(torch.equal(start[k], end[k]) for k in frozen)
    moved = max(float((end[k] - start[k]).abs().max()) for k in start)
    assert 0.0 < moved < 0.01  # two Adam steps at 3e-5 move the other weights, a little


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_the_exported_model_equals_the_tflite_runtime(tmp_path, pulled, mediapipe_tflite, fmt):
    """``handzoo export`` of mediapipe-hand-full, run by onnxruntime / torch.jit, against TFLite."""
    from handzoo.export_formats import export_model, run_exported

    if fmt == "onnx":
        pytest.importorskip("onnxruntime")
    model = handzoo.create_model("mediapipe-hand-full", pretrained=True)
    path = tmp_path / ("model.onnx" if fmt == "onnx" else "model.pt")
    export_model(model, path, fmt)  # verify=True: the file equals PyTorch on batches of 1 and 3
    nhwc = _hand_images(2)
    joints3d = run_exported(path, np.ascontiguousarray(nhwc.transpose(0, 3, 1, 2)))[0]
    world = run_runtime(open_runtime(mediapipe_tflite["hand_landmark_full"]), nhwc)["Identity_3"].reshape(
        2, 21, 3
    )
    np.testing.assert_allclose(joints3d, world - world[:, :1], atol=1e-5)


def test_a_damaged_tflite_file_is_one_line(tmp_path, mediapipe_tflite):
    good = mediapipe_tflite["hand_landmark_lite"].read_bytes()
    damaged = tmp_path / "damaged.tflite"
    damaged.write_bytes(good[:4096])  # the identifier survives, the tables do not
    with pytest.raises(DataError) as info:
        convert(BlazeHand("lite"), damaged)
    assert str(info.value).startswith(f"{damaged}: ") and "\n" not in str(info.value)


def test_sizes_that_do_not_fold_predict_through_the_forward():
    model = handzoo.create_model("mediapipe-hand-full", image_size=200)
    assert model.inference_runner() is None  # a 25-px map at a stride-2 layer: the forward serves
    predictor = handzoo.Predictor(model, device="cpu", num_workers=0)
    out = predictor.predict([np.zeros((200, 200, 3), np.uint8)])
    assert out[0].joints3d.shape == (21, 3)


def test_pull_fetches_the_detectors_files_or_takes_them_from_a_file(
    tmp_path, mediapipe_home, mediapipe_tflite, monkeypatch, capsys
):
    from handzoo.cli import main

    monkeypatch.setenv("HANDZOO_HOME", str(mediapipe_home))  # cached: no download
    with pytest.raises(SystemExit) as stop:
        main(["pull", "blazepalm", "--quiet"])
    assert stop.value.code == 0
    assert sorted(Path(p).name for p in capsys.readouterr().out.split()) == [
        "palm_detection_full.tflite",
        "palm_detection_lite.tflite",
    ]
    monkeypatch.setenv("HANDZOO_HOME", str(tmp_path / "offline"))  # a fresh home, the file handed over
    with pytest.raises(SystemExit) as stop:
        main(["pull", "blazepalm", "--from", str(mediapipe_tflite["palm_detection_lite"]), "--quiet"])
    assert stop.value.code == 0
    assert (
        Path(capsys.readouterr().out.strip()).read_bytes()
        == mediapipe_tflite["palm_detection_lite"].read_bytes()
    )


def test_a_mistyped_photo_is_named_not_taken_for_a_model(tmp_path):
    from handzoo.commands.inference_commands import split_model_and_inputs

    with pytest.raises(UsageError, match=r"^phto\.jpg does not exist"):
        split_model_and_inputs("phto.jpg", None)
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(b"")
    assert split_model_and_inputs(str(photo), None) == ("mediapipe-hand-lift", [str(photo)], False)
    assert split_model_and_inputs("resnet18", ["a.jpg"]) == ("resnet18", ["a.jpg"], True)
    with pytest.raises(UsageError, match="name the images"):
        split_model_and_inputs("resnet18", None)


def test_freezing_a_name_the_model_lacks_is_one_line(tmp_path, capsys):
    from handzoo.cli import main
    from handzoo.data.synthetic.generator import generate_freihand

    generate_freihand(tmp_path / "synth", num=6, num_eval=0, seed=0, progress=False)
    args = [
        "run",
        "resnet18",
        "--data",
        "freihand",
        "--data-root",
        str(tmp_path / "synth"),
        "--max-steps",
        "1",
    ]
    args += ["--batch-size", "2", "--image-size", "32", "--workers", "0", "--device", "cpu"]
    args += ["--out", str(tmp_path / "run"), "--set", "optim.freeze=[backbone.stemm]"]
    with pytest.raises(SystemExit) as stop:
        main(args)
    err = capsys.readouterr().err
    assert stop.value.code == 2 and "optim.freeze: no parameter of the model is named 'backbone.stemm'" in err
