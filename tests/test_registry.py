"""The registry: patterns, natural sorting, templates, duplicates and suggestions."""

from __future__ import annotations

import pytest

from handzoo.errors import DuplicateNameError, UnknownNameError
from handzoo.registry import Registry, natural_key


def _reg(*names: str, kind: str = "model", plugin: str = "p1") -> Registry:
    r = Registry()
    for n in names:
        r.register(kind, n, lambda **kw: kw, plugin=plugin)
    return r


def test_natural_sort_orders_digit_runs_by_value():
    r = _reg("resnet152", "resnet18", "resnet101", "resnet34", "resnet50")
    assert r.names("model") == ["resnet18", "resnet34", "resnet50", "resnet101", "resnet152"]
    assert sorted(["a10b2", "a2b10", "a2b2"], key=natural_key) == ["a2b2", "a2b10", "a10b2"]


def test_fnmatch_patterns_and_pattern_lists():
    r = _reg("resnet18", "resnet50", "resnet50-mano", "chained-r50-r50-r34", "vit_small")
    assert r.names("model", "resnet*") == ["resnet18", "resnet50", "resnet50-mano"]
    assert r.names("model", "*mano") == ["resnet50-mano"]
    assert r.names("model", "resnet?8") == ["resnet18"]
    assert r.names("model", ["vit*", "chained*"]) == ["chained-r50-r50-r34", "vit_small"]
    assert r.names("model", "RESNET*") == []  # case-sensitive, like timm
    assert r.names("backbone") == []


def test_duplicate_is_refused_naming_both_plugins_and_first_stays():
    r = Registry()
    first = lambda **kw: "first"  # noqa: E731
    r.register("model", "resnet18", first, plugin="alpha")
    with pytest.raises(DuplicateNameError) as info:
        r.register("model", "resnet18", lambda **kw: "second", plugin="beta")
    assert "'alpha'" in str(info.value) and "'beta'" in str(info.value)
    assert r.get("model", "resnet18").factory is first
    assert r.get("model", "resnet18").plugin == "alpha"
    # The same name under another kind is a different namespace.
    r.register("backbone", "resnet18", lambda **kw: None, plugin="beta")


def test_unknown_name_lists_closest_names():
    r = _reg("resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "mobilenet")
    with pytest.raises(UnknownNameError) as info:
        r.get("model", "resnet10")
    msg = str(info.value)
    assert msg.startswith("unknown model 'resnet10': did you mean")
    assert "'resnet101'" in msg and "'resnet18'" in msg
    assert "mobilenet" not in msg
    with pytest.raises(UnknownNameError, match="see `handzoo list models`"):
        r.get("model", "zzzzzz")
    assert isinstance(info.value, LookupError)


def test_template_names_bind_fields_and_exact_names_win():
    r = Registry()
    r.register("model", "timm/{arch}", lambda arch, depth=1: ("template", arch, depth), plugin="p")
    r.register("model", "timm/special", lambda: "exact", plugin="p")
    assert r.create("model", "timm/convnext_tiny") == ("template", "convnext_tiny", 1)
    assert r.create("model", "timm/convnext_tiny", depth=3) == ("template", "convnext_tiny", 3)
    assert r.create("model", "timm/special") == "exact"
    assert ("model", "timm/anything") in r and ("model", "tim/x") not in r
    assert r.names("model", "timm/*") == ["timm/special", "timm/{arch}"]


def test_metadata_description_and_default_cfg():
    r = Registry()

    def factory(width=3):
        """Builds a thing.

        More text that is not the description.
        """
        return width

    e = r.register("head", "thing", factory, plugin="p", default_cfg={"width": 7}, outputs=["joints3d"])
    assert e.description == "Builds a thing."
    assert r.create("head", "thing") == 7
    assert r.create("head", "thing", width=1) == 1
    assert e.to_json() == {
        "kind": "head",
        "name": "thing",
        "plugin": "p",
        "description": "Builds a thing.",
        "default_cfg": {"width": 7},
        "metadata": {"outputs": ["joints3d"]},
    }


def test_bad_registrations_are_rejected():
    r = Registry()
    with pytest.raises(ValueError, match="unknown registry kind"):
        r.register("optimizer", "x", lambda: 1, plugin="p")
    with pytest.raises(ValueError, match="non-empty string"):
        r.register("model", "", lambda: 1, plugin="p")
    with pytest.raises(ValueError, match="not callable"):
        r.register("model", "x", 3, plugin="p")


def test_unregister_plugin_removes_only_its_entries():
    r = _reg("a", "b", plugin="p1")
    r.register("model", "c", lambda: 1, plugin="p2")
    assert r.unregister_plugin("p1") == 2
    assert r.names("model") == ["c"]
