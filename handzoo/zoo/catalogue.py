"""Finding and loading the catalogue.

Where the catalogue comes from, first match wins: ``HANDZOO_ZOO`` (a path or
an http(s)/file URL), else the zoo.yaml shipped with handzoo.
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


def _read_text(source: str) -> str:
    if source.startswith(("http://", "https://")):
        import urllib.request

        try:
            with urllib.request.urlopen(source, timeout=20) as resp:
                return resp.read().decode()
        except OSError as exc:
            raise UsageError(f"{ZOO_ENV}={source}: cannot download the catalogue ({exc})") from exc
    path = Path(source.removeprefix("file://")).expanduser()
    if not path.is_file():
        raise UsageError(f"zoo catalogue {path} does not exist (set {ZOO_ENV} to a zoo.yaml path or URL)")
    return path.read_text()


def parse_zoo(text: str, source: str = "zoo.yaml") -> Zoo:
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML ({exc})") from exc
    try:
        return Zoo.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise ConfigError(f"{source}: {where}: {err['msg']}") from None


@lru_cache(maxsize=4)
def _load_cached(source: str, mtime: float) -> Zoo:
    return parse_zoo(_read_text(source), source)


def load_zoo(source: str | None = None) -> Zoo:
    """The validated catalogue (cached per source and modification time)."""
    src = source or zoo_source()
    path = Path(src.removeprefix("file://"))
    mtime = path.stat().st_mtime if not src.startswith("http") and path.exists() else 0.0
    return _load_cached(src, mtime)


def find_architecture(name: str, zoo: Zoo | None = None) -> Architecture | None:
    """The catalogue entry of model ``name``, or None when it has none."""
    zoo = zoo or load_zoo()
    return zoo.architectures.get(name)
