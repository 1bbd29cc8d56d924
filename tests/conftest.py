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
