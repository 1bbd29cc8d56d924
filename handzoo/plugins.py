"""Plugin discovery and loading (pluggy + the ``handzoo`` entry-point group).

First-party plugins (those shipped in the ``handzoo`` distribution, under
``plugins/``) load through exactly the same path as third-party ones; they are
only loaded first, so their names win a clash. ``HANDZOO_PLUGINS`` restricts
which *third-party* entry points load: ``a,b`` loads only those, ``none``
loads none.

A plugin that fails to import, or raises in any hook, contributes nothing: its
staged registrations are dropped, the failure is recorded in
:attr:`PluginInfo.errors` (``handzoo plugins`` shows it) and a
:class:`PluginWarning` is issued. Nothing a plugin does can break the CLI.
"""

from __future__ import annotations

import functools
import importlib
import os
import traceback
import warnings
from dataclasses import asdict, dataclass, field
from importlib import metadata as importlib_metadata
from typing import Any

import pluggy

from handzoo import hookspecs
from handzoo.errors import DuplicateNameError
from handzoo.registry import Registry

ENTRY_POINT_GROUP = "handzoo"
FIRST_PARTY_DIST = "handzoo"
ENV_PLUGINS = "HANDZOO_PLUGINS"

# hook name -> registry kind
HOOK_KINDS = {
    "register_backbones": "backbone",
    "register_heads": "head",
    "register_models": "model",
    "register_augmenters": "augmenter",
    "register_metrics": "metric",
    "register_datasets": "dataset",
    "register_losses": "loss",
    "register_detectors": "detector",
}


class PluginWarning(UserWarning):
    """A plugin was skipped, or one of its registrations was refused."""


@dataclass
class PluginInfo:
    """What ``handzoo plugins`` reports for one plugin.

    ``status`` is ``loaded``, ``failed`` (import or hook error: nothing
    registered), ``disabled`` (left out by ``HANDZOO_PLUGINS``) or ``refused``
    (its entry-point name is taken by a first-party or earlier plugin).
    """

    name: str
    module: str
    distribution: str | None = None
    version: str | None = None
    first_party: bool = False
    status: str = "loaded"
    hooks: list[str] = field(default_factory=list)
    registered: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    catalogues: list[str] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _describe(exc: BaseException) -> str:
    """One line: exception type, message and the innermost frame of the plugin's code."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" ({frames[-1].filename}:{frames[-1].lineno})" if frames else ""
    return f"{type(exc).__name__}: {exc}{where}"


@functools.cache
def _hook_specs() -> dict[str, list[str]]:
    """handzoo's hook names and the arguments it calls each with."""
    import inspect

    marker = f"{hookspecs.PROJECT_NAME}_spec"
    return {
        name: list(inspect.signature(fn).parameters)
        for name, fn in vars(hookspecs).items()
        if callable(fn) and hasattr(fn, marker)
    }


def hook_problem(obj: Any) -> str | None:
    """The first wrong hook of a plugin object, in one line naming its file and line; None if all fit.

    A misspelt hook name (pluggy would only say "unknown hook") gets the closest
    real names; a hook asking for arguments handzoo does not pass is named with both
    signatures.
    """
    import difflib
    import inspect

    specs = _hook_specs()
    marker = f"{hookspecs.PROJECT_NAME}_impl"
    for attr in dir(obj):
        fn = getattr(obj, attr, None)
        opts = getattr(fn, marker, None)
        if not callable(fn) or opts is None:
            continue
        name = (opts or {}).get("specname") or attr
        try:
            where = f"{inspect.getsourcefile(fn)}:{fn.__code__.co_firstlineno}"
        except (TypeError, AttributeError):
            where = getattr(fn, "__module__", "?")
        if name not in specs and not (opts or {}).get("optionalhook"):
            close = difflib.get_close_matches(name, list(specs), n=1, cutoff=0.6)
            hint = f"did you mean {' or '.join(map(repr, close))}?" if close else f"hooks: {', '.join(specs)}"
            return f"{where}: hook {name!r} is not a handzoo hook ({hint})"
        asked = [p for p in inspect.signature(fn).parameters if p != "self"]
        extra = [p for p in asked if p not in specs[name]]
        if extra:
            return (
                f"{where}: hook {name}({', '.join(asked)}) asks for {', '.join(map(repr, extra))}, "
                f"but handzoo calls it as {name}({', '.join(specs[name])})"
            )
    return None


def parse_plugin_filter(value: str | None) -> set[str] | None:
    """``HANDZOO_PLUGINS`` as a set of allowed third-party names; None means all."""
    if value is None or not value.strip():
        return None
    names = {v.strip() for v in value.split(",") if v.strip()}
    return set() if names == {"none"} else names


