"""Verified downloads (handzoo.zoo.hub) against a real HTTP server on 127.0.0.1.

The payload is random bytes named like published weights: the hub moves and
verifies bytes, it never parses them (loading is tested in test_publish.py).
Every failure must leave the cache clean: no final file, and a ``.part`` only
after a transient error (for the next attempt to resume).
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import numpy as np
import pytest

import handzoo
from handzoo.errors import HandzooError, UsageError
from handzoo.zoo.catalogue import parse_zoo
from handzoo.zoo.hub import (
    DownloadError,
    IntegrityError,
    cached_path,
    fetch,
    parse_hf_url,
    weight_entry,
    weights_cache_dir,
)
from handzoo.zoo.schema import parse_ref
from tests.http_server import serve_folder

NAME = "resnet18-0badc0de.safetensors"
DATA = np.random.default_rng(0).integers(0, 256, size=200_000, dtype=np.uint8).tobytes()
CACHED = f"{hashlib.sha256(DATA).hexdigest()[:16]}-{NAME}"  # the cache names it by content, then name
FAST = {"timeout": 2.0, "retries": 0, "backoff": 0.0, "progress": False}


@pytest.fixture
def payload(tmp_path: Path) -> tuple[Path, bytes, str]:
    """A served folder holding one 200 kB 'weights' file; returns (folder, bytes, sha256)."""
    data = DATA
    served = tmp_path / "served"
    served.mkdir()
    (served / NAME).write_bytes(data)
    return served, data, hashlib.sha256(data).hexdigest()


def cache_files() -> list[str]:
    """Names in the weights cache, lock files aside."""
    cache = weights_cache_dir()
    return sorted(p.name for p in cache.iterdir() if p.is_file()) if cache.is_dir() else []


def test_download_is_verified_cached_and_then_used_offline(payload):
    served, data, sha = payload
    with serve_folder(served) as server:
        path = fetch(f"{server.url}/{NAME}", sha, size=len(data), **FAST)
        assert [r[2] for r in server.requests] == [200]
    assert path == weights_cache_dir() / CACHED and path.read_bytes() == data
    assert cache_files() == [CACHED]
    # The server is gone: the verified cached copy is used without any network call.
    assert fetch(f"{server.url}/{NAME}", sha, size=len(data), **FAST) == path


def test_a_cached_file_that_no_longer_matches_is_downloaded_again(payload):
    served, data, sha = payload
    with serve_folder(served) as server:
        path = fetch(f"{server.url}/{NAME}", sha, **FAST)
        path.write_bytes(b"x" + data[1:])  # bit rot / tampering in the cache
        with pytest.warns(UserWarning, match="does not match its sha256 any more"):
            again = fetch(f"{server.url}/{NAME}", sha, **FAST)
        assert len(server.requests) == 2
    assert again.read_bytes() == data


def test_hash_mismatch_is_a_clear_error_and_deletes_the_download(payload):
    served, data, sha = payload
    (served / NAME).write_bytes(data[:-1] + b"\x00")  # tampered on the server, same size
    with serve_folder(served) as server:
        url = f"{server.url}/{NAME}"
        with pytest.raises(IntegrityError) as info:
            fetch(url, sha, size=len(data), **FAST)
    message = str(info.value)
    assert message.startswith(f"{url}: the downloaded file's sha256 is")
    assert sha[:16] in message and "republish" in message and "\n" not in message
    assert cache_files() == []  # neither the final file nor a .part


def test_404_is_a_clear_error_without_retries_and_leaves_nothing(payload):
    served, _, sha = payload
    with serve_folder(served) as server:
        url = f"{server.url}/resnet18-missing0.safetensors"
        with pytest.raises(DownloadError) as info:
            fetch(url, sha, timeout=2.0, retries=3, backoff=0.0, progress=False)
        assert [r[2] for r in server.requests] == [404]  # a permanent error is not retried
    assert str(info.value).startswith(f"{url}: HTTP 404")
    assert "check the weight url" in str(info.value) and not info.value.transient
    assert cache_files() == []


def test_a_stalled_server_times_out_after_the_retries(payload):
    served, _, sha = payload
    with serve_folder(served) as server:
        server.faults.stall = 30.0
        url = f"{server.url}/{NAME}"
        with pytest.raises(DownloadError) as info:
            fetch(url, sha, timeout=0.5, retries=1, backoff=0.01, progress=False)
    message = str(info.value)
    assert message.startswith(f"{url}: timed out waiting for the server (gave up after 2 attempts)")
    assert "run the command again" in message and info.value.transient
    assert cache_files() == []


def test_truncated_transfer_keeps_a_part_that_the_next_attempt_resumes(payload):
    served, data, sha = payload
    url = None
    with serve_folder(served) as server:
        url = f"{server.url}/{NAME}"
        server.faults.truncate = 0.4
        with pytest.raises(DownloadError) as info:
            fetch(url, sha, size=len(data), **FAST)
        assert "truncated transfer: the connection closed after 80000 of 200000 bytes" in str(info.value)
        assert cache_files() == [CACHED + ".part"]  # transient: kept for resume, never the final name
        part = weights_cache_dir() / (CACHED + ".part")
        assert part.read_bytes() == data[:80_000]

        server.faults.truncate = None
        path = fetch(url, sha, size=len(data), **FAST)
        # The server saw a Range request for exactly the missing bytes and answered 206.
        assert server.requests[-1] == (f"/{NAME}", "bytes=80000-", 206)
    assert path.read_bytes() == data and cache_files() == [CACHED]


def test_retries_resume_after_each_truncation_and_back_off_exponentially(payload, monkeypatch):
    served, data, sha = payload
    sleeps: list[float] = []
    monkeypatch.setattr("handzoo.zoo.hub.time.sleep", sleeps.append)
    with serve_folder(served) as server:
        server.faults.fail_first = 2  # two 503s, then half of what is asked for, then the rest
        url = f"{server.url}/{NAME}"
        server.faults.truncate = 0.5
        with pytest.raises(DownloadError, match="gave up after 4 attempts"):
            fetch(url, sha, size=len(data), timeout=2.0, retries=3, backoff=0.25, progress=False)
        assert sleeps == [0.25, 0.5, 1.0]
        assert [r[1:] for r in server.requests] == [
            (None, 503),
            (None, 503),
            (None, 200),
            ("bytes=100000-", 206),
        ]
        server.faults.truncate = None
        assert fetch(url, sha, size=len(data), **FAST).read_bytes() == data
        assert server.requests[-1][1] == "bytes=150000-"


def test_a_server_that_ignores_range_restarts_the_file(payload):
    served, data, sha = payload
    part = weights_cache_dir() / (CACHED + ".part")
    part.parent.mkdir(parents=True, exist_ok=True)
    part.write_bytes(data[:5000])
    with serve_folder(served) as server:
        server.faults.ranges = False
        path = fetch(f"{server.url}/{NAME}", sha, size=len(data), **FAST)
        assert server.requests == [(f"/{NAME}", "bytes=5000-", 200)]
    assert path.read_bytes() == data and cache_files() == [CACHED]


def test_local_paths_and_file_urls_are_verified_in_place(payload):
    served, data, sha = payload
    local = served / NAME
    assert fetch(str(local), sha) == local
    assert fetch(local.as_uri(), sha) == local
    assert cache_files() == []  # a local file is not copied
    local.write_bytes(data + b"!")
    with pytest.raises(IntegrityError, match=f"^{local}: sha256 is"):
        fetch(local.as_uri(), sha)
    assert local.exists()  # the user's own file is never deleted
    with pytest.raises(DownloadError, match="no such file"):
        fetch((served / "gone.safetensors").as_uri(), sha)


def test_hf_sources_need_huggingface_hub_and_fail_clearly_offline(payload, monkeypatch):
    assert parse_hf_url("hf://org/repo@v1/sub/w.safetensors") == ("org/repo", "v1", "sub/w.safetensors")
    with pytest.raises(UsageError, match="expected hf://org/repo/file"):
        parse_hf_url("hf://org/w.safetensors")
    url = "hf://handzoo-test/none/resnet18-0badc0de.safetensors"
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)  # as if not installed
    with pytest.raises(UsageError, match="pip install huggingface_hub"):
        fetch(url, "0" * 64, progress=False)
    monkeypatch.delitem(sys.modules, "huggingface_hub")
    constants = pytest.importorskip("huggingface_hub.constants")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # never reach the network from a test
    with pytest.raises(DownloadError, match="the Hugging Face Hub download failed") as info:
        fetch(url, "0" * 64, progress=False)
    assert str(info.value).startswith(url) and "\n" not in str(info.value)
    assert cache_files() == []


ZOO = """
version: 1
architectures:
  resnet18:
    weights:
      - {{tag: a, url: "{url}/a-00000000.safetensors", sha256: "{sha}", size: 3}}
      - {{tag: b, url: "{url}/b-00000000.safetensors", sha256: "{sha}", size: 3}}
  resnet34: {{}}
