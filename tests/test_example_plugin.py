"""The example plugin under examples/, pip-installed for real, exercised through the CLI.

One part of every kind (backbone, head, model, augmenter, dataset, loss,
metric), a command and a catalogue; a 3-step ``handzoo run`` uses them all.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "handzoo-example-plugin"


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The example distribution installed with pip into a folder of its own (its dist-info included)."""
    site = tmp_path_factory.mktemp("example_site")
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
         "--target", str(site), str(EXAMPLE)],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert any(site.glob("handzoo_example_plugin-*.dist-info/entry_points.txt"))
    return site


@pytest.fixture
def env(installed, monkeypatch) -> dict[str, str]:
    import handzoo.plugins

    monkeypatch.syspath_prepend(str(installed))
    handzoo.plugins.reset()
    yield {**os.environ, "PYTHONPATH": os.pathsep.join([str(installed), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    handzoo.plugins.reset()
    for name in [n for n in sys.modules if n.startswith("handzoo_example")]:
        del sys.modules[name]


def handzoo_cli(env, *args, cwd=None) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "handzoo", *args]
    return subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=300)


def test_every_part_is_listed_and_the_plugin_reports_its_hooks(env):
    listed = json.loads(handzoo_cli(env, "list", "example*", "--json").stdout)
    assert {(e["kind"], e["name"]) for e in listed} == {
        ("backbone", "example-tinycnn"),
        ("head", "example-mlp"),
        ("model", "example-tiny"),
        ("augmenter", "example-noise"),
        ("metric", "example_pck20"),
        ("dataset", "example-dots"),
        ("loss", "example-wing"),
        ("detector", "example-bright"),
    }
    assert next(e for e in listed if e["name"] == "example-mlp")["default_cfg"] == {"hidden": 64}
    plugins = {p["name"]: p for p in json.loads(handzoo_cli(env, "plugins", "--json").stdout)}
    info = plugins["example"]
    assert info["status"] == "loaded" and info["distribution"] == "handzoo-example-plugin"
    assert info["commands"] == ["example-info"] and info["catalogues"][0].endswith("zoo.yaml")
    assert {"register_commands", "register_catalogues", "register_losses"} <= set(info["hooks"])
    shown = json.loads(handzoo_cli(env, "example-info", "--json").stdout)
    assert len(shown) == 8
    zoo = handzoo_cli(env, "zoo", "example*")
    assert "example-quick" in zoo.stdout and "plugin" in zoo.stdout


def test_the_example_detector_boxes_the_bright_dots_and_predict_crops_there(env, tmp_path):
    from PIL import Image

    import handzoo

    photo = np.zeros((60, 80, 3), np.uint8)
    photo[10:30, 40:52] = 255  # the "hand": bright pixels in x 40..51, y 10..29
    detector = handzoo.get_registry().create("detector", "example-bright")
    [found] = detector.detect(photo)
    assert found.box == (40.0, 10.0, 52.0, 30.0) and found.handedness == "right"
    assert found.score == pytest.approx(240 / (60 * 80))
    assert detector.detect(np.zeros_like(photo)) == []
    Image.fromarray(photo).save(tmp_path / "dots.png")
    predictor = handzoo.Predictor("example-tiny", device="cpu", detector="example-bright")
    [hands] = predictor.predict_hands([str(tmp_path / "dots.png")])
    # The crop: the box squared (side 20) and grown by the detector's crop_margin 1.3 about its centre.
    assert len(hands) == 1 and hands[0].box == (46 - 13, 20 - 13, 46 + 13, 20 + 13)


def test_a_three_step_run_uses_the_example_model_head_augmenter_dataset_loss_and_metric(env, tmp_path):
    out = tmp_path / "run"
    done = handzoo_cli(env, "run", "example-tiny", "--data", "example-dots", "--max-steps", "3",
                       "--device", "cpu", "--workers", "0", "--out", str(out), cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    # the recipe comes from the plugin's own catalogue
    assert cfg["data"]["augment"] == ["example-noise", "rotate"] and cfg["data"]["batch_size"] == 8
    assert cfg["optim"]["loss_terms"]["joints"]["loss"] == "example-wing"
    metrics = json.loads((out / "metrics.json").read_text())

    # Independent reference for the plugin's metric: numpy over the exported model's predictions.
    import handzoo

    model = handzoo.create_model(weights=out / "model.safetensors").eval()
    assert model.handzoo_metadata == {"example_head_hidden": 64}
    val = handzoo.create_dataset("example-dots", split="val", image_size=32)
    with torch.no_grad():
        images = torch.stack([val[i]["image"] for i in range(len(val))])
        pred = model(images).joints3d.double().numpy()
    gt = val.labels() - val.labels()[:, :1]
    within = np.sqrt(((pred - gt) ** 2).sum(-1)) <= 0.02
    assert metrics["example_pck20"] == pytest.approx(within.mean(), abs=2.5 / within.size)
    assert "example_pck20" in (out / "MODEL_CARD.md").read_text()


def test_the_readme_examples_are_the_installed_code():
    """Every code block of the plugin guide (docs/plugins.md) that names an example file is in that file."""
    guide = (ROOT / "docs" / "plugins.md").read_text()
    blocks = guide.split("```")[1::2]
    named = [b for b in blocks if b.split("\n", 1)[-1].startswith("# examples/")]
    assert len(named) >= 8
    for block in named:
        first, body = block.split("\n", 2)[1:]
        source = (ROOT / first.removeprefix("# ").strip()).read_text()
        assert body.strip() in source, first


def test_the_example_augmenter_has_a_batched_twin_for_the_device_pipeline(env):
    from handzoo.config import RunConfig
    from handzoo.runner.datasets import choose_pipeline

    augment_cfg = {"example-noise": {"p": 1.0, "sigma": 10.0}, "rotate": {"p": 0.0}}
    names = ["example-noise", "rotate"]
    cfg = RunConfig().with_overrides(
        {"data.name": "freihand", "data.augment": names, "data.augment_cfg": augment_cfg}
    )
    # mean 0, std 1/255: the normalised image is the pixel value itself
    twin, note = choose_pipeline(cfg, torch.device("cuda"), {"mean": (0.0,) * 3, "std": (1 / 255,) * 3})
    assert twin is not None, note
    batch = {
        "image": torch.full((2, 3, 16, 16), 100, dtype=torch.uint8),
        "K": torch.eye(3).expand(2, 3, 3).clone(),
        "joints3d": torch.tensor([0.0, 0.0, 0.5]).expand(2, 21, 3).clone(),
    }
    out = twin(batch, torch.Generator().manual_seed(0))
    assert abs(float(out["image"].std()) - 10.0) < 1.0 and abs(float(out["image"].mean()) - 100.0) < 1.0
