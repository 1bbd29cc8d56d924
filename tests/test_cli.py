"""The CLI as a user runs it: a real process, exit codes and one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

import handzoo


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "handzoo", *args], capture_output=True, text=True, timeout=120
    )


def test_version():
    res = _cli("--version")
    assert res.returncode == 0 and res.stdout.strip() == f"handzoo {handzoo.__version__}"


def test_list_models_pattern_table_and_json():
    res = _cli("list", "models", "resnet*")
    assert res.returncode == 0, res.stderr
    names = [line.split()[0] for line in res.stdout.splitlines()[1:] if line.strip()]
    plain = [n for n in names if "-" not in n]
    assert plain == ["resnet18", "resnet34", "resnet50", "resnet101", "resnet152"]
    res = _cli("list", "backbones", "--json")
    data = json.loads(res.stdout)
    assert {e["kind"] for e in data} == {"backbone"}
    assert "timm/{arch}" in [e["name"] for e in data]


def test_list_everything_and_bare_pattern():
    res = _cli("list")
    assert res.returncode == 0
    kinds = {line.split()[0] for line in res.stdout.splitlines()[1:] if line.strip()}
    assert {"backbone", "head", "model"} <= kinds
    res = _cli("list", "resnet5?", "--json")
    assert {(e["kind"], e["name"]) for e in json.loads(res.stdout)} == {
        ("backbone", "resnet50"),
        ("model", "resnet50"),
    }


def test_usage_errors_are_one_line_with_exit_code_2():
    for args, needle in [
        (("list", "gadgets"), "unknown kind 'gadgets'"),
        (("--no-such-flag",), "No such option: --no-such-flag"),
        (("frobnicate",), "No such command 'frobnicate'"),
    ]:
        res = _cli(*args)
        assert res.returncode == 2, (args, res.stderr)
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("handzoo: usage error:") and needle in lines[0]


def test_debug_shows_the_traceback():
    res = _cli("list", "gadgets", "--debug")
    assert res.returncode != 0 and "Traceback" in res.stderr


def test_plugins_json_lists_first_party_plugins():
    res = _cli("plugins", "--json")
    assert res.returncode == 0
    data = {p["name"]: p for p in json.loads(res.stdout)}
    assert data["timm"]["first_party"] and data["timm"]["status"] == "loaded"
    assert data["timm"]["hooks"] == ["register_backbones", "register_models"]