"""


def test_names_and_tags_resolve_to_catalogue_entries():
    zoo = parse_zoo(ZOO.format(url="https://example.org", sha="1" * 64))
    assert parse_ref("resnet18") == ("resnet18", None)
    assert parse_ref("timm/convnext_tiny:synth") == ("timm/convnext_tiny", "synth")
    assert weight_entry("resnet18", None, zoo).tag == "a"  # the first entry is the default
    assert weight_entry("resnet18", "b", zoo).url.endswith("/b-00000000.safetensors")
    with pytest.raises(UsageError, match=r"resnet18 has no weights tagged 'c' .*\(tags: a, b\)"):
        weight_entry("resnet18", "c", zoo)
    for name in ("resnet34", "resnet50"):
        with pytest.raises(UsageError, match=f"no published handzoo weights for '{name}' yet"):
            weight_entry(name, None, zoo)
    with pytest.raises(UsageError, match="expected NAME or NAME:TAG"):
        parse_ref("resnet18:")


def test_pull_cli_prints_the_verified_path_and_one_line_errors(payload, tmp_path, monkeypatch, capsys):
    from handzoo.cli import main

    served, data, sha = payload
    with serve_folder(served) as server:
        zoo = tmp_path / "zoo.yaml"
        text = ZOO.format(url=server.url, sha=sha).replace("a-00000000", NAME.removesuffix(".safetensors"))
        zoo.write_text(text.replace("size: 3", f"size: {len(data)}"))
        monkeypatch.setenv("HANDZOO_ZOO", str(zoo))

        def cli(*args: str) -> tuple[int, str, str]:
            with pytest.raises(SystemExit) as done:
                main(list(args))
            out, err = capsys.readouterr()
            return done.value.code, out, err

        code, out, _ = cli("pull", "resnet18:a", "--quiet")
        assert code == 0 and out.strip() == str(weights_cache_dir() / CACHED)
        code, _, err = cli("pull", "resnet18:b", "--retries", "0")
        assert code == 1
        assert err.strip() == (
            f"handzoo: error: {server.url}/b-00000000.safetensors: HTTP 404 Not Found; the server does "
            "not have the file: check the weight url in the catalogue (or --url-base when publishing)"
        )
        code, _, err = cli("pull", "resnet18:zzz")
        assert code == 2 and err.count("\n") == 1 and "(tags: a, b)" in err
    assert issubclass(DownloadError, HandzooError) and issubclass(IntegrityError, HandzooError)


def test_pull_of_an_unknown_name_suggests_registered_ones():
    """It used to advise `handzoo run nosuchmodel`, which fails."""
    from handzoo.cli import main

    with pytest.raises(SystemExit) as done:
        main(["pull", "resnet10"])
    assert done.value.code == 2
    with pytest.raises(handzoo.UnknownNameError, match="unknown model 'nosuchmodel'"):
        handzoo.create_model("nosuchmodel", pretrained=True)


# ----------------------------------------------------------------------------- bounds and cache keys
def test_the_cache_is_keyed_by_content_not_by_the_file_name(tmp_path):
    """Two servers' model.safetensors never share a cache entry (the second is fetched from its server)."""
    folders = []
    for k in range(2):
        folder = tmp_path / f"server{k}"
        folder.mkdir()
        (folder / "model.safetensors").write_bytes(bytes([k]) * 1000)
        folders.append(folder)
    with serve_folder(folders[0]) as a, serve_folder(folders[1]) as b:
        with pytest.warns(UserWarning, match="not verified"):
            got_a = fetch(f"{a.url}/model.safetensors", None, **FAST)
        with pytest.warns(UserWarning, match="not verified"):
            got_b = fetch(f"{b.url}/model.safetensors", None, **FAST)
        assert len(b.requests) == 1  # B was asked, not answered from A's copy
    assert got_a.read_bytes() == b"\0" * 1000 and got_b.read_bytes() == b"\1" * 1000
    assert got_a != got_b and got_a.name.endswith("-model.safetensors")
    # With a catalogue sha256 the key is the content's digest, whatever the URL.
    digest = hashlib.sha256(b"\1" * 1000).hexdigest()
    assert cached_path("http://x/model.safetensors", digest).name == f"{digest[:16]}-model.safetensors"


