"""One loading path: create_model with weights, the build record check, and ``run --init``.

Weights travel over a real HTTP server on 127.0.0.1; the reference for "the
weights arrived" is the published file's own tensors.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import handzoo
from handzoo.errors import UsageError
from tests.conftest import export_random_weights
from tests.http_server import serve_folder
from tests.mano_fixture import write_mano_files
from tests.test_publish import DATASET, IMAGE, cli, toy_dataset, trained_run


@pytest.fixture(autouse=True)
def _dataset():
    with toy_dataset():
        yield


def _mano_weights(tmp_path: Path, monkeypatch, hand_model_dir: Path | None) -> Path:
    """resnet18 + MANO head exported as `handzoo run` does, built with or without the MANO files."""
    if hand_model_dir is None:
        monkeypatch.delenv("HANDZOO_MANO_DIR", raising=False)
    else:
        monkeypatch.setenv("HANDZOO_MANO_DIR", str(hand_model_dir))
    from handzoo.interfaces import part_metadata
    from handzoo.weights import export_weights, weights_metadata

    model = handzoo.create_model("resnet18", head="mano", head_cfg={"hidden": 16}, image_size=32)
    cfg = {"model": {"name": "resnet18", "options": {"head": "mano", "head_cfg": {"hidden": 16}}},
           "data": {"image_size": 32}}
    meta = weights_metadata("resnet18", cfg, model.preprocessing, {}, part_metadata(model))
    folder = tmp_path / ("mano" if hand_model_dir else "kinematic")
    folder.mkdir()
    return export_weights(model, folder / "model.safetensors", meta)


def test_weights_of_one_hand_layer_never_load_into_another(tmp_path, monkeypatch):
    """The kinematic hand and the MANO layer have the same parameters: only the header tells them apart."""
    mano_dir = write_mano_files(tmp_path / "mano_files")
    kinematic = _mano_weights(tmp_path, monkeypatch, None)
    real = _mano_weights(tmp_path, monkeypatch, mano_dir)

    monkeypatch.setenv("HANDZOO_MANO_DIR", str(mano_dir))  # auto now builds the real MANO layer
    with pytest.raises(UsageError) as info:
        handzoo.create_model(weights=kinematic)
    message = str(info.value)
    assert "trained with hand_model='kinematic'" in message and "built with hand_model='mano'" in message
    assert "\n" not in message
    assert handzoo.create_model(weights=real).handzoo_metadata["hand_model"] == "mano"
    # asking for the layer it was trained with loads it
    fixed = handzoo.create_model(weights=kinematic, head_cfg={"hidden": 16, "hand_model": "kinematic"})
    assert fixed.handzoo_metadata["hand_model"] == "kinematic"

    monkeypatch.delenv("HANDZOO_MANO_DIR")
    with pytest.raises(UsageError, match="trained with hand_model='mano'.*built with hand_model='kinematic'"):
        handzoo.create_model(weights=real)
    assert handzoo.create_model(weights=kinematic).handzoo_metadata["hand_model"] == "kinematic"


def test_create_model_loads_paths_file_urls_and_refuses_other_models(tmp_path):
    path = export_random_weights(tmp_path, "resnet18", image_size=32)
    expected = load_file(str(path))
    for source in (path, str(path), path.as_uri()):
        model = handzoo.create_model(weights=source)
        assert model.handzoo_name == "resnet18" and model.preprocessing["input_size"] == (3, 32, 32)
        got = model.state_dict()
        assert all(torch.equal(got[k], v) for k, v in expected.items())
    with pytest.raises(UsageError, match="holds weights of 'resnet18', not 'resnet34'"):
        handzoo.create_model("resnet34", weights=path)
    with pytest.raises(UsageError, match="does not fit this model: .*shape"):
        handzoo.create_model("resnet18", weights=path, head_cfg={"num_joints": 20})


def _published(tmp_path_factory, served: Path, zoo: Path, server_url: str) -> Path:
    run = trained_run(tmp_path_factory, steps=3, lr=1e-3)
    args = ["publish", str(run), "--zoo", str(zoo), "--dest", str(served), "--url-base", server_url]
    code, _, err = cli(*args)
    assert code == 0, err
    return run


def _run_args(out: Path, *extra: str) -> list[str]:
    args = ["run", "resnet18", "--data", DATASET, "--image-size", str(IMAGE), "--batch-size", "4"]
    args += ["--workers", "0", "--device", "cpu", "--max-steps", "1", "--lr", "1e-12"]
    args += ["--set", "data.augment=[]", "--set", "run.amp=false", "--out", str(out), *extra]
    return args


def test_run_init_fine_tunes_from_published_weights_over_http(tmp_path, tmp_path_factory, monkeypatch):
    root = Path(__file__).resolve().parents[1]
    zoo = tmp_path / "zoo.yaml"
    zoo.write_text((root / "zoo.yaml").read_text())
    served = tmp_path / "served"
    with serve_folder(served) as server:
        run = _published(tmp_path_factory, served, zoo, server.url)
        monkeypatch.setenv("HANDZOO_ZOO", str(zoo))
        code, out, err = cli(*_run_args(tmp_path / "tuned", "--init", f"resnet18:{DATASET}"))
        assert code == 0, err
        assert f"initialised from resnet18:{DATASET}" in out
        assert [r[2] for r in server.requests] == [200]  # downloaded once, verified

        published = load_file(str(run / "model.safetensors"))
        tuned = load_file(str(tmp_path / "tuned" / "model.safetensors"))
        # One Adam step at lr 1e-12 moves a weight by at most ~1e-12; BN statistics do move.
        for key, value in published.items():
            if "running_" not in key and "num_batches" not in key:
                torch.testing.assert_close(tuned[key], value, atol=1e-9, rtol=0)

        # A new head: refused in one line without the flag, trained from scratch with it.
        init = ["--init", f"resnet18:{DATASET}", "--set", "model.options.head=mano"]
        code, _, err = cli(*_run_args(tmp_path / "swap", *init))
        assert code == 2 and "does not fit this model" in err and "missing" in err
        assert len(err.splitlines()) == 1
        code, out, err = cli(*_run_args(tmp_path / "swap2", *init, "--init-head-swap"))
        assert code == 0, err
        assert "left at their fresh values" in out and "head." in out
        swapped = load_file(str(tmp_path / "swap2" / "model.safetensors"))
        key = "backbone.model.conv1.weight" if "backbone.model.conv1.weight" in published else next(
            k for k in published if k.startswith("backbone.") and k.endswith("weight")
        )
        torch.testing.assert_close(swapped[key], published[key], atol=1e-9, rtol=0)

    # a local file works the same, offline
    code, out, err = cli(*_run_args(tmp_path / "local", "--init", str(run / "model.safetensors")))
    assert code == 0 and "initialised from" in out, err


def test_written_weights_keep_the_usual_permissions(tmp_path):
    """safetensors creates 0600 files: a published file must be readable by a web server."""
    import os
    import stat

    old = os.umask(0o022)
    try:
        path = export_random_weights(tmp_path, "resnet18", image_size=32)
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