class PluginHost:
    """A pluggy manager bound to one :class:`Registry`."""

    def __init__(self, registry: Registry | None = None) -> None:
        self.registry = registry if registry is not None else Registry()
        self.pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self.pm.add_hookspecs(hookspecs)
        self.plugins: dict[str, PluginInfo] = {}
        self._apps: set[int] = set()

    # -- discovery -------------------------------------------------------------
    def load_entry_points(self, allowed: set[str] | None = None) -> None:
        """Load every entry point in the ``handzoo`` group, first-party first.

        Args:
            allowed: third-party entry-point names to load (None: all of them).
        """
        eps = list(importlib_metadata.entry_points(group=ENTRY_POINT_GROUP))

        def dist_name(ep: importlib_metadata.EntryPoint) -> str | None:
            dist = getattr(ep, "dist", None)
            return dist.metadata["Name"] if dist is not None else None

        # A package visible twice on sys.path lists the same entry point twice: keep one.
        unique = list({(ep.name, ep.value, dist_name(ep)): ep for ep in reversed(eps)}.values())[::-1]
        first = sorted((ep for ep in unique if dist_name(ep) == FIRST_PARTY_DIST), key=lambda e: e.name)
        third = sorted((ep for ep in unique if dist_name(ep) != FIRST_PARTY_DIST), key=lambda e: e.name)
        taken = {ep.name: f"the first-party plugin {ep.name!r}" for ep in first}
        kept = []
        for ep in third:  # a name is one plugin: a later distribution never replaces an earlier one
            if ep.name in taken:
                dist = getattr(ep, "dist", None)
                info = PluginInfo(
                    name=f"{ep.name} ({dist_name(ep) or ep.value})",
                    module=ep.value,
                    distribution=dist_name(ep),
                    version=dist.version if dist is not None else None,
                    status="refused",
                )
                message = (
                    f"entry point {ep.name!r} of {dist_name(ep) or ep.value} refused: the name belongs to "
                    f"{taken[ep.name]}; rename the entry point in its pyproject.toml"
                )
                info.errors.append(message)
                self.plugins[info.name] = info
                warnings.warn(message, PluginWarning, stacklevel=2)
                continue
            taken[ep.name] = f"the plugin {ep.name!r} of {dist_name(ep) or ep.value}"
            kept.append(ep)
        third = kept
        for ep in first + third:
            dist = getattr(ep, "dist", None)
            info = PluginInfo(
                name=ep.name,
                module=ep.value,
                distribution=dist_name(ep),
                version=dist.version if dist is not None else None,
                first_party=dist_name(ep) == FIRST_PARTY_DIST,
            )
            if not info.first_party and allowed is not None and ep.name not in allowed:
                info.status = "disabled"
                info.errors.append(f"not in {ENV_PLUGINS}")
                self.plugins[info.name] = info
                continue
            try:
                obj = ep.load()
            except KeyboardInterrupt:
                raise
            except BaseException as exc:  # SystemExit too: a plugin must not end handzoo
                self._fail(info, f"import failed: {_describe(exc)}")
                continue
            self.add(obj, info=info)
        if allowed:
            missing = sorted(allowed - {ep.name for ep in third})
            if missing:
                names = ", ".join(sorted(ep.name for ep in third)) or "none"
                warnings.warn(
                    f"{ENV_PLUGINS} names {', '.join(missing)}, not installed "
                    f"(installed third-party plugins: {names})",
                    PluginWarning,
                    stacklevel=2,
                )

    # -- registration ----------------------------------------------------------
    def add(self, obj: Any, name: str | None = None, *, info: PluginInfo | None = None) -> PluginInfo:
        """Register a plugin object (a module or any object with hook functions).

        Its hooks run at once; their registrations are committed only when
        every hook succeeded.
        """
        if info is None:
            name = name or getattr(obj, "__name__", None) or type(obj).__name__
            info = PluginInfo(name=name, module=getattr(obj, "__name__", type(obj).__name__))
        if info.name in self.plugins and self.plugins[info.name].status == "loaded":
            raise ValueError(f"a plugin named {info.name!r} is already loaded")
        problem = hook_problem(obj)
        if problem is not None:  # before pluggy, whose message would point into pluggy itself
            return self._fail(info, f"invalid plugin: {problem}")
        try:
            self.pm.register(obj, name=info.name)
            self.pm.check_pending()
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # SystemExit too: a plugin must not end handzoo
            if self.pm.is_registered(obj):
                self.pm.unregister(obj)
            return self._fail(info, f"invalid plugin: {_describe(exc)}")

        staged: list[tuple[str, str, Any, dict[str, Any]]] = []
        catalogues: list[str] = []
        impls = [i for i in self.pm.hook.register_catalogues.get_hookimpls() if i.plugin is obj]
        for impl in impls:
            info.hooks.append("register_catalogues")
            try:
                impl.function(register=lambda path, **_meta: catalogues.append(str(path)))
            except KeyboardInterrupt:
                raise
            except BaseException as exc:  # SystemExit too: a plugin must not end handzoo
                self.pm.unregister(obj)
                return self._fail(info, f"register_catalogues raised {_describe(exc)}")
        if any(i.plugin is obj for i in self.pm.hook.register_commands.get_hookimpls()):
            info.hooks.append("register_commands")  # called by the CLI with its app
        for hook_name, kind in HOOK_KINDS.items():
            impls = [i for i in getattr(self.pm.hook, hook_name).get_hookimpls() if i.plugin is obj]
            for impl in impls:
                info.hooks.append(hook_name)

                def register(reg_name: str, factory: Any, _kind: str = kind, **meta: Any) -> None:
                    staged.append((_kind, reg_name, factory, meta))

                try:
                    impl.function(register=register)
                except KeyboardInterrupt:
                    raise
                except BaseException as exc:  # SystemExit too: a plugin must not end handzoo
                    self.pm.unregister(obj)
                    return self._fail(info, f"{hook_name} raised {_describe(exc)}")

        info.status = "loaded"
        info.catalogues = catalogues
        for kind, reg_name, factory, meta in staged:
            try:
                self.registry.register(kind, reg_name, factory, plugin=info.name, **meta)
            except (DuplicateNameError, ValueError, TypeError) as exc:
                info.errors.append(str(exc))
                warnings.warn(str(exc), PluginWarning, stacklevel=2)
                continue
            info.registered[kind] = info.registered.get(kind, 0) + 1
        self.plugins[info.name] = info
        return info

    def add_commands(self, app: Any) -> None:
        """Let every loaded plugin add ``handzoo`` subcommands to the typer ``app``.

        A plugin that raises keeps none of its commands; a command whose name is
        already taken is refused alone (like a part's name). The reason is in
        the plugin's :attr:`PluginInfo.errors`.
        """
        if id(app) in self._apps:
            return
        self._apps.add(id(app))
        for impl in self.pm.hook.register_commands.get_hookimpls():
            info = next((i for i in self.plugins.values() if self.pm.get_plugin(i.name) is impl.plugin), None)
            if info is None or info.status != "loaded":
                continue
            before = list(app.registered_commands)
            taken = {_command_name(c) for c in before}
            try:
                impl.function(app=app)
            except KeyboardInterrupt:
                raise
            except BaseException as exc:  # SystemExit too: a plugin must not end handzoo
                app.registered_commands[:] = before
                self._note(info, f"register_commands raised {_describe(exc)}")
                continue
            added = app.registered_commands[len(before) :]
            kept = [c for c in added if _command_name(c) not in taken]
            clash = sorted({_command_name(c) for c in added} & taken)
            # Like parts: only a clashing name is refused, the plugin's other commands stay.
            app.registered_commands[:] = before + kept
            if clash:
                self._note(
                    info,
                    f"command {', '.join(map(repr, clash))} refused: it is already a handzoo command "
                    "(rename it in the plugin)",
                )
            info.commands = [_command_name(c) for c in kept]

    def _note(self, info: PluginInfo, message: str) -> None:
        info.errors.append(message)
        warnings.warn(f"plugin {info.name!r}: {message}", PluginWarning, stacklevel=3)

    def remove(self, name: str) -> None:
        """Unregister a plugin and every entry it registered."""
        plugin = self.pm.get_plugin(name)
        if plugin is not None:
            self.pm.unregister(plugin)
        self.registry.unregister_plugin(name)
        self.plugins.pop(name, None)

    def _fail(self, info: PluginInfo, message: str) -> PluginInfo:
        info.status = "failed"
        info.errors.append(message)
        self.plugins[info.name] = info
        warnings.warn(f"plugin {info.name!r} skipped: {message}", PluginWarning, stacklevel=3)
        return info


def _command_name(command: Any) -> str:
    """The name a typer command is called by (its explicit name or its function's, dashed)."""
    if getattr(command, "name", None):
        return str(command.name)
    callback = getattr(command, "callback", None)
    return getattr(callback, "__name__", "").replace("_", "-")


_HOST: PluginHost | None = None


def get_host() -> PluginHost:
    """The process-wide plugin host, loading the entry points on first use."""
    global _HOST
    if _HOST is None:
        host = PluginHost()
        host.load_entry_points(parse_plugin_filter(os.environ.get(ENV_PLUGINS)))
        _HOST = host
    return _HOST


def get_registry() -> Registry:
    """The process-wide registry, filled by every enabled plugin."""
    return get_host().registry


def reset() -> None:
    """Forget the loaded plugins; the next :func:`get_host` discovers them again.

    Also invalidates import caches so distributions installed since are found.
    """
    global _HOST
    _HOST = None
    importlib.invalidate_caches()
