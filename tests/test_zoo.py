"""The catalogue: schema validation, security rules, and README drift."""

from __future__ import annotations

from pathlib import Path

import pytest

from handzoo.errors import ConfigError
from handzoo.zoo import load_zoo
from handzoo.zoo.catalogue import parse_zoo
from handzoo.zoo.readme import END, START, render_table

ROOT = Path(__file__).resolve().parents[1]

GOOD_WEIGHT = {
    "tag": "synth-a",
    "url": "https://example.org/weights/resnet18-0123abcd.safetensors",
    "sha256": "0" * 64,
    "size": 10,
}


def _zoo(**weight_changes) -> str:
    import yaml

    weight = {**GOOD_WEIGHT, **weight_changes}
    return yaml.safe_dump({"version": 1, "architectures": {"resnet18": {"weights": [weight]}}})


def test_shipped_catalogue_is_valid_and_has_the_seed_references():
    zoo = load_zoo(str(ROOT / "zoo.yaml"))
    refs = {n: [r.value for r in a.references] for n, a in zoo.architectures.items()}
    assert refs["resnet34"] == [13.83] and refs["resnet101"] == [10.09]
    assert refs["chained-r50-r50-r34"] == [13.14]
    assert refs["resnet50-2.5d"] == [7.1]  # PeCLR's ResNet50 with a 2.5D target
    for arch in zoo.architectures.values():
        for r in arch.references:
            assert "not produced here" in r.note and r.source in ("seed report", "PeCLR (ICCV 2021)")
    assert zoo.recipes["seed-resnet101"].optim["lr"] == 1e-4


def test_the_docs_table_matches_the_catalogue():
    page = (ROOT / "docs" / "models.md").read_text()
    block = page.split(START, 1)[1].split(END, 1)[0].strip()
    assert block == render_table(load_zoo(str(ROOT / "zoo.yaml"))), (
        "docs/models.md's model zoo table drifted from zoo.yaml: run "
        "`python -m handzoo.zoo.readme docs/models.md`"
    )


def test_valid_weight_entry_parses():
    zoo = parse_zoo(_zoo())
    assert zoo.architectures["resnet18"].weight().file_name == "resnet18-0123abcd.safetensors"
    assert zoo.architectures["resnet18"].weight("synth-a").size == 10
    assert zoo.architectures["resnet18"].weight("nope") is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"url": "ftp://example.org/w.safetensors"}, "url scheme 'ftp' is not allowed"),
        ({"url": "/etc/passwd"}, "url scheme '(none)' is not allowed"),
        ({"url": "https://example.org/w/..safetensors"}, "does not end in a plain file name"),
        ({"url": "https://example.org/w/model.pt"}, "must be a .safetensors file"),
        ({"sha256": "abc"}, "sha256 must be 64 lower-case hex digits"),
        ({"tag": "../x"}, "tag '../x' must be letters"),
        ({"size": 0}, "greater than 0"),
    ],
)
def test_invalid_weight_entries_are_refused_with_the_reason(change, message):
    with pytest.raises(ConfigError) as info:
        parse_zoo(_zoo(**change), "zoo.yaml")
    assert message in str(info.value)
    assert str(info.value).startswith("zoo.yaml: architectures.resnet18.weights.0")


def test_unknown_recipe_and_version_are_refused():
    with pytest.raises(ConfigError, match="uses recipe 'nope', which is not defined"):
        parse_zoo("version: 1\narchitectures: {resnet18: {recipe: nope}}\n")
    with pytest.raises(ConfigError, match="schema version 2 is not supported"):
        parse_zoo("version: 2\n")


def test_handzoo_zoo_env_selects_another_catalogue(tmp_path, monkeypatch):
    other = tmp_path / "other.yaml"
    other.write_text(_zoo())
    monkeypatch.setenv("HANDZOO_ZOO", str(other))
    sources = {name: arch.source for name, arch in load_zoo().architectures.items()}
    # Only this file's entries, none of the shipped one's; plugins' catalogues still join (their own source).
    assert [name for name, source in sources.items() if source == str(other)] == ["resnet18"]
    from handzoo.zoo.catalogue import _PACKAGED

    assert str(_PACKAGED) not in sources.values()
    monkeypatch.setenv("HANDZOO_ZOO", str(tmp_path / "missing.yaml"))
    from handzoo.errors import UsageError

    with pytest.raises(UsageError, match="missing.yaml does not exist"):
        load_zoo()


def test_a_catalogue_key_written_twice_is_refused_with_its_line():
    from handzoo.errors import ConfigError
    from handzoo.zoo.catalogue import parse_zoo

    text = "version: 1\narchitectures:\n  resnet18: {}\n  resnet34: {}\n  resnet18: {description: stale}\n"
    with pytest.raises(ConfigError) as info:
        parse_zoo(text, "my-zoo.yaml")
    assert str(info.value) == (
        "my-zoo.yaml:5: key 'resnet18' appears twice (first at line 3); YAML would keep the last copy "
        "silently: keep one"
    )