def test_an_endless_body_stops_at_the_catalogue_size_and_leaves_nothing(payload):
    served, data, sha = payload
    with serve_folder(served) as server:
        server.faults.endless = True
        url = f"{server.url}/{NAME}"
        with pytest.raises(DownloadError) as info:
            fetch(url, sha, size=len(data), **FAST)
    message = str(info.value)
    assert message.startswith(f"{url}: the server sent more than {len(data)} bytes, the size its catalogue")
    assert "\n" not in message and not info.value.transient
    assert cache_files() == []  # neither the final file nor a .part


def test_a_download_of_unknown_size_stops_at_the_cap(payload, monkeypatch):
    served, _, sha = payload
    monkeypatch.setenv("HANDZOO_MAX_DOWNLOAD_BYTES", "300000")
    with serve_folder(served) as server:
        server.faults.endless = True
        cap = r"more than 300000 bytes, the cap .*HANDZOO_MAX_DOWNLOAD_BYTES"
        with pytest.raises(DownloadError, match=cap):
            fetch(f"{server.url}/{NAME}", sha, **FAST)
    assert cache_files() == []
    monkeypatch.setenv("HANDZOO_MAX_DOWNLOAD_BYTES", "lots")
    with pytest.raises(UsageError, match="HANDZOO_MAX_DOWNLOAD_BYTES='lots' is not a positive whole number"):
        fetch(f"{server.url}/{NAME}", sha, **FAST)


