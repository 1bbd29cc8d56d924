"""Names → factories, one namespace per kind.

The registry is filled only by plugins (first-party ones included) through the
hooks in :mod:`handzoo.hookspecs`. Names are matched with fnmatch patterns and
listed in natural order (``resnet18`` before ``resnet101``).

A name may be a *template* such as ``timm/{arch}``: ``get("timm/convnext_tiny")``
then resolves to that entry and its factory receives ``arch="convnext_tiny"``.
Exact names win over templates.
"""

from __future__ import annotations

import difflib
import fnmatch
import inspect
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from handzoo.errors import ConfigError, DuplicateNameError, HandzooError, UnknownNameError, first_line


class PartBuildError(HandzooError):
    """A registered factory raised while building; names the part and the plugin it comes from."""

KINDS = ("backbone", "head", "model", "augmenter", "metric", "dataset", "loss", "detector")

_TEMPLATE_FIELD = re.compile(r"\{(\w+)\}")


def natural_key(name: str) -> list[Any]:
    """Sort key that orders digit runs by value: resnet18 < resnet34 < resnet101."""
    return [int(tok) if tok.isdigit() else tok.lower() for tok in re.split(r"(\d+)", name)]


@dataclass(frozen=True)
class Entry:
    """One registered name.

    Attributes:
        kind: one of :data:`KINDS`.
        name: the registered name, possibly a template like ``timm/{arch}``.
        factory: the callable that builds the object from keyword arguments.
        plugin: the name of the plugin that registered it.
        description: one line for tables.
        default_cfg: default keyword arguments of ``factory``; unless the plugin
            passes its own, read from the factory's signature (every parameter
            with a default), so defaults are written once, where they act.
        metadata: anything else the plugin passed to ``register``.
    """

    kind: str
    name: str
    factory: Callable[..., Any]
    plugin: str
    description: str = ""
    default_cfg: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def is_template(self) -> bool:
        return bool(_TEMPLATE_FIELD.search(self.name))

    def match_template(self, name: str) -> dict[str, str] | None:
        """The template fields bound by ``name``, or None if it does not match."""
        if not self.is_template:
            return None
        pattern = ""
        pos = 0
        for m in _TEMPLATE_FIELD.finditer(self.name):
            pattern += re.escape(self.name[pos : m.start()]) + f"(?P<{m.group(1)}>.+)"
            pos = m.end()
        pattern += re.escape(self.name[pos:])
        found = re.fullmatch(pattern, name)
        return found.groupdict() if found else None

    def build(self, name: str | None = None, *args: Any, **overrides: Any) -> Any:
        """Call the factory with ``args`` and ``default_cfg`` updated by ``overrides``: the one build path.

        ``name`` binds the template fields when the entry is a template.

        Raises:
            ConfigError: an option the factory does not take (listing the ones it does).
            PartBuildError: the factory raised something other than a handzoo error; the
                message names the part, its plugin and the original error.
        """
        label = name or self.name
        allowed = keyword_options(self.factory)
        if allowed is not None:
            unknown = sorted(set(overrides) - set(allowed))
            if unknown:
                raise ConfigError(
                    f"{self.kind} {label!r} has no option {', '.join(repr(u) for u in unknown)}; "
                    f"its options are: {', '.join(a for a in allowed if a not in ('self',)) or 'none'}"
                )
        kwargs = dict(self.default_cfg)
        if name is not None and self.is_template:
            kwargs.update(self.match_template(name) or {})
        kwargs.update(overrides)
        try:
            return self.factory(*args, **kwargs)
        except HandzooError:
            raise  # already a message for the user
        except Exception as exc:
            raise PartBuildError(
                f"{self.kind} {label!r} ({self.plugin_label}) failed to build: "
                f"{type(exc).__name__}: {first_line(exc)}"
            ) from exc

    @property
    def plugin_label(self) -> str:
        """``plugin 'NAME'`` or ``handzoo itself`` for parts registered outside a plugin."""
        return f"plugin {self.plugin!r}" if self.plugin else "handzoo itself"

    def to_json(self) -> dict[str, Any]:
        extra = {k: v for k, v in self.metadata.items() if _jsonable(v)}
        return {
            "kind": self.kind,
            "name": self.name,
            "plugin": self.plugin,
            "description": self.description,
            "default_cfg": {k: v for k, v in self.default_cfg.items() if _jsonable(v)},
            **({"metadata": extra} if extra else {}),
        }


def keyword_options(factory: Callable[..., Any]) -> list[str] | None:
    """The keyword arguments ``factory`` takes, in order; None when it takes ``**kwargs`` (any)."""
    try:
        params = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    keyword = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return [p.name for p in params if p.kind in keyword]


def accepts(factory: Callable[..., Any], option: str) -> bool:
    """Whether ``factory`` takes the keyword argument ``option`` (by name or through ``**kwargs``)."""
    names = keyword_options(factory)
    return names is None or option in names


