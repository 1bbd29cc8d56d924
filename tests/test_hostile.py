"""Files from strangers: hostile images for ``predict`` and pickles dressed up as weights.

Every hostile image is refused (or, when it is a real if odd image, predicted)
with one line naming it, the rest of the folder is processed, and memory stays
bounded; no pickle is ever unpickled, whether it comes as a local file or
through a catalogue entry served over HTTP.
"""

from __future__ import annotations

import json
import os
import pickle
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import handzoo
from handzoo.errors import HandzooError
from handzoo.zoo.schema import WeightEntry
from tests.conftest import export_random_weights, predict_args
from tests.http_server import serve_folder

BOMB_SIDE = 30_000  # declared 30,000 × 30,000 pixels: 2.7 GB as RGB, were it decoded


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def write_png_bomb(path: Path, side: int = BOMB_SIDE) -> Path:
    """A 60-byte PNG whose header declares side × side RGB pixels (a decompression bomb's header)."""
    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    body = _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(b"\0" * 64)) + _chunk(b"IEND", b"")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + body)
    return path


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    return export_random_weights(tmp_path_factory.mktemp("w"), "resnet18", 32)


def test_hostile_images_are_refused_one_line_each_and_the_rest_is_predicted(weights, tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(photos / "good.jpg")
    Image.new("CMYK", (40, 30), (10, 200, 30, 5)).save(photos / "cmyk.jpg")  # real, if odd
    Image.new("RGB", (1, 1), (200, 10, 10)).save(photos / "dot.png")  # one pixel
    write_png_bomb(photos / "bomb.png")
    full = photos / "good.jpg"
    (photos / "truncated.jpg").write_bytes(full.read_bytes()[: len(full.read_bytes()) // 2])
    (photos / "notes.jpg").write_text("this is not an image\n")
    out = tmp_path / "out"
    code = (
        "import resource, sys\n"
        "from handzoo.cli import main\n"
        "try:\n"
        "    main(sys.argv[1:])\n"
        "except SystemExit as stop:\n"
        "    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024\n"
        "    print(f'PEAK_MB={peak}', file=sys.stderr)\n"
        "    raise\n"
    )
    args = predict_args(photos, weights, out)
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert done.returncode == 1, done.stderr  # some images could not be read
    warnings = [line for line in done.stderr.splitlines() if line.startswith("handzoo: warning: skipped")]
    assert sorted(Path(w.split()[3]).name for w in warnings) == ["bomb.png", "notes.jpg", "truncated.jpg"]
    bomb = next(w for w in warnings if "bomb.png" in w)
    assert "900000000 pixels" in bomb and "decompression bomb" in bomb  # refused from its header
    for name in ("good", "cmyk", "dot"):  # odd but real images are predicted
        data = json.loads((out / f"{name}.json").read_text())
        assert len(data["joints3d_mm"]) == 21 and (out / f"{name}_skeleton.png").is_file()
    assert "3 of 6 images could not be read" in done.stderr
    peak_mb = int(done.stderr.split("PEAK_MB=")[1].split()[0])
    # The decoded bomb alone would be 2,700 MB; torch and the model take 0.8-1.8 GB depending on the build.
    assert peak_mb < 2500, f"peak memory {peak_mb} MB: the bomb must be refused before decoding"
    print(f"predict over the hostile folder: peak memory {peak_mb} MB")


class _Payload:
    """Unpickling this writes a marker file: the proof that a pickle was deserialised."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "unpickled"))


def test_a_pickle_named_safetensors_is_refused_without_being_unpickled(tmp_path):
    marker = tmp_path / "UNPICKLED"
    evil = tmp_path / "model.safetensors"
    evil.write_bytes(pickle.dumps({"state_dict": _Payload(marker)}))
    with pytest.raises(HandzooError, match="not a readable safetensors file"):
        handzoo.create_model(weights=evil)
    torch_file = tmp_path / "model.pth"
    torch_file.write_bytes(evil.read_bytes())
    with pytest.raises(HandzooError, match="never pickles"):
        handzoo.create_model("resnet18", weights=torch_file)
    assert not marker.exists()


def test_catalogue_entries_for_pickles_are_refused_and_served_pickles_never_unpickled(tmp_path, monkeypatch):
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="pickles are never loaded"):
        WeightEntry(tag="evil", url="https://example.org/resnet18.pth", sha256="0" * 64)
    marker = tmp_path / "UNPICKLED"
    served = tmp_path / "served"
    served.mkdir()
    payload = pickle.dumps(_Payload(marker))
    (served / "resnet18-evil.safetensors").write_bytes(payload)
    import hashlib

    digest = hashlib.sha256(payload).hexdigest()
    zoo = tmp_path / "zoo.yaml"
    with serve_folder(served) as server:
        zoo.write_text(
            "version: 1\narchitectures:\n  resnet18:\n    weights:\n"
            f"    - tag: evil\n      url: {server.url}/resnet18-evil.safetensors\n"
            f"      sha256: {digest}\n      size: {len(payload)}\n"
        )
        monkeypatch.setenv("HANDZOO_ZOO", str(zoo))
        with pytest.raises(HandzooError, match="not a readable safetensors file"):
            handzoo.create_model("resnet18:evil", pretrained=True)
    assert not marker.exists()
