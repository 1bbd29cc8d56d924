"""``handzoo run`` mechanics: outputs, schedules, resume after SIGKILL, NaN guard, DDP via torchrun.

These tests use a small dataset plugin installed as a real distribution, so
the runner is exercised exactly as with any third-party dataset. Runs on the
FreiHAND-format data are in test_run_data.py.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from handzoo.config import RunConfig
from handzoo.errors import UsageError
from handzoo.runner.schedule import lr_factor
from handzoo.scoring.baseline import procrustes_mean
from tests.toy_runs import COMMON, _run


def _history(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines() if line.strip()]


def _weights(out: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(out / "model.safetensors"))


def _pa_mpjpe_of_exported(out: Path, worst: bool = False) -> float:
    """Val PA-MPJPE (mm) of the run's exported resnet18, evaluated here in one process.

    ``worst``: the mean over samples of the largest joint error instead (mm), by numpy.

    Same precision and layout as the run's own evaluation: bf16 autocast on CPUs
    with native bf16, channels_last.
    """
    import handzoo
    from handzoo.device import amp_dtype_for
    from handzoo.evaluation import autocast
    from handzoo.metrics import pa_mpjpe

    cpu = torch.device("cpu")
    model = handzoo.create_model("resnet18", image_size=32).eval()
    model.load_state_dict(_weights(out))
    model = model.to(memory_format=torch.channels_last)
    ds = handzoo.create_dataset("randomhands", split="val", image_size=32)
    images = torch.stack([ds[i]["image"] for i in range(len(ds))])
    with torch.no_grad(), autocast(cpu, amp_dtype_for(cpu, True)):
        pred = model(images.contiguous(memory_format=torch.channels_last)).joints3d.double()
    gt = torch.from_numpy(ds.joints3d).double()
    if worst:
        diff = pred.numpy() - (gt - gt[:, :1]).numpy()
        return float(np.mean([max(np.sqrt((d**2).sum(-1))) for d in diff])) * 1000
    return float(pa_mpjpe(pred, gt - gt[:, :1]).mean()) * 1000


# -- schedules: closed forms --------------------------------------------------------------
def test_schedules_match_closed_forms():
    total = 100
    assert [lr_factor(s, total, "constant") for s in (0, 50, 99)] == [1.0, 1.0, 1.0]
    for s in range(total):
        expected = 0.5 * (1 + math.cos(math.pi * s / total))
        assert lr_factor(s, total, "cosine") == pytest.approx(expected)
    # late cosine: 25 constant steps, then cosine over the remaining 75 (the seed's run 3).
    for s in range(total):
        expected = 1.0 if s < 25 else 0.5 * (1 + math.cos(math.pi * (s - 25) / 75))
        assert lr_factor(s, total, "late_cosine", constant_fraction=0.25) == pytest.approx(expected)
    # warm-up ramps linearly to 1 and the cosine starts after it
    assert [lr_factor(s, total, "cosine", warmup_steps=4) for s in range(5)] == pytest.approx(
        [0.2, 0.4, 0.6, 0.8, 1.0]
    )
    with pytest.raises(ValueError, match="unknown schedule"):
        lr_factor(0, 10, "linear")


# -- the constant baseline ------------------------------------------------------------------
def _random_rotations(n, rng):
    q = rng.normal(size=(n, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    w, x, y, z = q.T
    return np.stack(
        [
            np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], -1),
            np.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], -1),
            np.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1),
        ],
        1,
    )


def test_procrustes_mean_recovers_the_shape_behind_similarity_transforms():
    from handzoo.metrics import pa_mpjpe

    rng = np.random.default_rng(0)
    base = rng.normal(size=(21, 3)) * 0.04
    rot = _random_rotations(300, rng)
    scale = rng.uniform(0.8, 1.2, size=(300, 1, 1))
    poses = scale * np.einsum("nij,kj->nki", rot, base) + rng.normal(size=(300, 1, 3))
    poses += rng.normal(scale=1e-4, size=poses.shape)  # 0.1 mm of noise
    mean = procrustes_mean(torch.from_numpy(poses))
    err = pa_mpjpe(mean.expand(1, 21, 3), torch.from_numpy(base)[None])
    assert float(err) < 2e-5  # the same shape, up to a similarity transform
    # ... and as a constant prediction it beats the camera-frame mean by far.
    gt = torch.from_numpy(poses)
    gpa = pa_mpjpe(mean.expand_as(gt), gt).mean()
    naive = pa_mpjpe(gt.mean(0, keepdim=True).expand_as(gt), gt).mean()
    assert gpa < 0.2 * naive


# -- a whole run ------------------------------------------------------------------------------
def test_run_writes_every_output_and_the_weights_reproduce_predictions(toy_env, tmp_path):
    out = tmp_path / "run"
    args = ["resnet18", *COMMON, "--max-steps", "6", "--out", str(out), "--set", "optim.loss=l1_pa"]
    res = _run(args, toy_env, tmp_path)
    assert "device cpu" in res.stdout and "6 steps" in res.stdout
    # config.yaml and the model card say which loss terms trained the model
    import yaml

    saved = yaml.safe_load((out / "config.yaml").read_text())["optim"]
    assert saved["loss_terms"] == {"joints": {"loss": "l1_pa", "pa_weight": 1.0, "weight": 1.0}}
    assert "loss terms (weight): joints: l1_pa (pa_weight=1.0) x1" in (out / "MODEL_CARD.md").read_text()
    for name in (
        "config.yaml",
        "model.safetensors",
        "metrics.json",
        "history.jsonl",
        "curves.png",
        "MODEL_CARD.md",
        "checkpoint.pt",
    ):
        assert (out / name).is_file(), name
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"pa_mpjpe_mm", "mpjpe_mm", "auc_pa_0_50mm", "baseline_pa_mpjpe_mm"} <= set(metrics)
    assert metrics["num_samples"] == 48
    rows = _history(out)
    assert [r["step"] for r in rows if "loss" in r] == [1, 2, 3, 4, 5, 6]
    from handzoo.weights import read_metadata

    meta = read_metadata(out / "model.safetensors")
    assert meta["model"] == "resnet18" and json.loads(meta["input_size"]) == [3, 32, 32]
    assert json.loads(meta["joint_order"])[:2] == ["wrist", "thumb_mcp"]
    assert json.loads(meta["metrics"])["pa_mpjpe_mm"] == pytest.approx(metrics["pa_mpjpe_mm"])
    from PIL import Image

    assert Image.open(out / "curves.png").size == (1000, 380)
    # Reloading the exported weights reproduces the reported metric.
    assert _pa_mpjpe_of_exported(out) == pytest.approx(metrics["pa_mpjpe_mm"], rel=1e-4)
    # A third-party metric is computed like the first-party ones, and reported in the card too.
    assert metrics["worst_joint_mm"] == pytest.approx(_pa_mpjpe_of_exported(out, worst=True), rel=1e-4)
    assert "| worst_joint_mm |" in (out / "MODEL_CARD.md").read_text()
    evaluate = ["eval", "--weights", str(out / "model.safetensors"), "--data", "randomhands"]
    evaluate += ["--split", "val", "--device", "cpu", "--workers", "0", "--out", str(tmp_path / "m.json")]
    evaluate += ["--amp"]  # the run's precision: bf16 on CPUs with native bf16
    cmd = [sys.executable, "-m", "handzoo", *evaluate]
    shown = subprocess.run(cmd, env=toy_env, cwd=tmp_path, capture_output=True, text=True)
    assert shown.returncode == 0, shown.stderr
    assert "worst_joint_mm" in shown.stdout
    evaluated = json.loads((tmp_path / "m.json").read_text())
    # eval --amp scores at the run's own precision: the same numbers as the run's metrics.json
    for key in ("worst_joint_mm", "pa_mpjpe_mm", "mpjpe_mm"):
        assert evaluated[key] == pytest.approx(metrics[key], rel=1e-6), key
    card = (out / "MODEL_CARD.md").read_text()
    assert "Input: RGB images of 32 x 32 px" in card
    if metrics["pa_mpjpe_mm"] >= metrics["baseline_pa_mpjpe_mm"]:
        assert "**This model does not beat the constant pose**" in card


def test_existing_run_is_not_overwritten(toy_env, tmp_path):
    out = tmp_path / "run"
    _run(["resnet18", *COMMON, "--max-steps", "2", "--out", str(out)], toy_env, tmp_path)
    again = _run(["resnet18", *COMMON, "--max-steps", "2", "--out", str(out)], toy_env, tmp_path, check=False)
    assert again.returncode == 2 and "already holds a run" in again.stderr and "--resume" in again.stderr
    forced = _run(["resnet18", *COMMON, "--max-steps", "3", "--out", str(out), "--force"], toy_env, tmp_path)
    assert forced.returncode == 0 and _history(out)[-1]["step"] == 3


def test_usage_errors_exit_2(toy_env, tmp_path):
    res = _run(["resnet1011", *COMMON, "--max-steps", "2"], toy_env, tmp_path, check=False)
    assert res.returncode == 2 and "did you mean 'resnet101'" in res.stderr
    res = _run(["resnet18", *COMMON, "--set", "optim.schedule=linear"], toy_env, tmp_path, check=False)
    assert res.returncode == 2 and "allowed values: constant, cosine, late_cosine" in res.stderr
    res = _run(["resnet18", *COMMON, "--set", "optim.loss=l1pa"], toy_env, tmp_path, check=False)
    assert res.returncode == 2 and "unknown loss 'l1pa': did you mean 'l1', 'l1_pa'?" in res.stderr
    res = _run(["resnet18", *COMMON, "--set", "optim.loss_cfg={beta: 1}"], toy_env, tmp_path, check=False)
    assert res.returncode == 2 and "loss 'l1' has no option 'beta'" in res.stderr
    res = _run(["resnet18", *COMMON, "--data-root", str(tmp_path)], toy_env, tmp_path, check=False)
    assert res.returncode == 2 and "add --data freihand" in res.stderr
    assert not (tmp_path / "runs").exists()


def test_resume_after_sigkill_matches_an_uninterrupted_run(toy_env, tmp_path):
    args = [
        "resnet18",
        *COMMON,
        "--max-steps",
        "40",
        "--checkpoint-every",
        "5",
        "--set",
        "optim.schedule=cosine",
        "--set",
        "optim.warmup_steps=3",
        "--set",
        "optim.lr=1e-3",
    ]
    full = tmp_path / "full"
    _run([*args, "--out", str(full)], toy_env, tmp_path)

    cut = tmp_path / "cut"
    proc = subprocess.Popen(
        [sys.executable, "-m", "handzoo", "run", *args, "--out", str(cut)],
        env=toy_env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 240
    while not (cut / "checkpoint.pt").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert not (cut / "model.safetensors").exists()
    killed_at = max(r["step"] for r in _history(cut))
    _run([*args, "--out", str(cut), "--resume"], toy_env, tmp_path)

    a, b = _history(full), _history(cut)
    steps_a = [r["step"] for r in a if "loss" in r]
    steps_b = [r["step"] for r in b if "loss" in r]
    assert steps_a == steps_b == list(range(1, 41))
    lr_a = [r["lr"] for r in a if "loss" in r]
    lr_b = [r["lr"] for r in b if "loss" in r]
    assert lr_a == pytest.approx(lr_b, rel=1e-12)
    wa, wb = _weights(full), _weights(cut)
    for k in wa:
        torch.testing.assert_close(wa[k], wb[k], rtol=1e-4, atol=1e-5)
    assert killed_at >= 1


def test_non_finite_loss_stops_with_the_step_and_keeps_the_checkpoint(toy_env, tmp_path):
    out = tmp_path / "nan"
    res = _run(
        [
            "resnet18",
            *COMMON,
            "--max-steps",
            "30",
            "--checkpoint-every",
            "1",
            "--lr",
            "1e30",
            "--out",
            str(out),
        ],
        toy_env,
        tmp_path,
        check=False,
    )
    assert res.returncode == 1
    line = [ln for ln in res.stderr.splitlines() if "non-finite loss" in ln]
    assert len(line) == 1, res.stderr
    step = int(line[0].split(" at step ")[1].split(";")[0])
    from handzoo.runner.checkpoint import load

    state = load(out / "checkpoint.pt")
    assert state["step"] == step - 1  # the last good step
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())
    assert not (out / "model.safetensors").exists()


@pytest.mark.skipif(
    shutil.which("torchrun") is None and not Path(sys.executable).with_name("torchrun").exists(),
    reason="torchrun is not installed",
)
def test_ddp_with_two_processes_evaluates_every_sample_once(toy_env, tmp_path):
    torchrun = shutil.which("torchrun") or str(Path(sys.executable).with_name("torchrun"))
    out = tmp_path / "ddp"
    cmd = [
        torchrun,
        "--standalone",
        "--nproc-per-node",
        "2",
        "-m",
        "handzoo",
        "run",
        "resnet18",
        *COMMON,
        "--max-steps",
        "4",
        "--out",
        str(out),
    ]
    res = subprocess.run(cmd, env=toy_env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "x 2 processes" in res.stdout
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["num_samples"] == 48
    # Only rank 0 wrote: one history row per step.
    assert [r["step"] for r in _history(out) if "loss" in r] == [1, 2, 3, 4]
    # The gathered metric equals a single-process evaluation of the exported weights.
    assert _pa_mpjpe_of_exported(out) == pytest.approx(metrics["pa_mpjpe_mm"], rel=1e-4)


def test_ddp_trains_an_image_space_head_with_each_crops_camera(toy_env, tmp_path):
    torchrun = shutil.which("torchrun") or str(Path(sys.executable).with_name("torchrun"))
    out = tmp_path / "ddp"
    head = ["--set", "model.options.head=integral", "--set", "model.options.head_cfg={depth_bins: 4}"]
    cmd = [torchrun, "--standalone", "--nproc-per-node", "2", "-m", "handzoo", "run", "resnet18", *COMMON]
    cmd += [*head, "--max-steps", "3", "--out", str(out)]
    res = subprocess.run(cmd, env=toy_env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "no camera K given" not in res.stderr  # the batches' K reached the head
    assert json.loads((out / "metrics.json").read_text())["num_samples"] == 48
    import yaml

    terms = yaml.safe_load((out / "config.yaml").read_text())["optim"]["loss_terms"]
    assert {"joints", "uv", "depth", "scale"} <= set(terms)


def test_amp_dtype_follows_the_device_and_the_cpu_instructions():
    from handzoo.device import amp_dtype_for
    from handzoo.environment import cpu_supports_bf16

    cpu = torch.device("cpu")
    assert amp_dtype_for(cpu, enabled=False) is None
    # bf16 only where the CPU computes it natively; emulated bf16 is slower than float32.
    assert amp_dtype_for(cpu, enabled=True) == (torch.bfloat16 if cpu_supports_bf16() else None)
    assert amp_dtype_for(torch.device("meta"), enabled=True) is None


def test_time_budget_fits_a_schedule_and_completes_it(toy_env, tmp_path):
    """In time-budget mode the run fixes (and re-fits) its length itself, and the cosine
    schedule it ends with runs to its end: the recorded total is the step count done, the
    checkpoint agrees, and the learning rate follows the closed form of that total."""
    import yaml

    out = tmp_path / "run"
    base_lr = 1e-3
    args = ["resnet18", *COMMON, "--out", str(out), "--lr", str(base_lr)]
    # 18 s: start-up (imports, model, data) stays well inside it even on a loaded machine.
    args += ["--set", "run.time_budget_min=0.3", "--set", "optim.schedule=cosine"]
    args += ["--set", "optim.warmup_steps=8", "--set", "run.checkpoint_every=20"]
    res = _run(args, toy_env, tmp_path)
    assert "time budget:" in res.stdout
    total = yaml.safe_load((out / "config.yaml").read_text())["run"]["max_steps"]
    steps = [r["step"] for r in _history(out) if "loss" in r]
    assert total > 8 and steps == list(range(1, total + 1))
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    assert state["step"] == state["total_steps"] == total
    # The last step's learning rate is that of a cosine schedule `total` steps long.
    last = [r for r in _history(out) if "loss" in r][-1]
    expected = base_lr * lr_factor(total - 1, total, "cosine", 8)
    assert last["lr"] == pytest.approx(expected, rel=1e-6, abs=1e-12)


def test_a_time_budget_from_the_command_line_replaces_the_recipe_length():
    from handzoo.runner.plan import resolve_config

    recipe, _ = resolve_config("resnet18", {"data.name": "freihand"}, [])
    assert recipe.run.epochs == 200  # the zoo recipe's length
    cfg, _ = resolve_config("resnet18", {"data.name": "freihand"}, ["run.time_budget_min=30"])
    assert cfg.run.time_budget_min == 30 and cfg.run.epochs is None and cfg.run.max_steps is None
    flags = {"data.name": "freihand", "run.epochs": 3}
    both, _ = resolve_config("resnet18", flags, ["run.time_budget_min=30"])
    assert both.run.epochs == 3  # an explicit length wins over the budget


def test_seed_seeds_training_not_the_synthetic_set():
    """--seed reaches the augmentation; the generated set is chosen by data.options only."""
    from handzoo.data.synthetic import synthetic_root
    from handzoo.runner.datasets import build_dataset

    prep = {"mean": (0.5, 0.5, 0.5), "std": (0.25, 0.25, 0.25)}
    roots = set()
    for seed in (0, 7):
        cfg = RunConfig().with_overrides(
            {"run.seed": seed, "data.image_size": 32, "data.options": {"num": 12, "num_eval": 2}}
        )
        ds = build_dataset(cfg, "train", prep, augment=True)
        roots.add(str(ds.root))
        assert ds.seed == seed
    assert roots == {str(synthetic_root(12, 0, 2))}
    other = RunConfig().with_overrides({"data.options": {"num": 12, "num_eval": 2, "generator_seed": 3}})
    assert str(build_dataset(other, "val", prep, augment=False).root) == str(synthetic_root(12, 3, 2))
    with pytest.raises(UsageError, match="data.options sets seed"):
        build_dataset(RunConfig().with_overrides({"data.options": {"seed": 1}}), "train", prep, True)


def test_progress_shows_the_logged_loss_never_nan():
    """Between logging steps the line used to print `loss nan`; it shows the last logged value."""
    from handzoo.runner.progress import TrainingProgress

    lines: list[str] = []
    progress = TrainingProgress(None, 20, 0, 4, lines.append)
    for step in range(1, 21):
        progress.advance(step, None if step < 10 else 0.0123)
    assert lines[0].startswith("step 2/20  loss -") and "nan" not in " ".join(lines)
    assert lines[-1].startswith("step 20/20  loss 0.0123")


def test_baseline_labels_come_from_labels_method_without_decoding():
    from handzoo.scoring.baseline import training_labels as _labels

    joints = np.random.default_rng(0).normal(size=(5, 21, 3))

    class WithMethod(torch.utils.data.Dataset):
        def __len__(self):
            return 5

        def __getitem__(self, i):
            raise AssertionError("the baseline must not decode samples when labels() exists")

        def labels(self):
            return joints

    class WithArray(torch.utils.data.Dataset):  # an attribute named labels is no labels() method
        labels = torch.zeros(3)

        def __len__(self):
            return 5

        def __getitem__(self, i):
            return {"joints3d": torch.from_numpy(joints[i])}

    np.testing.assert_array_equal(_labels(WithMethod()), joints)
    np.testing.assert_array_equal(_labels(WithArray()), joints)


def _rank_pids(agent_pid: int) -> dict[int, int]:
    """{LOCAL_RANK: pid} of the worker processes under a torchrun agent (read from /proc)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            env = (entry / "environ").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue
        if ppid == agent_pid:
            for item in env:
                if item.startswith(b"LOCAL_RANK="):
                    found[int(item.split(b"=", 1)[1])] = int(entry.name)
    return found


