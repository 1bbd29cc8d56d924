"""Finding and loading the catalogue.

Where the catalogue comes from, first match wins: ``HANDZOO_ZOO`` (a path or
an http(s)/file URL), else the zoo.yaml shipped with handzoo. The catalogues
plugins ship beside their models (hook ``register_catalogues``) join it:
their recipes and architectures are added under their own names, each
architecture's ``source`` says where it came from, and a name already
defined is refused (the plugin's error in ``handzoo plugins``).
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import yaml
from pydantic import ValidationError

from handzoo.errors import ConfigError, UsageError
from handzoo.zoo.schema import Architecture, Zoo

ZOO_ENV = "HANDZOO_ZOO"
_PACKAGED = Path(__file__).resolve().parent.parent / "zoo.yaml"


def zoo_source() -> str:
    """The path or URL the catalogue is read from."""
    return os.environ.get(ZOO_ENV) or str(_PACKAGED)


CATALOGUE_MAX_BYTES = 16 << 20  # a remote catalogue is YAML text: 16 MiB is far beyond any real one
CATALOGUE_DEADLINE = 60.0  # seconds to read a remote catalogue whole


def _read_text(source: str) -> str:
    if source.startswith(("http://", "https://")):
        from handzoo.zoo.transfer import DownloadError, read_bounded

        try:
            body = read_bounded(source, CATALOGUE_MAX_BYTES, timeout=20.0, deadline=CATALOGUE_DEADLINE)
        except DownloadError as exc:
            raise UsageError(f"{ZOO_ENV}={source}: cannot download the catalogue ({exc})") from None
        try:
            return body.decode()
        except UnicodeDecodeError as exc:
            raise UsageError(f"{ZOO_ENV}={source}: the catalogue is not UTF-8 text ({exc})") from None
    path = Path(source.removeprefix("file://")).expanduser()
    if not path.is_file():
        raise UsageError(f"zoo catalogue {path} does not exist (set {ZOO_ENV} to a zoo.yaml path or URL)")
    return path.read_text()


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key that appears twice in one mapping (YAML keeps the last
    copy silently, so an edited entry could be shadowed by a stale one further down)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[object, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise DuplicateKeyError(key, line, seen[key])
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


class DuplicateKeyError(yaml.YAMLError):
    def __init__(self, key: object, line: int, first: int) -> None:
        super().__init__(f"line {line}: key {key!r} appears twice (first at line {first}); keep one")
        self.key, self.line, self.first = key, line, first


def parse_zoo(text: str, source: str = "zoo.yaml") -> Zoo:
    try:
        raw = yaml.load(text, Loader=_UniqueKeyLoader) or {}
    except DuplicateKeyError as exc:
        raise ConfigError(f"{source}:{exc.line}: key {exc.key!r} appears twice (first at line {exc.first}); "
                          "YAML would keep the last copy silently: keep one") from None
    except yaml.YAMLError as exc:
        # yaml's messages span lines (the problem, then where); the error is one line
        raise ConfigError(f"{source}: not valid YAML ({' '.join(str(exc).split())})") from exc
    try:
        zoo = Zoo.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        # a name with a line break or another control character is quoted: the error stays one line
        where = ".".join(str(p) if str(p).isprintable() else repr(p) for p in err["loc"])
        raise ConfigError(f"{source}: {where}: {err['msg']}") from None
    for arch in zoo.architectures.values():
        for entry in arch.weights:
            entry.url = beside_catalogue(entry.url, source)
    return zoo


def beside_catalogue(url: str, source: str) -> str:
    """A weight url resolved against the catalogue ``source`` (a path, file:// or http(s) URL) that lists
    it: a plain file name is the file beside the catalogue; any other url is returned as it is."""
    from urllib.parse import urljoin, urlparse

    if urlparse(url).scheme or "/" in url:
        return url
    if source.startswith(("http://", "https://")):
        return urljoin(source, url)
    folder = Path(source.removeprefix("file://")).expanduser().resolve().parent
    return (folder / url).as_uri()


@lru_cache(maxsize=4)
def _load_cached(source: str, mtime: float, plugin_files: tuple[tuple[str, str, float], ...]) -> Zoo:
    zoo = parse_zoo(_read_text(source), source)
    for arch in zoo.architectures.values():
        arch.source = source
    for plugin, path, _ in plugin_files:
        _merge(zoo, plugin, path)
    return zoo


def _merge(zoo: Zoo, plugin: str, path: str) -> None:
    """Add a plugin's catalogue to ``zoo``; names already taken are refused and reported."""
    from handzoo.plugins import get_host

    info = get_host().plugins.get(plugin)
    try:
        extra = parse_zoo(_read_text(path), path)
    except (ConfigError, UsageError, OSError) as exc:
        if info is not None:
            info.errors.append(f"catalogue {path}: {exc}")
        return
    for kind, mine, theirs in (("recipe", zoo.recipes, extra.recipes),
                               ("architecture", zoo.architectures, extra.architectures)):
        for name, value in theirs.items():
            if name in mine:
                where = getattr(mine[name], "source", None) or "the catalogue"
                message = f"catalogue {path}: {kind} {name!r} refused, {where} defines it"
                zoo.refused.append(f"plugin {plugin!r}: {message}")
                if info is not None:
                    info.errors.append(message)
                continue
            if kind == "architecture":
                value.source = path
            mine[name] = value


def _plugin_catalogues() -> tuple[tuple[str, str, float], ...]:
    from handzoo.plugins import get_host

    found = []
    for info in get_host().plugins.values():
        if info.status == "loaded":
            for path in info.catalogues:
                p = Path(path)
                found.append((info.name, path, p.stat().st_mtime if p.exists() else 0.0))
    return tuple(found)


def load_zoo(source: str | None = None, plugins: bool = True) -> Zoo:
    """The validated catalogue with the plugins' catalogues (cached per source and modification time).

    ``plugins=False`` reads the one file alone (what ``publish`` edits).
    """
    src = source or zoo_source()
    path = Path(src.removeprefix("file://"))
    mtime = path.stat().st_mtime if not src.startswith("http") and path.exists() else 0.0
    return _load_cached(src, mtime, _plugin_catalogues() if plugins else ()).model_copy(deep=True)


def find_architecture(name: str, zoo: Zoo | None = None) -> Architecture | None:
    """The catalogue entry of model ``name``, or None when it has none."""
    zoo = zoo or load_zoo()
    return zoo.architectures.get(name)
