"""Where handzoo keeps files: one home folder, ``$HANDZOO_HOME`` (default ``~/.cache/handzoo``).

Inside it: ``weights/`` (downloaded, verified weights), ``synthetic/`` (the
generated synthetic sets), ``cache/freihand/`` (parsed annotations and
decoded image caches). Nothing is written outside it unless asked for.
"""

from __future__ import annotations

import os
from pathlib import Path

HOME_ENV = "HANDZOO_HOME"


def handzoo_home() -> Path:
    """``$HANDZOO_HOME`` or ``~/.cache/handzoo``."""
    return Path(os.environ.get(HOME_ENV) or Path.home() / ".cache" / "handzoo").expanduser()


def weights_cache_dir() -> Path:
    """Downloaded weights: ``$HANDZOO_HOME/weights``."""
    return handzoo_home() / "weights"


def freihand_cache_dir() -> Path:
    """Parsed FreiHAND annotations and image caches: ``$HANDZOO_HOME/cache/freihand``."""
    return handzoo_home() / "cache" / "freihand"


def synthetic_home() -> Path:
    """Generated synthetic sets: ``$HANDZOO_HOME/synthetic``."""
    return handzoo_home() / "synthetic"
