"""Hardening II: concurrent runs, output files, hostile weight headers and tensors, broken caches.

Each test reproduces one defect found by trying the CLI as a hostile user would
(real processes, real files, a real HTTP server where a download is involved)
and checks the one-line error or the safe behaviour that replaces it. The
download bounds and the content-keyed cache are tested in ``test_hub.py``.
"""

from __future__ import annotations

import json
import os
import signal
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

import handzoo
from handzoo.config import RunConfig
from handzoo.errors import ConfigError, DataError, UsageError
from handzoo.weights import read_metadata, read_tensors, weights_metadata
from tests.conftest import export_random_weights, predict_args, write_distribution
from tests.toy_runs import COMMON, _run


def _cli(*args: str, env=None, cwd=None, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "handzoo", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


# ----------------------------------------------------------------------------- 1. one run per folder
HOLDER = """
import sys, time
from pathlib import Path
from handzoo.runner.lock import run_folder_lock
with run_folder_lock(Path(sys.argv[1]), "handzoo run resnet18"):
    print("locked", flush=True)
    time.sleep(120)
"""


def test_a_second_run_into_a_locked_folder_is_refused_and_the_lock_dies_with_its_holder(toy_env, tmp_path):
    out = tmp_path / "runs" / "shared"
    out.mkdir(parents=True)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(out)], stdout=subprocess.PIPE, text=True, env=toy_env
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        args = ["resnet18", *COMMON, "--max-steps", "2", "--out", str(out)]
        res = _run(args, toy_env, tmp_path, check=False)
        assert res.returncode == 2, res.stderr
        line = res.stderr.strip().splitlines()[-1]
        holder_named = f"{out} is in use by another run (handzoo run resnet18, "
        assert line.startswith(f"handzoo: usage error: {holder_named}")
        assert f"pid {holder.pid} on " in line and "choose another --out" in line
        assert sorted(p.name for p in out.iterdir()) == [".handzoo-run.lock"]  # nothing written
    finally:
        holder.send_signal(signal.SIGKILL)  # the kernel drops the lock of a killed process
        holder.wait(timeout=30)
    _run(["resnet18", *COMMON, "--max-steps", "2", "--out", str(out)], toy_env, tmp_path)
    assert (out / "model.safetensors").is_file()


# ----------------------------------------------------------------------------- 4. user files in --out
def test_every_output_file_is_guarded_and_a_symlink_is_never_written_through(toy_env, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "MODEL_CARD.md").write_text("my own notes")
    res = _run(["resnet18", *COMMON, "--max-steps", "2", "--out", str(out)], toy_env, tmp_path, check=False)
    assert res.returncode == 2 and "already holds a run (MODEL_CARD.md)" in res.stderr
    assert (out / "MODEL_CARD.md").read_text() == "my own notes"

    # Symlinks planted in place of output files: --force removes the links, never their targets,
    # and every writer replaces a link rather than writing through it.
    outside = tmp_path / "outside"
    outside.mkdir()
    for name in ("curves.png", "history.jsonl", "metrics.json"):
        (outside / name).write_text("keep")
        (out / name).symlink_to(outside / name)
    (out / ".checkpoint.pt.tmp-99999").write_bytes(b"x" * 1000)  # left by a killed writer
    _run(["resnet18", *COMMON, "--max-steps", "2", "--out", str(out), "--force"], toy_env, tmp_path)
    for name in ("curves.png", "history.jsonl", "metrics.json", "MODEL_CARD.md"):
        assert (out / name).is_file() and not (out / name).is_symlink()
    assert all((outside / n).read_text() == "keep" for n in ("curves.png", "history.jsonl", "metrics.json"))
    assert not (out / ".checkpoint.pt.tmp-99999").exists()


