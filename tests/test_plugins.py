"""Plugin loading through real entry points: third-party distributions, broken ones, filtering."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings

import pytest

import handzoo
import handzoo.plugins
from handzoo.plugins import PluginHost, PluginWarning, parse_plugin_filter
from tests.conftest import write_distribution

GOOD_PLUGIN = """
import handzoo

def _model(width=8):
    '''A tiny third-party model.'''
    return ("toy", width)

@handzoo.hookimpl
def register_models(register):
    register("toyhand", _model, default_cfg={"width": 8}, paper="none")

@handzoo.hookimpl
def register_metrics(register):
    register("toy_metric", lambda: (lambda p, g: 0.0), description="always zero")
"""

IMPORT_BROKEN = """
import handzoo
import a_module_that_does_not_exist  # noqa: F401
"""

HOOK_BROKEN = """
import handzoo

@handzoo.hookimpl
def register_models(register):
    register("half_registered", lambda: 1)
    raise RuntimeError("boom in the hook")
"""

CLASHING = """
import handzoo

@handzoo.hookimpl
def register_models(register):
    register("resnet18", lambda: "impostor")
    register("clash_other", lambda: "fine")
"""


def _install(site, dist, name, module, source, version="1.2.3"):
    write_distribution(site, dist, version, {name: module}, {module: source})


def test_third_party_distribution_is_discovered_through_its_entry_point(plugin_site):
    _install(plugin_site, "handzoo-toy", "toy", "handzoo_toy_plugin", GOOD_PLUGIN)
    registry = handzoo.get_registry()
    entry = registry.get("model", "toyhand")
    assert entry.plugin == "toy"
    assert entry.description == "A tiny third-party model."
    assert entry.metadata == {"paper": "none"}
    assert registry.create("model", "toyhand") == ("toy", 8)
    assert "toy_metric" in handzoo.list_metrics()
    info = handzoo.plugins.get_host().plugins["toy"]
    assert (info.distribution, info.version, info.first_party, info.status) == (
        "handzoo-toy",
        "1.2.3",
        False,
        "loaded",
    )
    assert info.hooks == ["register_models", "register_metrics"]
    assert info.registered == {"model": 1, "metric": 1}
    # First-party plugins come through the same mechanism.
    first = [i for i in handzoo.plugins.get_host().plugins.values() if i.first_party]
    assert {"timm", "heads"} <= {i.name for i in first}
    assert all(i.distribution == "handzoo" for i in first)


def test_broken_plugins_are_skipped_and_reported(plugin_site):
    _install(plugin_site, "handzoo-broken-import", "broken_import", "hz_broken_import", IMPORT_BROKEN)
    _install(plugin_site, "handzoo-broken-hook", "broken_hook", "hz_broken_hook", HOOK_BROKEN)
    _install(plugin_site, "handzoo-good", "toy", "handzoo_toy_plugin", GOOD_PLUGIN)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        host = handzoo.plugins.get_host()
    plugins = host.plugins
    assert plugins["broken_import"].status == "failed"
    assert "ModuleNotFoundError" in plugins["broken_import"].errors[0]
    assert "a_module_that_does_not_exist" in plugins["broken_import"].errors[0]
    assert plugins["broken_hook"].status == "failed"
    assert "register_models raised RuntimeError: boom in the hook" in plugins["broken_hook"].errors[0]
    # A failing hook contributes nothing, not even what it registered before raising.
    assert "half_registered" not in handzoo.list_models()
    # Everything else keeps working.
    assert plugins["toy"].status == "loaded"
    assert "toyhand" in handzoo.list_models()
    expected = ["resnet18", "resnet101", "resnet101-2.5d", "resnet101-mano", "resnet152"]
    assert handzoo.list_models("resnet1*") == expected
    messages = [str(w.message) for w in caught if issubclass(w.category, PluginWarning)]
    assert any("broken_import" in m for m in messages) and any("broken_hook" in m for m in messages)


def test_clashing_name_is_refused_and_first_party_stays(plugin_site):
    _install(plugin_site, "handzoo-clash", "clash", "hz_clash", CLASHING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        host = handzoo.plugins.get_host()
    info = host.plugins["clash"]
    assert info.status == "loaded"
    assert info.registered == {"model": 1}
    assert "'clash'" in info.errors[0] and "'timm'" in info.errors[0]
    assert host.registry.get("model", "resnet18").plugin == "timm"
    assert host.registry.get("model", "clash_other").plugin == "clash"


@pytest.mark.parametrize(
    ("value", "expected_loaded", "expected_disabled"),
    [
        ("none", set(), {"toy", "other"}),
        ("toy", {"toy"}, {"other"}),
        ("toy, other", {"toy", "other"}, set()),
        ("", {"toy", "other"}, set()),
    ],
)
def test_handzoo_plugins_restricts_third_party_only(
    plugin_site, monkeypatch, value, expected_loaded, expected_disabled
):
    _install(plugin_site, "handzoo-toy", "toy", "handzoo_toy_plugin", GOOD_PLUGIN)
    other = GOOD_PLUGIN.replace("toyhand", "otherhand").replace("toy_metric", "other_metric")
    _install(plugin_site, "handzoo-other", "other", "handzoo_other_plugin", other)
    monkeypatch.setenv("HANDZOO_PLUGINS", value)
    host = handzoo.plugins.get_host()
    third = {n: i for n, i in host.plugins.items() if not i.first_party}
    assert {n for n, i in third.items() if i.status == "loaded"} == expected_loaded
    assert {n for n, i in third.items() if i.status == "disabled"} == expected_disabled
    assert ("toyhand" in handzoo.list_models()) == ("toy" in expected_loaded)
    # First-party plugins always load.
    assert "resnet101" in handzoo.list_models()


def test_unknown_name_in_handzoo_plugins_warns(plugin_site, monkeypatch):
    monkeypatch.setenv("HANDZOO_PLUGINS", "nosuchplugin")
    with pytest.warns(PluginWarning, match="nosuchplugin, not installed"):
        handzoo.plugins.get_host()


def test_parse_plugin_filter():
    assert parse_plugin_filter(None) is None
    assert parse_plugin_filter("  ") is None
    assert parse_plugin_filter("none") == set()
    assert parse_plugin_filter("a, b,,") == {"a", "b"}


def test_objects_register_and_unregister_like_llm_plugins():
    host = PluginHost()

    class Inline:
        @handzoo.hookimpl
        def register_heads(self, register):
            register("inline_head", lambda in_features: in_features)

    host.add(Inline(), name="inline")
    try:
        assert host.registry.create("head", "inline_head", in_features=5) == 5
    finally:
        host.remove("inline")
    assert host.registry.names("head") == []


def test_misspelt_hook_is_reported_not_raised():
    host = PluginHost()

    class Misspelt:
        @handzoo.hookimpl
        def register_modles(self, register):
            register("x", lambda: 1)

    with pytest.warns(PluginWarning, match="invalid plugin"):
        info = host.add(Misspelt(), name="misspelt")
    assert info.status == "failed" and "register_modles" in info.errors[0]


def _cli(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "handzoo", *args], capture_output=True, text=True, env=env, timeout=120
    )


def test_cli_shows_third_party_and_broken_plugins(plugin_site):
    _install(plugin_site, "handzoo-toy", "toy", "handzoo_toy_plugin", GOOD_PLUGIN)
    _install(plugin_site, "handzoo-broken-import", "broken_import", "hz_broken_import", IMPORT_BROKEN)
    listed = _cli("list", "models", "--json")
    assert listed.returncode == 0, listed.stderr
    names = [e["name"] for e in json.loads(listed.stdout)]
    assert "toyhand" in names and "resnet101" in names
    assert "plugin 'broken_import' has problems; `handzoo plugins` shows them" in listed.stderr
    plugins = _cli("plugins", "--json")
    assert plugins.returncode == 0, plugins.stderr
    by_name = {p["name"]: p for p in json.loads(plugins.stdout)}
    assert by_name["toy"]["version"] == "1.2.3" and by_name["toy"]["hooks"] == [
        "register_models",
        "register_metrics",
    ]
    assert by_name["broken_import"]["status"] == "failed"
    assert "a_module_that_does_not_exist" in by_name["broken_import"]["errors"][0]
    table = _cli("plugins")
    assert table.returncode == 0 and "toy" in table.stdout and "failed" in table.stdout


SHADOW = """
import handzoo

