"""The plugin API is one declared surface: handzoo.plugin_api, used by handzoo's own plugins alone.

First-party plugins (``plugins/``) register exactly as a third party's do, so
they may import from handzoo through :mod:`handzoo.plugin_api` only; every name
it declares resolves; importing it stays cheap (no torch), so registering a
plugin costs nothing.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import handzoo.plugin_api as api

PLUGINS = Path(__file__).resolve().parents[1] / "plugins"


def _handzoo_imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import of handzoo's own modules in ``path`` (not of handzoo_* plugins)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "handzoo" or node.module.startswith("handzoo."):
                found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "handzoo"]
    return found


def test_first_party_plugins_import_handzoo_only_through_the_plugin_api():
    files = sorted(PLUGINS.rglob("*.py"))
    assert len(files) > 20  # the scan sees the plugins
    stray = [
        f"{path.relative_to(PLUGINS)}:{line}: {module}"
        for path in files
        for line, module in _handzoo_imports(path)
        if module != "handzoo.plugin_api"
    ]
    assert stray == [], "import these through handzoo.plugin_api:\n" + "\n".join(stray)


def test_every_declared_name_resolves_and_a_wrong_one_says_where_to_look():
    for name in api.__all__:
        assert getattr(api, name) is not None, name
    assert api.HandOutput is __import__("handzoo.output", fromlist=["HandOutput"]).HandOutput
    assert api.metrics.pa_mpjpe is not None  # a module, for the metric functions
    try:
        api.NotAName  # noqa: B018
    except AttributeError as exc:
        assert "handzoo.plugin_api has no 'NotAName'" in str(exc)
    else:
        raise AssertionError("an unknown name must raise AttributeError")


def test_importing_the_plugin_api_imports_no_torch():
    code = "import sys, handzoo.plugin_api as a; a.hookimpl; a.UsageError; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_imagenet_normalisation_is_defined_once():
    from handzoo.conventions import IMAGENET_MEAN, IMAGENET_STD

    root = PLUGINS.parent / "handzoo"
    literal = "0.485, 0.456, 0.406"
    holders = [
        str(p.relative_to(PLUGINS.parent))
        for p in sorted([*root.rglob("*.py"), *PLUGINS.rglob("*.py")])
        if literal in p.read_text()
    ]
    assert holders == ["handzoo/conventions.py"]
    assert (IMAGENET_MEAN, IMAGENET_STD) == ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