def test_writers_replace_a_symlink_instead_of_following_it(tmp_path):
    from handzoo.files import OutputError, append_line
    from handzoo.runner.model_card import write_model_card
    from handzoo.runner.plots import plot_curves

    target = tmp_path / "target.txt"
    target.write_text("keep")
    card, curves, history = tmp_path / "MODEL_CARD.md", tmp_path / "curves.png", tmp_path / "history.jsonl"
    for link in (card, curves, history):
        link.symlink_to(target)
    cfg = RunConfig().model_dump(mode="json")
    write_model_card(card, "resnet18", cfg, {"pa_mpjpe_mm": 1.0}, "cpu", 1.0, 1)
    plot_curves([{"step": 1, "loss": 0.1}, {"step": 2, "loss": 0.05}], curves)
    assert not card.is_symlink() and card.read_text().startswith("#")
    assert not curves.is_symlink() and curves.read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(OutputError, match="must be a plain file"):
        append_line(history, "{}")
    assert target.read_text() == "keep"


# ----------------------------------------------------------------------------- 5. plugins that exit
def test_a_plugin_that_raises_systemexit_at_import_is_reported_and_the_command_goes_on(plugin_site):
    quitter = {"hz_quitter": "raise SystemExit(0)"}
    write_distribution(plugin_site, "handzoo-quitter", "0.1", {"quitter": "hz_quitter"}, quitter)
    res = _cli("list", "models")
    assert res.returncode == 0 and "resnet18" in res.stdout
    assert "plugin 'quitter'" in res.stderr or "quitter" in res.stderr
    res = _cli("plugins", "--json")
    info = {p["name"]: p for p in json.loads(res.stdout)}["quitter"]
    assert info["status"] == "failed" and "SystemExit" in info["errors"][0]
    # In Python too: create_model still builds.
    assert handzoo.create_model("resnet18", image_size=32) is not None


def test_the_top_level_help_imports_no_plugin(plugin_site, tmp_path):
    marker = tmp_path / "imported"
    source = f"from pathlib import Path\nPath({str(marker)!r}).write_text('x')\n"
    write_distribution(plugin_site, "handzoo-slow", "0.1", {"slow": "hz_slow"}, {"hz_slow": source})
    res = _cli("--help")
    assert res.returncode == 0 and "handzoo plugins" in res.stdout
    assert not marker.exists()  # a slow import cannot delay the help
    _cli("plugins")
    assert marker.exists()  # the plugin itself is real and loads for commands


# ----------------------------------------------------------------------------- 6. weight headers
def _weights_with_options(folder: Path, options: dict, image_size: int = 32) -> Path:
    torch.manual_seed(0)
    model = handzoo.create_model("resnet18", image_size=image_size)
    cfg = {"model": {"name": "resnet18", "options": options}, "data": {"image_size": image_size}}
    meta = weights_metadata("resnet18", cfg, model.preprocessing, {})
    path = folder / "model.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path), metadata=meta)
    return path