def at_input_size(factory: Callable[..., Any], options: dict[str, Any], image_size: int) -> dict[str, Any]:
    """``options`` with ``image_size`` set when ``factory`` takes an input size and they set none."""
    if "image_size" in options or not accepts(factory, "image_size"):
        return dict(options)
    return {**options, "image_size": image_size}


def signature_defaults(factory: Callable[..., Any]) -> dict[str, Any]:
    """The keyword parameters of ``factory`` that have defaults, with those defaults."""
    try:
        params = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        return {}
    keyword = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    empty = inspect.Parameter.empty
    return {p.name: p.default for p in params if p.kind in keyword and p.default is not empty}


def _jsonable(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool, list, tuple, dict))


def _first_line(text: str | None) -> str:
    return (text or "").strip().splitlines()[0].strip() if (text or "").strip() else ""


class Registry:
    """Holds the entries of every kind. Filled by :func:`handzoo.plugins.load_plugins`."""

    def __init__(self) -> None:
        self._entries: dict[str, dict[str, Entry]] = {kind: {} for kind in KINDS}

    def register(
        self,
        kind: str,
        name: str,
        factory: Callable[..., Any],
        *,
        plugin: str,
        description: str | None = None,
        default_cfg: dict[str, Any] | None = None,
        **metadata: Any,
    ) -> Entry:
        """Add ``name`` under ``kind``; refuse a name already taken.

        Raises:
            ValueError: for an unknown kind, an empty name or a non-callable factory.
            DuplicateNameError: when the name is taken; the first registration stays.
        """
        table = self._table(kind)
        if not isinstance(name, str) or not name or name != name.strip():
            raise ValueError(f"plugin {plugin!r}: {kind} name must be a non-empty string, got {name!r}")
        if not callable(factory):
            raise ValueError(f"plugin {plugin!r}: factory for {kind} {name!r} is not callable")
        if name in table:
            first = table[name]
            raise DuplicateNameError(
                f"{kind} {name!r} from plugin {plugin!r} refused: already registered by plugin "
                f"{first.plugin!r} (rename one of them; the first registration stays)"
            )
        entry = Entry(
            kind=kind,
            name=name,
            factory=factory,
            plugin=plugin,
            description=description if description is not None else _first_line(factory.__doc__),
            default_cfg=dict(default_cfg) if default_cfg is not None else signature_defaults(factory),
            metadata=metadata,
        )
        table[name] = entry
        return entry

    def unregister_plugin(self, plugin: str) -> int:
        """Remove every entry of ``plugin``; returns how many were removed."""
        removed = 0
        for table in self._entries.values():
            for name in [n for n, e in table.items() if e.plugin == plugin]:
                del table[name]
                removed += 1
        return removed

    def get(self, kind: str, name: str) -> Entry:
        """The entry for ``name``; template entries match too.

        Raises:
            UnknownNameError: listing the closest registered names.
        """
        table = self._table(kind)
        if name in table:
            return table[name]
        for entry in table.values():
            if entry.match_template(name) is not None:
                return entry
        raise UnknownNameError(kind, name, self.suggest(kind, name), len(table))

    def create(self, kind: str, name: str, **overrides: Any) -> Any:
        """Build ``name`` of ``kind`` with its default config updated by ``overrides``."""
        return self.get(kind, name).build(name, **overrides)

    def names(self, kind: str, pattern: str | list[str] = "*") -> list[str]:
        """Registered names of ``kind`` matching the fnmatch pattern(s), naturally sorted."""
        patterns = [pattern] if isinstance(pattern, str) else list(pattern)
        table = self._table(kind)
        found = {n for n in table for p in patterns if fnmatch.fnmatchcase(n, p)}
        return sorted(found, key=natural_key)

    def entries(self, kind: str, pattern: str | list[str] = "*") -> list[Entry]:
        return [self._entries[kind][n] for n in self.names(kind, pattern)]

    def __iter__(self) -> Iterator[Entry]:
        for kind in KINDS:
            yield from self.entries(kind)

    def __contains__(self, key: tuple[str, str]) -> bool:
        kind, name = key
        try:
            self.get(kind, name)
        except UnknownNameError:
            return False
        return True

    def suggest(self, kind: str, name: str, n: int = 5) -> list[str]:
        """Registered names closest to ``name``: shared prefixes first, then fuzzy matches."""
        names = list(self._table(kind))
        low = name.lower()
        prefixed = [x for x in names if x.lower().startswith(low) or low.startswith(x.lower())]
        fuzzy = difflib.get_close_matches(name, names, n=n, cutoff=0.5)
        out: list[str] = []
        for x in sorted(prefixed, key=natural_key) + fuzzy:
            if x not in out:
                out.append(x)
        return out[:n]

    def _table(self, kind: str) -> dict[str, Entry]:
        if kind not in self._entries:
            raise ValueError(f"unknown registry kind {kind!r}; expected one of {', '.join(KINDS)}")
        return self._entries[kind]