def test_a_trickling_server_meets_the_deadline_and_releases_the_lock(payload, monkeypatch):
    import time

    served, data, sha = payload
    monkeypatch.setenv("HANDZOO_DOWNLOAD_DEADLINE", "1.5")
    with serve_folder(served) as server:
        server.faults.trickle = 0.05  # a byte every 50 ms: never a per-read timeout
        url = f"{server.url}/{NAME}"
        began = time.monotonic()
        with pytest.raises(DownloadError, match=r"did not finish within 1.5 s \(\d+ bytes received\)"):
            fetch(url, sha, size=len(data), timeout=5.0, retries=3, backoff=0.0, progress=False)
        assert time.monotonic() - began < 10
        assert CACHED not in cache_files()  # at most a .part to resume, never the final name
        server.faults.trickle = None
        assert fetch(url, sha, size=len(data), **FAST).read_bytes() == data  # the lock was released


def test_a_remote_catalogue_is_read_with_a_size_bound(tmp_path, monkeypatch):
    from handzoo.zoo import catalogue

    (tmp_path / "zoo.yaml").write_text("version: 1\narchitectures: {}\n")
    monkeypatch.setattr(catalogue, "CATALOGUE_MAX_BYTES", 100_000)
    with serve_folder(tmp_path) as server:
        server.faults.endless = True
        with pytest.raises(UsageError, match=r"cannot download the catalogue .*more than 100000 bytes"):
            catalogue._read_text(f"{server.url}/zoo.yaml")
        server.faults.endless = False
        assert catalogue._read_text(f"{server.url}/zoo.yaml").startswith("version: 1")