def test_header_options_cannot_download_read_files_or_ask_for_huge_inputs(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    named = tmp_path / "elsewhere.pth"  # a file the header names: it must never be opened
    path = _weights_with_options(tmp_path, {"backbone_pretrained": True, "backbone_weights": str(named)})
    model = handzoo.create_model(weights=path)  # no hub, no torch.load of the named file
    assert model.handzoo_name == "resnet18" and not named.exists()

    huge = tmp_path / "huge"
    huge.mkdir()
    path = _weights_with_options(huge, {})
    meta = dict(read_metadata(path))
    cfg = json.loads(meta["config"])
    cfg["data"]["image_size"] = 200_000
    meta["config"] = json.dumps(cfg)
    save_file(read_tensors(path), str(path), metadata=meta)
    with pytest.raises(DataError, match=r"header option image_size=.*out of range \(at most 4096\)"):
        handzoo.create_model(weights=path)

    # Inside an object option too: the side-effect key is left out, its numeric neighbours kept.
    from handzoo.weights import header_options

    nested = {"head_cfg": {"weights_url": "http://127.0.0.1:9/x", "loss_weights": {"joints": 2.0}}}
    assert header_options({**nested, "drop_path_rate": 0.1, "mano_dir": "/x"}, None, "w") == {
        "head_cfg": {"loss_weights": {"joints": 2.0}},
        "drop_path_rate": 0.1,
    }
    with pytest.raises(DataError, match="has more than 64 entries"):
        header_options({"layers": list(range(100))}, None, "w")


# ----------------------------------------------------------------------------- 7. tensors and outputs
def test_non_finite_or_relabelled_tensors_are_refused(tmp_path):
    path = export_random_weights(tmp_path, "resnet18", 32)
    tensors, meta = read_tensors(path), read_metadata(path)
    key = next(k for k in tensors if k.endswith("bias") and tensors[k].is_floating_point())
    tensors[key] = tensors[key].clone()
    tensors[key][0] = float("nan")
    bad = tmp_path / "nan.safetensors"
    save_file(tensors, str(bad), metadata=meta)
    with pytest.raises(UsageError, match=f"tensor {key} holds NaN or infinite values"):
        handzoo.create_model(weights=bad)

    # Relabel one float32 tensor as int32 in the header: same bytes, same shape, other meaning.
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    victim = next(k for k, v in header.items() if k != "__metadata__" and v["dtype"] == "F32")
    header[victim]["dtype"] = "I32"
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (n - len(text)) if len(text) <= n else b""
    assert len(text) == n
    relabelled = tmp_path / "relabelled.safetensors"
    relabelled.write_bytes(raw[:8] + text + raw[8 + n :])
    with pytest.raises(UsageError, match=rf"1 dtype \(e.g. {victim} int32 vs float32\)"):
        handzoo.create_model(weights=relabelled)


def test_a_non_finite_prediction_is_an_error_naming_the_image_and_json_stays_valid(tmp_path):
    from PIL import Image

    from handzoo.files import json_text
    from handzoo.inference.predictor import NonFinitePredictionError

    photo = tmp_path / "hand.jpg"
    Image.fromarray(np.full((40, 40, 3), 128, np.uint8)).save(photo)
    model = handzoo.create_model("resnet18", image_size=32).eval()
    with torch.no_grad():
        next(p for n, p in model.named_parameters() if n.startswith("head")).fill_(float("nan"))
    with pytest.raises(NonFinitePredictionError, match=f"^{photo}: the model predicted NaN"):
        handzoo.Predictor(model, device="cpu").predict(photo)
    text = json_text({"a": float("nan"), "b": [1.0, float("inf")]})
    assert json.loads(text) == {"a": None, "b": [1.0, None]}


# ----------------------------------------------------------------------------- 8. broken caches
def test_a_damaged_checkpoint_is_one_line_saying_how_to_start_over(toy_env, tmp_path):
    out = tmp_path / "run"
    _run(["resnet18", *COMMON, "--max-steps", "2", "--out", str(out)], toy_env, tmp_path)
    (out / "checkpoint.pt").write_bytes(b"")
    (out / ".checkpoint.pt.tmp-4242").write_bytes(b"partial")
    res = _run(["resnet18", *COMMON, "--out", str(out), "--resume"], toy_env, tmp_path, check=False)
    assert res.returncode == 1, res.stderr  # an error, not "aborted" (130)
    line = res.stderr.strip().splitlines()[-1]
    damaged = f"{out / 'checkpoint.pt'}: the checkpoint is damaged (an empty file)"
    assert line.startswith(f"handzoo: error: {damaged}")
    assert "start over with --force" in line
    assert not (out / ".checkpoint.pt.tmp-4242").exists()  # the killed writer's leftover is cleaned


def test_a_damaged_annotation_cache_is_rebuilt_with_a_note(tmp_path):
    from handzoo.data import annotations

    xyz = np.random.default_rng(0).normal(0, 0.03, (3, 21, 3)) + [0, 0, 0.5]
    path = tmp_path / "training_xyz.json"
    path.write_text(json.dumps(xyz.tolist()))
    first = annotations.load_annotation(path, "xyz")
    cached = annotations.cached_path(path)
    for damage in (b"", b"\x93NUMPY garbage"):
        cached.write_bytes(damage)
        with pytest.warns(UserWarning, match=f"cache file {cached} is damaged"):
            again = annotations.load_annotation(path, "xyz")
        np.testing.assert_array_equal(again, first)
        np.testing.assert_array_equal(np.load(cached), first)  # rebuilt, not left broken


# ----------------------------------------------------------------------------- smaller items
def test_a_far_label_is_refused_where_it_is_read(tmp_path):
    from handzoo.data.annotations import parse_annotation

    xyz = np.random.default_rng(0).normal(0, 0.03, (4, 21, 3)) + [0, 0, 0.5]
    xyz[2, 5, 0] = 1e300
    path = tmp_path / "training_xyz.json"
    path.write_text(json.dumps(xyz.tolist()))
    with pytest.raises(DataError, match=r"^training_xyz.json: entry 2 has a coordinate of 1e\+300 m"):
        parse_annotation(path, "xyz")


def test_non_finite_numbers_and_huge_seeds_are_config_errors(toy_env, tmp_path):
    cfg = RunConfig()
    for item in ("optim.lr=.inf", "optim.lr=.nan", "optim.grad_clip=.inf", "run.seed=-1"):
        with pytest.raises(ConfigError):
            cfg.with_overrides([item])
    res = _run(["resnet18", *COMMON, "--seed", "12345678901234567890123"], toy_env, tmp_path, check=False)
    assert res.returncode == 2 and "run.seed" in res.stderr, res.stderr
    assert not (tmp_path / "runs").exists()


def test_a_diverged_run_without_a_checkpoint_says_to_start_again(toy_env, tmp_path):
    out = tmp_path / "run"
    args = ["resnet18", *COMMON, "--max-steps", "40", "--out", str(out), "--lr", "1e30"]
    res = _run([*args, "--set", "run.checkpoint_every=1000"], toy_env, tmp_path, check=False)
    assert res.returncode == 1, res.stderr
    assert "non-finite loss" in res.stderr and "No checkpoint was written before it" in res.stderr


def test_fifos_devices_and_folders_are_named_not_read(tmp_path):
    from handzoo.data.image_io import BadImageError, read_jpeg

    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    with pytest.raises(BadImageError, match="is not a regular file"):
        read_jpeg(fifo)  # would block for ever on open
    zero = tmp_path / "zero.jpg"
    zero.symlink_to("/dev/zero")
    with pytest.raises(BadImageError, match="is not a regular file"):
        read_jpeg(zero)  # would read until memory runs out
    folder = tmp_path / "x.safetensors"
    folder.mkdir()
    with pytest.raises(UsageError, match="is a folder; give the .safetensors file in it"):
        handzoo.create_model("resnet18", weights=folder)


def test_predict_reports_a_fifo_in_a_folder_and_predicts_the_rest(tmp_path):
    from PIL import Image

    weights = export_random_weights(tmp_path, "resnet18", 32)
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(np.full((40, 40, 3), 90, np.uint8)).save(photos / "good.jpg")
    os.mkfifo(photos / "pipe.jpg")
    (photos / "zero.png").symlink_to("/dev/zero")
    out = tmp_path / "out"
    res = subprocess.run(
        [sys.executable, "-m", "handzoo", *predict_args(photos, weights, out, "--no-pictures")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    for name in ("pipe.jpg", "zero.png"):
        assert f"skipped {photos / name} (unreadable image" in res.stderr
    assert res.stderr.count("is not a regular file (a FIFO, device or socket)") == 2
    assert res.returncode == 1 and "2 of 3 images could not be read" in res.stderr  # said, not hidden
    assert (out / "good.json").is_file()
    json.loads((out / "good.json").read_text())


def test_a_submission_zip_is_read_with_a_size_bound(tmp_path, monkeypatch):
    from handzoo import submission

    monkeypatch.setattr(submission, "MAX_PRED_BYTES", 10_000)
    bomb = tmp_path / "sub.zip"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("pred.json", "[" + "0," * 50_000 + "0]")  # compresses to a few hundred bytes
    assert bomb.stat().st_size < 2000
    with pytest.raises(DataError, match=r"sub.zip:pred.json: 100003 bytes of JSON, more than"):
        submission.load_submission(bomb)
