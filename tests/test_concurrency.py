"""One cache, several processes: concurrent pulls, synthetic-set generation and image-cache builds.

Each case starts real processes at once on one ``HANDZOO_HOME``; exactly one
complete, verified copy must result, every process must succeed and see it,
and nothing partial may be left under a final name.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from tests.freihand_fixture import write_freihand_fixture
from tests.http_server import serve_folder

ROOT = Path(__file__).resolve().parents[1]


def _start(code: str, env: dict[str, str], n: int) -> list[subprocess.Popen]:
    return [
        subprocess.Popen(
            [sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(n)
    ]


def _finish(procs: list[subprocess.Popen]) -> list[str]:
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=600)
        assert p.returncode == 0, err[-2000:]
        outs.append(out.strip())
    return outs


def test_four_concurrent_pulls_give_one_verified_copy(tmp_path):
    payload = np.random.default_rng(0).integers(0, 256, 3_000_000, dtype=np.uint8).tobytes()
    served = tmp_path / "served"
    served.mkdir()
    (served / "resnet18-cafe.safetensors").write_bytes(payload)
    digest = hashlib.sha256(payload).hexdigest()
    home = tmp_path / "home"
    env = {**os.environ, "HANDZOO_HOME": str(home), "HANDZOO_ZOO": str(tmp_path / "zoo.yaml")}
    with serve_folder(served) as server:
        server.faults.stall = 0.5  # every answer waits: the four are in flight together
        (tmp_path / "zoo.yaml").write_text(
            "version: 1\narchitectures:\n  resnet18:\n    weights:\n"
            f"    - tag: t\n      url: {server.url}/resnet18-cafe.safetensors\n"
            f"      sha256: {digest}\n      size: {len(payload)}\n"
        )
        code = "from handzoo.cli import main; main(['pull', 'resnet18:t', '--quiet'])"
        paths = _finish(_start(code, env, 4))
    assert len(set(paths)) == 1
    cache = home / "weights"
    files = sorted(p.name for p in cache.rglob("*") if p.is_file() and p.suffix != ".lock")
    assert files == [Path(paths[0]).name], files  # one copy, no partial files left (locks may stay)
    assert hashlib.sha256(Path(paths[0]).read_bytes()).hexdigest() == digest


def test_two_processes_generating_the_synthetic_set_see_the_same_complete_set(tmp_path):
    env = {**os.environ, "HANDZOO_HOME": str(tmp_path / "home")}
    code = (
        "from handzoo.data.synthetic import ensure_synthetic\n"
        "print(ensure_synthetic(num=24, num_eval=4, progress=False))"
    )
    roots = _finish(_start(code, env, 2))
    assert len(set(roots)) == 1
    root = Path(roots[0])
    assert len(list((root / "training" / "rgb").glob("*.jpg"))) == 24
    assert len(json.loads((root / "training_xyz.json").read_text())) == 24
    leftovers = [p.name for p in root.parent.iterdir() if p != root]
    assert not leftovers, leftovers  # the loser's temporary folder is gone


def test_two_runs_building_the_same_image_cache_share_one_correct_copy(tmp_path, monkeypatch):
    root = tmp_path / "freihand"
    write_freihand_fixture(root, num_unique=40, num_versions=2, size=64, num_eval=2, seed=2)
    env = {**os.environ, "HANDZOO_HOME": str(tmp_path / "home")}
    code = (
        "import handzoo, numpy as np\n"
        f"ds = handzoo.create_dataset('freihand', root={str(root)!r}, image_size=32, image_cache=True)\n"
        "print(ds.cache.folder)\n"
    )
    folders = _finish(_start(code, env, 2))
    assert len(set(folders)) == 1, folders  # stdout holds the folder only: progress goes to stderr
    folder = Path(folders[0])
    siblings = [p.name for p in folder.parent.iterdir() if p != folder]
    assert not siblings, siblings
    # The shared cache holds what a fresh decode gives (no torn or partial rows).
    import handzoo

    monkeypatch.setenv("HANDZOO_HOME", str(tmp_path / "home"))
    cached = handzoo.create_dataset("freihand", root=str(root), image_size=32, image_cache=True)
    plain = handzoo.create_dataset("freihand", root=str(root), image_size=32)
    for i in (0, len(plain) // 2, len(plain) - 1):
        np.testing.assert_allclose(cached[i]["image"].numpy(), plain[i]["image"].numpy(), atol=0.05)
