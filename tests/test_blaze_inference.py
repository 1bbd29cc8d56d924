"""The fast CPU inference path of MediaPipe's landmark network equals the eager module."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("handzoo_blaze")


def _relative_error(reference: torch.Tensor, got: torch.Tensor) -> float:
    return float((reference - got).abs().max() / reference.abs().max())


@pytest.mark.parametrize("variant", ["full", "lite"])
def test_the_folded_frozen_network_equals_the_eager_one_on_a_batch(mediapipe_tflite, variant):
    from handzoo_blaze.blazehand import BlazeHand
    from handzoo_blaze.convert import load_tflite
    from handzoo_blaze.inference import fast_landmarks

    module = load_tflite(BlazeHand(variant), mediapipe_tflite[f"hand_landmark_{variant}"]).eval()
    fast = fast_landmarks(module)
    images = torch.rand(3, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        reference, got = module(images), fast(images)
        for r, g in zip(reference, got, strict=True):
            assert _relative_error(r, g) < 1e-5
        other = torch.rand(1, 3, 192, 192)  # another size takes the module's own path
        assert torch.equal(module(other)[0], fast(other)[0])


def test_the_predictor_uses_the_models_runner_and_gets_the_same_hands(mediapipe_tflite):
    from handzoo_blaze.blazehand import BlazeHand
    from handzoo_blaze.convert import load_tflite
    from handzoo_blaze.inference import landmark_runner

    import handzoo

    model = handzoo.create_model("mediapipe-hand-full").eval()
    blaze = load_tflite(BlazeHand("full"), mediapipe_tflite["hand_landmark_full"])
    model.load_state_dict(blaze.state_dict())
    images = [np.random.default_rng(i).integers(0, 256, (224, 224, 3), dtype=np.uint8) for i in range(2)]
    assert callable(type(model).inference_runner)  # the model offers it; switched off for the reference
    model.inference_runner = None
    eager = handzoo.Predictor(model, device="cpu", num_workers=0).predict(images)

    calls = []

    def offer():
        run = landmark_runner(model)
        return lambda x, K=None: calls.append(len(x)) or run(x, K=K)

    model.inference_runner = offer
    fast = handzoo.Predictor(model, device="cpu", num_workers=0).predict(images)
    assert calls == [2]
    for e, f in zip(eager, fast, strict=True):
        scale = np.abs(e.joints3d).max()
        assert np.abs(e.joints3d - f.joints3d).max() < 1e-5 * scale
        assert np.abs(e.joints2d - f.joints2d).max() < 1e-4 * np.abs(e.joints2d).max()
