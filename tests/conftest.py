"""Shared fixtures: real on-disk plugin distributions and a fresh plugin host."""

from __future__ import annotations

import os
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

# No test may reach the network or the user's cache.
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HANDZOO_HOME", str(tmp_path_factory.mktemp("handzoo_home")))
    monkeypatch.delenv("HANDZOO_PLUGINS", raising=False)


def write_distribution(
    site: Path,
    dist_name: str,
    version: str,
    entry_points: dict[str, str],
    modules: dict[str, str],
) -> Path:
    """Write an installed distribution (a ``*.dist-info`` plus its modules) into ``site``.

    This is what pip leaves in site-packages, so importlib.metadata discovers
    its ``handzoo`` entry points exactly as for a real install.
    """
    site.mkdir(parents=True, exist_ok=True)
    for module, source in modules.items():
        path = site / (module.replace(".", "/") + ".py")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source))
    info = site / f"{dist_name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist_name}\nVersion: {version}\n")
    eps = "".join(f"{name} = {target}\n" for name, target in entry_points.items())
    (info / "entry_points.txt").write_text(f"[handzoo]\n{eps}")
    (info / "RECORD").write_text("")
    return site


@pytest.fixture
def plugin_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A site directory on sys.path (and PYTHONPATH, for subprocesses) for test distributions."""
    import importlib

    import handzoo.plugins

    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]))
    handzoo.plugins.reset()
    yield site
    handzoo.plugins.reset()
    for name in list(sys.modules):
        module = sys.modules[name]
        if str(getattr(module, "__file__", "") or "").startswith(str(site)):
            del sys.modules[name]
    importlib.invalidate_caches()


@pytest.fixture
def toy_env(plugin_site, tmp_path):
    """The toy dataset plugin of :mod:`tests.toy_runs` installed; the environment for subprocesses."""
    from tests.toy_runs import TOY_DATASET

    write_distribution(
        plugin_site,
        "handzoo-randomhands",
        "0.1",
        {"randomhands": "hz_randomhands"},
        {"hz_randomhands": TOY_DATASET},
    )
    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = "1"
    return env


def export_random_weights(folder: Path, name: str = "resnet18", image_size: int = 64) -> Path:
    """A seeded, untrained model exported the way ``handzoo run`` exports it (model.safetensors)."""
    import torch

    import handzoo
    from handzoo.interfaces import part_metadata
    from handzoo.weights import export_weights, weights_metadata

    torch.manual_seed(0)
    model = handzoo.create_model(name, image_size=image_size).eval()
    cfg = {"model": {"name": name, "options": {}}, "data": {"image_size": image_size}}
    meta = weights_metadata(name, cfg, model.preprocessing, {}, part_metadata(model))
    return export_weights(model, Path(folder) / "model.safetensors", meta)


def predict_args(inputs: Path, weights: Path, out: Path, *extra: str) -> list[str]:
    """``handzoo predict resnet18 INPUTS --weights W --out OUT --device cpu`` plus ``extra``, as CLI args."""
    return [
        "predict",
        "resnet18",
        str(inputs),
        "--weights",
        str(weights),
        "--out",
        str(out),
        "--device",
        "cpu",
        *extra,
    ]


# MediaPipe's hand and palm networks, the real files. The one fixture that reaches the network: pip
# downloads mediapipe's wheel from the package index its own configuration names; where it cannot,
# every test using the fixture is skipped, saying why.
@pytest.fixture(scope="session")
def mediapipe_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ``HANDZOO_HOME`` kept for the whole test run, where :func:`mediapipe_tflite` caches its files."""
    return tmp_path_factory.mktemp("mediapipe_home")


@pytest.fixture(scope="session")
def mediapipe_tflite(mediapipe_home: Path) -> dict[str, Path]:
    """The verified .tflite files of mediapipe 0.10.21's wheel, fetched once per test run.

    Keys: ``hand_landmark_full``, ``hand_landmark_lite`` (the catalogue's
    ``pypi:`` entries of ``mediapipe-hand-full``/``-lite``), ``palm_detection_full``,
    ``palm_detection_lite``. The paths are the raw files in
    ``mediapipe_home/weights/pypi/``, fetched as ``handzoo pull`` fetches them
    (one ``pip download`` of the pinned wheel, each inner file checked by sha256).
    """
    from handzoo_blaze.sources import PALM_FILES

    from handzoo.zoo.hub import DownloadError, weight_entry
    from handzoo.zoo.pypi import InnerFile, fetch_inners

    files = {}
    for variant in ("full", "lite"):
        entry = weight_entry(f"mediapipe-hand-{variant}")
        files[f"hand_landmark_{variant}"] = InnerFile(entry.url, entry.sha256, entry.size)
    files.update({f"palm_detection_{variant}": file for variant, file in PALM_FILES.items()})
    try:
        paths = fetch_inners(
            list(files.values()), cache_dir=mediapipe_home / "weights", timeout=20, retries=1, progress=False
        )
    except DownloadError as exc:
        if os.environ.get("HANDZOO_TEST_REQUIRE_MEDIAPIPE") == "1":  # CI: these tests must run
            raise
        pytest.skip(f"MediaPipe's .tflite files cannot be fetched here: {exc}")
    return dict(zip(files, paths, strict=True))
