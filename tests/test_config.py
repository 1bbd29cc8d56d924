"""Typed config: YAML round trip, dotted overrides, and errors that name the key and the choices."""

from __future__ import annotations

import pytest

from handzoo.config import RunConfig, parse_override
from handzoo.errors import ConfigError


def test_defaults_are_the_seed_recipe():
    cfg = RunConfig()
    assert (cfg.model.name, cfg.optim.name, cfg.optim.loss, cfg.optim.lr) == ("resnet101", "adam", "l1", 1e-4)
    assert cfg.data.image_size == 128
    assert cfg.data.augment == ["background", "rotate", "flip", "occlude"]


def test_yaml_round_trip(tmp_path):
    cfg = RunConfig().with_overrides(["optim.lr=3e-4", "data.augment=[rotate, flip]", "run.seed=7"])
    path = tmp_path / "config.yaml"
    cfg.to_yaml(path)
    again = RunConfig.from_yaml(path)
    assert again == cfg
    assert again.optim.lr == pytest.approx(3e-4)
    assert again.data.augment == ["rotate", "flip"]


@pytest.mark.parametrize(
    ("item", "path", "value"),
    [
        ("optim.lr=1e-4", ["optim", "lr"], 1e-4),
        ("optim.lr=0.001", ["optim", "lr"], 0.001),
        ("data.batch_size=64", ["data", "batch_size"], 64),
        ("run.amp=false", ["run", "amp"], False),
        ("model.options.head=mano", ["model", "options", "head"], "mano"),
        ("data.root=", ["data", "root"], None),
    ],
)
def test_parse_override(item, path, value):
    assert parse_override(item) == (path, value)


def test_overrides_reach_nested_options():
    cfg = RunConfig().with_overrides({"model.options.head": "mano", "optim.schedule": "late_cosine"})
    assert cfg.model.options == {"head": "mano"}
    assert cfg.optim.schedule == "late_cosine"


def test_invalid_choice_lists_allowed_values():
    with pytest.raises(ConfigError) as info:
        RunConfig().with_overrides(["optim.schedule=linear"])
    msg = str(info.value)
    assert "'optim.schedule'" in msg and "allowed values: constant, cosine, late_cosine" in msg


def test_unknown_key_names_valid_keys_and_closest():
    with pytest.raises(ConfigError) as info:
        RunConfig().with_overrides(["optim.learning_rate=1"])
    assert "unknown key 'optim.learning_rate'" in str(info.value)
    assert "lr" in str(info.value)
    with pytest.raises(ConfigError, match=r"did you mean 'data.batch_size'"):
        RunConfig().with_overrides(["data.batch_sze=3"])
    with pytest.raises(ConfigError, match="unknown key 'trainer'"):
        RunConfig().with_overrides(["trainer.lr=3"])


def test_wrong_types_and_ranges():
    with pytest.raises(ConfigError, match="'data.batch_size'"):
        RunConfig().with_overrides(["data.batch_size=zero"])
    with pytest.raises(ConfigError, match="'optim.lr'.*greater than 0"):
        RunConfig().with_overrides(["optim.lr=-1"])
    with pytest.raises(ConfigError, match="expected key=value"):
        parse_override("optim.lr")
    with pytest.raises(ConfigError, match="is a value, not a section"):
        RunConfig().with_overrides(["optim.lr.x=1"])


def test_bad_yaml_file_names_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("optim: {lr: [unclosed\n")
    with pytest.raises(ConfigError, match="bad.yaml: cannot read config"):
        RunConfig.from_yaml(bad)
    extra = tmp_path / "extra.yaml"
    extra.write_text("optim:\n  momentum: 0.9\n")
    with pytest.raises(ConfigError, match="extra.yaml: unknown key 'optim.momentum'"):
        RunConfig.from_yaml(extra)


def test_a_control_character_in_a_set_value_is_a_config_error():
    """Found by tests/test_fuzz.py: yaml's ReaderError has no ``problem`` (it raised AttributeError)."""
    from handzoo.config import parse_override

    with pytest.raises(ConfigError, match=r"cannot parse value \(unacceptable character"):
        parse_override("optim.lr=\x1b")