@handzoo.hookimpl
def register_heads(register):
    register("shadow_head", lambda in_features: "shadow")
"""


def test_third_party_entry_point_named_like_a_first_party_one_is_refused(plugin_site):
    """Named 'heads', it came first on sys.path and silently replaced the first-party plugin."""
    _install(plugin_site, "shadow-dist", "heads", "shadow_heads", SHADOW)
    _install(plugin_site, "copycat-dist", "toy", "copycat_toy", SHADOW.replace("shadow_head", "copy_head"))
    _install(plugin_site, "toy-dist", "toy", "toy_plugin", GOOD_PLUGIN)
    host = PluginHost()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        host.load_entry_points()
    said = [str(w.message) for w in caught if issubclass(w.category, PluginWarning)]
    assert any("'heads' of shadow-dist refused" in m for m in said)
    assert any("'toy' of toy-dist refused" in m for m in said)
    assert "direct" in host.registry.names("head")
    assert "shadow_head" not in host.registry.names("head")
    assert host.plugins["heads"].first_party and host.plugins["heads"].status == "loaded"
    refused = host.plugins["heads (shadow-dist)"]
    assert refused.status == "refused" and "first-party plugin 'heads'" in refused.errors[0]
    # two third-party distributions with one entry-point name: the first (by name order) stays
    assert host.plugins["toy"].distribution == "copycat-dist"
    assert host.plugins["toy (toy-dist)"].status == "refused"

    shown = subprocess.run(
        [sys.executable, "-m", "handzoo", "plugins", "--json"], capture_output=True, text=True, check=True
    )
    statuses = {p["name"]: p["status"] for p in json.loads(shown.stdout)}
    assert statuses["heads"] == "loaded" and statuses["heads (shadow-dist)"] == "refused"


CATALOGUE_AND_COMMANDS = '''
from pathlib import Path

import handzoo

HERE = Path(__file__).with_name("extra_zoo.yaml")


@handzoo.hookimpl
def register_models(register):
    register("toy-extra", lambda image_size=32: "a toy model")


@handzoo.hookimpl
def register_catalogues(register):
    register(HERE)


@handzoo.hookimpl
def register_commands(app):
    @app.command("toy-hello")
    def hello(name: str = "hands") -> None:
        """Say hello."""
        print(f"hello {name}")

    @app.command("zoo")  # already a handzoo command: refused alone, toy-hello stays
    def impostor() -> None:
        print("impostor")
'''

EXTRA_ZOO = """
version: 1
recipes:
  toy-recipe: {description: quick, run: {epochs: 1}}
  seed-resnet101: {description: an impostor recipe, run: {epochs: 1}}