@pytest.mark.skipif(
    shutil.which("torchrun") is None and not Path(sys.executable).with_name("torchrun").exists(),
    reason="torchrun is not installed",
)
@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs /proc to find the ranks")
def test_a_killed_rank_ends_the_run_and_resume_finishes_the_schedule(toy_env, tmp_path):
    """SIGKILL rank 1 of two mid-run: torchrun exits non-zero within a bound, the checkpoint is
    intact, and --resume ends at the same final step as an uninterrupted run would."""
    torchrun = shutil.which("torchrun") or str(Path(sys.executable).with_name("torchrun"))
    out = tmp_path / "ddp"
    base = [torchrun, "--standalone", "--nproc-per-node", "2", "-m", "handzoo", "run", "resnet18", *COMMON]
    args = [*base, "--max-steps", "60", "--checkpoint-every", "4", "--out", str(out)]
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    agent = subprocess.Popen(args, env=toy_env, cwd=tmp_path, **quiet)
    deadline = time.time() + 240
    while not (out / "checkpoint.pt").exists() and time.time() < deadline and agent.poll() is None:
        time.sleep(0.05)
    ranks = _rank_pids(agent.pid)
    assert agent.poll() is None and 1 in ranks, "the run ended before a rank could be killed"
    os.kill(ranks[1], signal.SIGKILL)
    killed = time.time()
    try:
        agent.wait(timeout=120)
    except subprocess.TimeoutExpired:
        agent.kill()
        pytest.fail("the run hung after a rank was killed")
    took = time.time() - killed
    assert agent.returncode != 0 and took < 60, (agent.returncode, took)
    state = torch.load(out / "checkpoint.pt", map_location="cpu", weights_only=True)  # intact
    assert 4 <= state["step"] < 60 and state["step"] % 4 == 0
    assert not (out / "model.safetensors").exists()
    res = subprocess.run([*args, "--resume"], env=toy_env, cwd=tmp_path, capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    assert max(r["step"] for r in _history(out)) == 60 and (out / "model.safetensors").exists()
    print(f"a killed rank ended the torchrun run {took:.1f} s later (exit {agent.returncode})")


LIMITED_RUN = """
import resource, signal, sys
from pathlib import Path
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # an over-size write fails with EFBIG, as on a full disk
from handzoo.runner import trainer
stage = sys.argv[1]
saved_checkpoint, saved_export = trainer.Trainer._checkpoint, trainer.Trainer._export
calls = []
def checkpoint(self, *args):
    saved_checkpoint(self, *args)
    calls.append(args[4])
    if stage == "checkpoint" and len(calls) == 1:  # after the first checkpoint, room for half of one
        size = (self.out / "checkpoint.pt").stat().st_size
        resource.setrlimit(resource.RLIMIT_FSIZE, (size // 2, resource.RLIM_INFINITY))
def export(self, *args):
    if stage == "export":
        resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, resource.RLIM_INFINITY))
    saved_export(self, *args)
trainer.Trainer._checkpoint, trainer.Trainer._export = checkpoint, export
from handzoo.cli import main
main(sys.argv[2:])
"""


@pytest.mark.parametrize("stage", ["checkpoint", "export"])
def test_a_full_disk_keeps_the_previous_checkpoint_and_names_the_file(stage, toy_env, tmp_path):
    """A real file-size limit (RLIMIT_FSIZE) makes a checkpoint or the export fail mid-write."""
    out = tmp_path / "run"
    args = ["run", "resnet18", *COMMON, "--max-steps", "6", "--checkpoint-every", "2", "--out", str(out)]
    res = subprocess.run([sys.executable, "-c", LIMITED_RUN, stage, *args], env=toy_env, cwd=tmp_path,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 1, res.stderr[-2000:]
    error = res.stderr.strip().splitlines()[-1]
    name = "checkpoint.pt" if stage == "checkpoint" else "model.safetensors"
    assert error.startswith("handzoo: error:") and str(out / name) in error and "Free disk space" in error
    assert not [p.name for p in out.iterdir() if ".tmp" in p.name]  # nothing half-written left
    assert not (out / "model.safetensors").exists()
    state = torch.load(out / "checkpoint.pt", map_location="cpu", weights_only=True)  # intact
    assert state["step"] == (2 if stage == "checkpoint" else 6)
    assert ("the previous one is kept" in error) == (stage == "checkpoint")


def test_blend_toward_matches_the_interpolation_formula():
    from handzoo.runner.blend import blend_toward

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    model[1].running_mean.normal_()
    own = model.state_dict()
    start = {k: torch.randn_like(v) if v.is_floating_point() else v + 7 for k, v in own.items()}
    tuned = {k: v.clone() for k, v in model.state_dict().items()}
    blended = blend_toward(model, start, 0.3, skip=["0.bias"])
    after = model.state_dict()
    for name, value in tuned.items():
        if name == "0.bias" or not value.is_floating_point():
            assert torch.equal(after[name], value), name  # skipped, and integer buffers, stay fine-tuned
        else:
            expected = 0.7 * start[name] + 0.3 * value  # element by element, as written in the docstring
            torch.testing.assert_close(after[name], expected, rtol=0, atol=1e-6)
    assert sorted(blended) == ["0.weight", "1.bias", "1.running_mean", "1.running_var", "1.weight"]
    with pytest.raises(ValueError, match="share must be in"):
        blend_toward(model, start, 1.5)
    # A tensor shared under two names moves once; float64 keeps its precision.
    tied = torch.nn.Module()
    tied.a = torch.nn.Parameter(torch.zeros(3, dtype=torch.float64))
    tied.b = tied.a
    before = torch.tensor([1e-12, 1.0, 2.0], dtype=torch.float64)
    with torch.no_grad():
        tied.a.copy_(before + 1.0)
    blend_toward(tied, {"a": before, "b": before}, 0.5)
    # once (not before + 0.25), and the 1e-12 survives (float32 arithmetic would lose it)
    torch.testing.assert_close(tied.a.detach(), before + 0.5, rtol=0, atol=1e-15)
    with pytest.raises(ValueError, match="0.weight: the starting weights have shape"):
        blend_toward(model, {"0.weight": torch.zeros(2, 2)}, 0.5)


def test_init_blend_exports_the_blend_of_the_start_and_the_fine_tuned_weights(toy_env, tmp_path):
    from handzoo.runner import checkpoint as ckpt

    first, second = tmp_path / "first", tmp_path / "second"
    _run(["resnet18", *COMMON, "--max-steps", "2", "--out", str(first)], toy_env, tmp_path)
    args = ["resnet18", *COMMON, "--max-steps", "3", "--lr", "1e-2", "--out", str(second)]
    args += ["--init", str(first / "model.safetensors"), "--set", "model.init_blend=0.25"]
    res = _run(args, toy_env, tmp_path)
    start, exported = _weights(first), _weights(second)
    fine_tuned = ckpt.load(second / "checkpoint.pt")["model"]  # the last step's weights, before the blend
    moved = 0.0
    for name, value in exported.items():
        tuned = fine_tuned[name].float()
        if not value.is_floating_point():
            assert torch.equal(value, fine_tuned[name]), name
            continue
        moved = max(moved, float((tuned - start[name]).abs().max()))
        expected = start[name].float() + 0.25 * (tuned - start[name].float())
        torch.testing.assert_close(value.float(), expected, rtol=0, atol=1e-6, msg=name)
    assert moved > 1e-4  # the fine-tune did move the weights, so the blend is not trivially equal
    # The metrics are the blend's; history keeps the fine-tuned figure beside it.
    metrics = json.loads((second / "metrics.json").read_text())
    assert _pa_mpjpe_of_exported(second) == pytest.approx(metrics["pa_mpjpe_mm"], rel=1e-4)
    row = _history(second)[-1]
    assert row["init_blend"] == 0.25 and row["val_pa_mpjpe_mm"] == metrics["pa_mpjpe_mm"]
    assert "val_fine_tuned_pa_mpjpe_mm" in row and "25% fine-tuned" in res.stdout
    card = (second / "MODEL_CARD.md").read_text()
    assert "25 % fine-tuned, 75 % the starting weights" in card and "- started from `" in card
    # Resumed from its last checkpoint, the run blends exactly as it did uninterrupted, once.
    (second / "model.safetensors").unlink()
    _run([*args, "--resume"], toy_env, tmp_path)
    again = _weights(second)
    assert all(torch.equal(again[k], exported[k]) for k in exported)
    assert sum("init_blend" in r for r in _history(second)) == 1
    # A start that changed since the run began is refused on resume, before any training.
    _run(["resnet18", *COMMON, "--max-steps", "3", "--out", str(first), "--force"], toy_env, tmp_path)
    res = _run([*args, "--resume"], toy_env, tmp_path, check=False)
    assert res.returncode == 2 and "are not the ones it was started with" in res.stderr
    assert "start over with --force" in res.stderr
    # Nothing to blend with: refused before anything is written.
    bad = ["resnet18", *COMMON, "--max-steps", "2", "--out", str(tmp_path / "bad")]
    bad += ["--set", "model.init_blend=0.5"]
    res = _run(bad, toy_env, tmp_path, check=False)
    assert res.returncode == 2 and "this run starts from none" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and not (tmp_path / "bad" / "config.yaml").exists()
    res = _run([*bad[:-1], "model.init_blend=yes"], toy_env, tmp_path, check=False)
    assert res.returncode == 2 and "not a yes/no" in res.stderr
    # Refused while the config is resolved: --force has not removed the run already in the folder.
    forced = ["resnet18", *COMMON, "--max-steps", "2", "--out", str(first), "--force"]
    res = _run([*forced, "--set", "model.init_blend=0.5"], toy_env, tmp_path, check=False)
    assert res.returncode == 2 and (first / "model.safetensors").is_file()
    # The Python API refuses it too.
    from handzoo.errors import ConfigError
    from handzoo.runner.trainer import Trainer

    with pytest.raises(ConfigError, match="this run starts from none"):
        Trainer(RunConfig().with_overrides({"model.init_blend": 0.5}), tmp_path / "api")


def test_curves_draw_the_blend_as_its_own_point_not_the_lines_end():
    from handzoo.runner.plots import curves_figure

    rows = [
        {"step": 5, "val_pa_mpjpe_mm": 12.0},
        {"step": 10, "val_pa_mpjpe_mm": 10.0},
        {"step": 10, "init_blend": 0.75, "val_pa_mpjpe_mm": 11.0, "val_fine_tuned_pa_mpjpe_mm": 10.0},
    ]
    ax = curves_figure(rows).axes[1]
    lines = {ln.get_label(): list(zip(ln.get_xdata(), ln.get_ydata(), strict=True)) for ln in ax.lines}
    assert lines["model (validation)"] == [(5, 12.0), (10, 10.0)]
    assert lines["exported blend, 75 % fine-tuned"] == [(10, 11.0)]
