"""The batched augmentation pipeline (``data.pipeline=device``), run on the CPU.

The same invariants as the CPU pipeline's (tests/test_augment.py), plus
agreement with it: the same parameters give the same image within
interpolation tolerance, and random draws follow the same distributions.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from handzoo_data.augmenters import BUILTIN, Color, Flip, Rotate, Scale
from handzoo_data.batched import colour_jitter, fill_polygons
from scipy.stats import ks_2samp

from handzoo.config import RunConfig
from handzoo.data.augment import DEFAULT_TRAIN_AUGMENT, apply_transform, build_pipeline, transform_mano
from handzoo.data.device_augment import device_pipeline, warp_batch
from handzoo.data.device_augment import transform_mano as transform_mano_batched
from handzoo.errors import ConfigError
from handzoo.geometry import axis_angle_to_matrix, project
from handzoo.runner.datasets import choose_pipeline
from handzoo.runner.trainer import Trainer
from tests.freihand_fixture import write_freihand_fixture
from tests.test_augment import COMPOSITIONS, SIZE, find_marker, make_sample

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def collate(samples: list[dict]) -> dict:
    """Raw numpy samples -> the batch a DataLoader ships to the device pipeline (uint8 images)."""
    batch = {
        "image": torch.from_numpy(np.stack([s["image"] for s in samples])).permute(0, 3, 1, 2).contiguous(),
        "mask": torch.from_numpy(np.stack([s["mask"] for s in samples])),
        "mano_valid": torch.tensor([bool(s["mano_valid"]) for s in samples]),
    }
    for key in ("K", "joints3d", "joints2d", "verts", "mano"):
        batch[key] = torch.from_numpy(np.stack([s[key] for s in samples]).astype(np.float32))
    return batch


def batched(names, cfg=None, fuse=True):
    twin, why = device_pipeline(build_pipeline(names, cfg, fuse=fuse), MEAN, STD)
    assert twin is not None, why
    return twin


def run(pipe, samples, seed=0):
    return pipe(collate(samples), torch.Generator().manual_seed(seed), normalise=False)


def reprojection_error(out: dict) -> float:
    """Max distance (px) between project(joints3d, K) and the 2D track moved by the pixel affines."""
    uv = project(out["joints3d"].double().numpy(), out["K"].double().numpy())
    return float(np.abs(uv - out["joints2d"].double().numpy()).max())


def as_uint8(image: torch.Tensor) -> np.ndarray:
    """(3,H,W) float 0..255 -> (H,W,3) uint8, as the CPU pipeline would store it."""
    return image.permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()


# -- the projection invariant -------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_each_batched_augmenter_keeps_projection(name: str) -> None:
    samples = [make_sample(seed) for seed in range(6)]
    out = run(batched([name], {name: {"p": 1.0}}), samples)
    assert reprojection_error(out) < 0.5
    assert out["image"].shape == (6, 3, SIZE, SIZE) and out["image"].dtype == torch.float32
    assert out["mask"].shape == (6, SIZE, SIZE) and set(out["mask"].unique().tolist()) <= {0, 1}
    assert float(out["image"].min()) >= 0 and float(out["image"].max()) <= 255


@pytest.mark.parametrize("names", COMPOSITIONS, ids=lambda n: "+".join(n))
@pytest.mark.parametrize("fuse", [True, False])
def test_batched_compositions_keep_projection_and_rigid_labels(names: list[str], fuse: bool) -> None:
    samples = [make_sample(seed) for seed in range(6)]
    out = run(batched(names, {n: {"p": 1.0} for n in set(names)}, fuse=fuse), samples)
    assert reprojection_error(out) < 0.5
    for i, sample in enumerate(samples):
        before = np.linalg.norm(sample["verts"] - sample["joints3d"][0], axis=1)
        after = np.linalg.norm(
            out["verts"][i].double().numpy() - out["joints3d"][i, 0].double().numpy(), axis=1
        )
        np.testing.assert_allclose(after, before, atol=1e-5)


# -- the image moves with the labels ------------------------------------------------------
@pytest.mark.parametrize(
    "names", [["rotate"], ["flip"], ["scale"], ["rotate", "flip", "scale"]], ids=lambda n: "+".join(n)
)
def test_batched_marker_follows_joint(names: list[str]) -> None:
    cfg = {
        "rotate": {"p": 1.0},
        "flip": {"p": 1.0},
        "scale": {"p": 1.0, "scale": (0.8, 1.25), "translate": 0.05},
    }
    joints = [4 + seed % 17 for seed in range(12)]
    samples = [make_sample(seed, marker_joint=j) for seed, j in enumerate(joints)]
    out = run(batched(names, {n: cfg[n] for n in names}), samples, seed=5)
    checked = 0
    for i, joint in enumerate(joints):
        target = project(out["joints3d"][i].double().numpy(), out["K"][i].double().numpy())[joint]
        if not (target >= 5).all() or not (target <= SIZE - 5).all():
            continue  # the marker left the image
        peak, centroid = find_marker(as_uint8(out["image"][i]))
        assert np.abs(peak - target).max() <= 1.0, (i, peak, target)
        assert np.abs(centroid - target).max() <= 0.25, (i, centroid, target)
        checked += 1
    assert checked >= 6


# -- identities -----------------------------------------------------------------------------
def test_batched_flip_twice_and_rotate_by_zero_are_identities() -> None:
    samples = [make_sample(seed) for seed in range(4)]
    batch = collate(samples)
    for pipe in (
        batched(["flip", "flip"], {"flip": {"p": 1.0}}),
        batched(["rotate"], {"rotate": {"degrees": 0}}),
    ):
        out = run(pipe, samples)
        torch.testing.assert_close(out["image"], batch["image"].float(), atol=1e-3, rtol=0)
        assert torch.equal(out["mask"], batch["mask"])
        for key in ("K", "joints3d", "joints2d", "verts", "mano"):
            torch.testing.assert_close(out[key], batch[key], atol=1e-5, rtol=1e-6)
        assert out["mano_valid"].all()  # two mirrors are a rotation by 0: still a right hand


def test_probability_zero_only_resizes_nothing_and_normalises() -> None:
    samples = [make_sample(seed) for seed in range(3)]
    names = list(DEFAULT_TRAIN_AUGMENT)
    pipe = batched(names, {n: {"p": 0.0} for n in names})
    out = pipe(collate(samples), torch.Generator().manual_seed(0))
    expected = (collate(samples)["image"].float() / 255 - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(
        STD
    ).view(1, 3, 1, 1)
    torch.testing.assert_close(out["image"], expected, atol=1e-5, rtol=1e-5)


# -- the same parameters give the same result as the CPU pipeline -----------------------------
@pytest.mark.parametrize("aug", [Rotate(p=1.0), Flip(p=1.0), Scale(p=1.0)], ids=lambda a: a.name)
def test_same_warp_as_the_cpu_pipeline(aug) -> None:
    for seed in range(4):
        sample = make_sample(seed)
        t = aug.draw((SIZE, SIZE), sample["K"], np.random.default_rng(seed))
        cpu = apply_transform(sample, t.A, t.M, (SIZE, SIZE), aug.border, t.M_inv)
        batch = collate([sample])
        image, mask = warp_batch(
            batch["image"].float(), batch["mask"].float(), torch.from_numpy(t.A)[None], (SIZE, SIZE)
        )
        diff = np.abs(as_uint8(image[0]).astype(int) - cpu["image"].astype(int))
        # OpenCV interpolates with 5-bit fixed-point weights and rounds; torch in float
        assert diff.mean() < 0.5 and diff.max() <= 3, (seed, diff.mean(), diff.max())
        assert (mask[0].numpy().astype(np.uint8) != cpu["mask"]).mean() < 0.01


def test_same_colour_matrix_as_the_cpu_color() -> None:
    aug = Color(p=1.0, hue=0.2)
    for seed in range(4):
        sample = make_sample(seed)
        p = aug.params
        state = np.random.default_rng(seed)  # the CPU augmenter's draws, replayed
        state.random()  # the probability test
        spread = np.array([p.brightness, p.contrast, p.saturation])
        b, c, s = state.uniform(1 - spread, 1 + spread)
        hue = state.uniform(-p.hue, p.hue)
        cpu = aug(sample, np.random.default_rng(seed))["image"]
        image = collate([sample])["image"].float()
        args = [torch.tensor([v], dtype=torch.float64) for v in (b, c, s, hue)]
        device = as_uint8(colour_jitter(image, *args)[0])
        assert np.abs(device.astype(int) - cpu.astype(int)).max() <= 1


def test_same_mano_transform_as_the_cpu_pipeline() -> None:
    rng = np.random.default_rng(0)
    mano = rng.normal(0, 0.6, (5, 61))
    for aug in (Rotate(p=1.0), Flip(p=1.0), Scale(p=1.0)):
        transforms = [aug.draw((SIZE, SIZE), make_sample(0)["K"], rng) for _ in range(5)]
        A = torch.from_numpy(np.stack([t.A for t in transforms]))
        M = torch.from_numpy(np.stack([t.M for t in transforms]))
        got, valid = transform_mano_batched(torch.from_numpy(mano), torch.ones(5, dtype=torch.bool), A, M)
        for i, t in enumerate(transforms):
            want = transform_mano(mano[i], True, t.A, t.M)
            assert bool(valid[i]) == want["mano_valid"]
            if want["mano_valid"]:  # compare rotations, not axis-angle vectors (2π ambiguity)
                np.testing.assert_allclose(
                    axis_angle_to_matrix(got[i, :3].numpy()),
                    axis_angle_to_matrix(want["mano"][:3]),
                    atol=1e-9,
                )
            np.testing.assert_allclose(got[i, 3:].numpy(), want["mano"][3:], atol=1e-9)


def test_polygon_fill_matches_opencv() -> None:
    import cv2

    rng = np.random.default_rng(1)
    for _ in range(10):
        verts = rng.uniform(4, 60, (6, 2))
        ours = fill_polygons(torch.from_numpy(verts).float()[None, None], (SIZE, SIZE))[0, 0].numpy()
        cv = np.zeros((SIZE, SIZE), np.uint8)
        cv2.fillPoly(cv, [np.round((verts - 0.5) * 16).astype(np.int32)], 1, shift=4)
        # OpenCV fills boundary pixels generously and non-zero-winding; the interiors agree
        assert (ours != cv.astype(bool)).mean() < 0.06


# -- the same distributions as the CPU pipeline ------------------------------------------------
def _pixel_statistics(images: np.ndarray) -> np.ndarray:
    """Per image: mean, spread and mean horizontal gradient of the pixels, (N,3)."""
    x = images.astype(np.float64)
    return np.stack([x.mean((1, 2, 3)), x.std((1, 2, 3)), np.abs(np.diff(x, axis=2)).mean((1, 2, 3))], 1)


@pytest.mark.parametrize("name", ["background", "occlude", "color", "rotate"])
def test_draws_follow_the_cpu_distribution(name: str) -> None:
    n = 160
    samples = [make_sample(seed) for seed in range(n)]
    cfg = {name: {"p": 1.0}}
    cpu_pipe = build_pipeline([name], cfg)
    cpu = [cpu_pipe(s, np.random.default_rng(1000 + i)) for i, s in enumerate(samples)]
    out = run(batched([name], cfg), samples, seed=7)
    if name == "rotate":
        # the in-plane angle of the wrist -> middle-finger MCP direction, before and after
        def angles(uv):
            d = uv[:, 9] - uv[:, 0]
            return np.arctan2(d[:, 1], d[:, 0])

        before = angles(np.stack([s["joints2d"] for s in samples]))
        turned_cpu = np.angle(np.exp(1j * (angles(np.stack([c["joints2d"] for c in cpu])) - before)))
        turned_dev = np.angle(np.exp(1j * (angles(out["joints2d"].double().numpy()) - before)))
        assert ks_2samp(turned_cpu, turned_dev).pvalue > 0.01
        return
    stats_cpu = _pixel_statistics(np.stack([c["image"] for c in cpu]))
    stats_dev = _pixel_statistics(np.stack([as_uint8(im) for im in out["image"]]))
    for k, what in enumerate(("mean", "spread", "gradient")):
        p = ks_2samp(stats_cpu[:, k], stats_dev[:, k]).pvalue
        assert p > 0.01, f"{name}: pixel {what} differs from the CPU pipeline's (KS p = {p:.2g})"
    if name == "occlude":
        covered_cpu = np.array(
            [1 - c["mask"].sum() / max(s["mask"].sum(), 1) for c, s in zip(cpu, samples, strict=True)]
        )
        covered_dev = 1 - out["mask"].double().sum((1, 2)).numpy() / np.array(
            [s["mask"].sum() for s in samples]
        )
        assert ks_2samp(covered_cpu, covered_dev).pvalue > 0.01


# -- the runner chooses and records the pipeline ------------------------------------------------
def test_choose_pipeline_defaults_and_reasons() -> None:
    prep = {"mean": MEAN, "std": STD}
    cfg = RunConfig()
    twin, note = choose_pipeline(cfg, torch.device("cpu"), prep)
    assert twin is None and "CPU" in note  # auto: cpu off CUDA
    twin, note = choose_pipeline(cfg, torch.device("cuda"), prep)
    assert twin is not None and [a.name for a in twin.augmenters] == list(cfg.data.augment)
    folder = cfg.with_overrides({"data.augment_cfg": {"background": {"folder": "/nowhere"}}})
    twin, note = choose_pipeline(folder, torch.device("cuda"), prep)
    assert twin is None and "background" in note and "folder" in note
    with pytest.raises(ConfigError, match="data.pipeline=cpu"):
        choose_pipeline(folder.with_overrides({"data.pipeline": "device"}), torch.device("cpu"), prep)


@pytest.fixture(scope="module")
def fixture_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("freihand")
    write_freihand_fixture(root, num_unique=12, num_versions=2, size=64, num_eval=4, seed=5)
    return root


def test_uint8_samples_normalised_on_the_device_equal_the_cpu_tensors(fixture_root) -> None:
    import handzoo

    common = {"root": str(fixture_root), "image_size": 32, "mean": MEAN, "std": STD}
    cpu = handzoo.create_dataset("freihand", **common)
    raw = handzoo.create_dataset("freihand", uint8_images=True, **common)
    batch = torch.utils.data.default_collate([raw[i] for i in range(4)])
    assert batch["image"].dtype == torch.uint8 and batch["image"].shape == (4, 3, 32, 32)
    out = batched([])(batch, torch.Generator().manual_seed(0))
    want = torch.stack([cpu[i]["image"] for i in range(4)])
    torch.testing.assert_close(out["image"], want, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(
        out["joints2d"], torch.stack([cpu[i]["joints2d"] for i in range(4)]), atol=1e-4, rtol=0
    )


def _config(root, out, steps=6):
    return RunConfig().with_overrides(
        {
            "model.name": "resnet18",
            "data.name": "freihand",
            "data.root": str(root),
            "data.image_size": 32,
            "data.batch_size": 4,
            "data.workers": 0,
            "data.pipeline": "device",
            "data.augment": list(DEFAULT_TRAIN_AUGMENT),
            "run.max_steps": steps,
            "run.checkpoint_every": 3,
            "run.device": "cpu",
            "run.amp": False,
            "run.out": str(out),
            "optim.lr": 1e-3,
        }
    )


def test_device_pipeline_run_records_itself_and_resumes_exactly(fixture_root, tmp_path, monkeypatch) -> None:
    from safetensors.torch import load_file

    full = tmp_path / "full"
    Trainer(_config(fixture_root, full), full).run()
    assert "pipeline: device" in (full / "config.yaml").read_text()

    class Killed(Exception):
        pass

    cut = tmp_path / "cut"
    saved = Trainer._checkpoint

    def checkpoint_then_die(self, *args):
        saved(self, *args)
        if args[4] == 3:  # step
            raise Killed

    monkeypatch.setattr(Trainer, "_checkpoint", checkpoint_then_die)
    with pytest.raises(Killed):
        Trainer(_config(fixture_root, cut), cut).run()
    monkeypatch.setattr(Trainer, "_checkpoint", saved)
    Trainer(_config(fixture_root, cut), cut, resume=True).run()
    a, b = load_file(full / "model.safetensors"), load_file(cut / "model.safetensors")
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6)