architectures:
  toy-extra:
    recipe: toy-recipe
    description: a plugin architecture
    weights:
      - {tag: demo, url: "https://example.org/toy-extra-0123abcd.safetensors",
         sha256: "%s", size: 10}
  resnet101: {description: an impostor, recipe: toy-recipe}
""" % ("ab" * 32)


def test_plugin_catalogue_joins_the_zoo_and_clashes_are_refused(plugin_site):
    _install(plugin_site, "handzoo-toycat", "toycat", "toycat", CATALOGUE_AND_COMMANDS)
    (plugin_site / "extra_zoo.yaml").write_text(EXTRA_ZOO)
    from handzoo.zoo import load_zoo

    zoo = load_zoo()
    assert zoo.architectures["toy-extra"].source.endswith("extra_zoo.yaml")
    assert zoo.architectures["toy-extra"].weights[0].tag == "demo"
    assert zoo.recipes["toy-recipe"].run == {"epochs": 1}
    # the core's entries stay; the plugin's impostors are refused and reported
    assert zoo.architectures["resnet101"].recipe == "seed-resnet101"
    assert zoo.recipes["seed-resnet101"].run == {"epochs": 220}
    errors = handzoo.plugins.get_host().plugins["toycat"].errors
    assert any("architecture 'resnet101' refused" in e for e in errors)
    assert any("recipe 'seed-resnet101' refused" in e for e in errors)

    command = [sys.executable, "-m", "handzoo", "list", "models", "toy*"]
    listed = subprocess.run(command, capture_output=True, text=True, check=True)
    assert "toy-extra" in listed.stdout and "demo" in listed.stdout  # published weights are shown


def test_plugin_commands_are_added_and_a_clash_refuses_only_the_clashing_name(plugin_site):
    _install(plugin_site, "handzoo-toycat", "toycat", "toycat", CATALOGUE_AND_COMMANDS)
    (plugin_site / "extra_zoo.yaml").write_text(EXTRA_ZOO)
    run = subprocess.run([sys.executable, "-m", "handzoo", "toy-hello"], capture_output=True, text=True)
    assert run.returncode == 0 and run.stdout.strip() == "hello hands"  # zoo clashed, toy-hello stays
    # One line names the plugin with problems, however many there are; `plugins` says what.
    warned = [line for line in run.stderr.splitlines() if line.startswith("handzoo: warning")]
    assert warned == ["handzoo: warning: plugin 'toycat' has problems; `handzoo plugins` shows them"]
    shown = subprocess.run(
        [sys.executable, "-m", "handzoo", "plugins", "--json"], capture_output=True, text=True, check=True
    )
    info = next(p for p in json.loads(shown.stdout) if p["name"] == "toycat")
    assert info["commands"] == ["toy-hello"] and any("command 'zoo' refused" in e for e in info["errors"])
    # The catalogue clash is reported where people look: the plugin's errors and the zoo listing.
    assert any("architecture 'resnet101' refused" in e for e in info["errors"])
    zoo = subprocess.run([sys.executable, "-m", "handzoo", "zoo", "toy*"], capture_output=True, text=True)
    assert "impostor" not in zoo.stdout and "toy-extra" in zoo.stdout
    assert "refused: plugin 'toycat': catalogue" in zoo.stderr and "'resnet101' refused" in zoo.stderr
    listed = subprocess.run(
        [sys.executable, "-m", "handzoo", "zoo", "--json"], capture_output=True, text=True, check=True
    )
    sources = {name: entry["source"] for name, entry in json.loads(listed.stdout).items()}
    assert sources["resnet101"] == "core" and sources["toy-extra"].endswith("extra_zoo.yaml")

    good = CATALOGUE_AND_COMMANDS.replace('@app.command("zoo")', '@app.command("toy-other")')
    _install(plugin_site, "handzoo-toycat", "toycat", "toycat", good)
    handzoo.plugins.reset()
    for name in [n for n in sys.modules if n == "toycat"]:
        del sys.modules[name]
    run = subprocess.run([sys.executable, "-m", "handzoo", "toy-hello", "--name", "MANO"],
                         capture_output=True, text=True)
    assert run.returncode == 0 and run.stdout.strip() == "hello MANO"
