"""The plugin contract as a third party meets it: splits, augmentation options, clashes, messages.

Each test installs a small plugin as a real distribution (``write_distribution``)
and drives ``handzoo`` in a subprocess, as a plugin author would.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import write_distribution
from tests.toy_runs import _run

# A dataset whose split depends on val_fraction (default 0.5, unlike the runner's 0.1) and on its
# own option n; it builds its augmentation pipeline from augment and augment_cfg like FreiHAND's.
SPLIT_DATASET = '''
import numpy as np
import torch
import handzoo
from handzoo.data.augment import build_pipeline


class Split(torch.utils.data.Dataset):
    def __init__(self, split="train", image_size=32, augment=(), augment_cfg=None, mean=(0, 0, 0),
                 std=(1, 1, 1), val_fraction=0.5, n=24):
        self.pipeline = build_pipeline(list(augment), augment_cfg)
        n_val = int(round(n * val_fraction))
        self.ids = list(range(n - n_val, n)) if split == "val" else list(range(n - n_val))
        self.image_size = image_size

    def __len__(self):
        return len(self.ids)

    def __getitem__(self, i):
        k = self.ids[i]
        rng = np.random.default_rng(k)
        joints = rng.normal(size=(21, 3)).astype(np.float32) * 0.05 + np.float32([0, 0, 0.5])
        image = torch.from_numpy(rng.normal(size=(3, self.image_size, self.image_size)).astype(np.float32))
        K = torch.tensor([[60.0, 0, self.image_size / 2], [0, 60.0, self.image_size / 2], [0, 0, 1.0]])
        return {"image": image, "joints3d": torch.from_numpy(joints), "K": K, "index": k}


@handzoo.hookimpl
def register_datasets(register):
    register("splitset", Split)
'''


def _cli(*args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "handzoo", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=600)


def test_eval_and_the_leaderboard_score_the_runs_own_split(plugin_site, tmp_path):
    write_distribution(plugin_site, "handzoo-splitset", "0.1", {"splitset": "hz_splitset"},
                       {"hz_splitset": SPLIT_DATASET})
    out = tmp_path / "run"
    args = ["resnet18", "--data", "splitset", "--image-size", "32", "--batch-size", "4", "--workers", "0",
            "--device", "cpu", "--max-steps", "2", "--out", str(out),
            "--set", "data.val_fraction=0.25", "--set", "data.options={n: 40}",
            # options of the training pipeline: the val split, built without one, must not get them
            "--set", "data.augment=[flip]", "--set", "data.augment_cfg={flip: {p: 0.3}}"]
    _run(args, None, tmp_path)
    trained = json.loads((out / "metrics.json").read_text())
    assert trained["num_samples"] == 10  # 40 x 0.25, not 24 x 0.5 = 12

    scores = tmp_path / "scores.json"
    res = _cli("eval", "--weights", str(out / "model.safetensors"), "--data", "splitset", "--split", "val",
               "--device", "cpu", "--amp", "--out", str(scores))  # --amp: the run's own precision
    assert res.returncode == 0, res.stderr
    evaluated = json.loads(scores.read_text())
    assert evaluated["num_samples"] == 10
    assert abs(evaluated["pa_mpjpe_mm"] - trained["pa_mpjpe_mm"]) < 1e-3

    board = tmp_path / "board.json"
    res = _cli("leaderboard", "--runs", str(out), "--data", "splitset", "--split", "val", "--device", "cpu",
               "--format", "json", "--out", str(board))
    assert res.returncode == 0, res.stderr
    ranked = json.loads(board.read_text())
    assert ranked["num_samples"] == 10


BAD_HOOKS = """
import handzoo


@handzoo.hookimpl
def register_modles(register):  # misspelt
    pass
"""

WRONG_SIGNATURE = """
import handzoo


@handzoo.hookimpl
def register_models(reg):  # handzoo passes `register`
    pass
"""

RAISING_FACTORY = """
import handzoo


def boom(depth: int = 3):
    raise ValueError(f"depth {depth} is not supported")


@handzoo.hookimpl
def register_models(register):
    register("boom", boom)
"""


def test_wrong_hooks_are_named_with_the_plugins_file_and_line(plugin_site):
    import importlib

    from handzoo.plugins import PluginHost

    misspelt = "hook 'register_modles' is not a handzoo hook (did you mean 'register_models'?)"
    signature = (
        "hook register_models(reg) asks for 'reg', but handzoo calls it as register_models(register)"
    )
    cases = (("hz_misspelt", BAD_HOOKS, misspelt), ("hz_sig", WRONG_SIGNATURE, signature))
    for module, source, expected in cases:
        (plugin_site / f"{module}.py").write_text(source)
        with pytest.warns(UserWarning, match="skipped: invalid plugin"):
            info = PluginHost().add(importlib.import_module(module), name=module)
        assert info.status == "failed"
        # The line of the hook's decorator in the plugin's own file, not a frame inside pluggy.
        assert info.errors[0] == f"invalid plugin: {plugin_site / module}.py:5: {expected}"


def test_a_factory_that_raises_is_named_with_its_plugin(plugin_site):
    import handzoo
    from handzoo.registry import PartBuildError

    boom = {"hz_boom": RAISING_FACTORY}
    write_distribution(plugin_site, "handzoo-boom", "0.1", {"boomer": "hz_boom"}, boom)
    with pytest.raises(PartBuildError) as info:
        handzoo.create_model("boom", depth=5)
    expected = "model 'boom' (plugin 'boomer') failed to build: ValueError: depth 5 is not supported"
    assert str(info.value) == expected


def test_the_losses_extra_terms_are_logged_and_the_progress_shows_a_loss_at_once(toy_env, tmp_path):
    from tests.toy_runs import COMMON

    out = tmp_path / "run"
    args = ["resnet18", *COMMON, "--max-steps", "10", "--out", str(out), "--set", "optim.loss=l1_pa",
            "--set", "run.log_every=5"]
    res = _run(args, toy_env, tmp_path)
    rows = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    logged = [r for r in rows if "loss" in r]
    assert [r["step"] for r in logged] == [5, 10]
    for r in logged:  # l1_pa = joints_l1 + 1.0 x joints_pa, each the mean over the same steps
        assert abs(r["loss"] - (r["loss_joints_l1"] + r["loss_joints_pa"])) < 1e-6
    steps = [line for line in res.stdout.splitlines() if line.startswith("step ")]
    assert steps and not any("loss -" in line for line in steps)
