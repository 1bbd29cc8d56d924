"""Atomic file replacement that keeps the usual permissions.

Some writers (safetensors' serialiser among them) create files readable by
their owner only (mode 0600) whatever the umask; a published weights file
must be servable by a web server. :func:`replace_atomic` gives the finished
file the mode an ordinary ``open(path, "w")`` would (0666 less the umask),
then renames it over the target in one step.
"""

from __future__ import annotations

import os
from pathlib import Path


def current_umask() -> int:
    """The process umask (read from /proc where possible: setting it to read it is racy)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def replace_atomic(tmp: str | Path, path: str | Path) -> Path:
    """Give ``tmp`` the usual permissions and rename it to ``path`` (atomic on one file system)."""
    os.chmod(tmp, 0o666 & ~current_umask())
    os.replace(tmp, path)
    return Path(path)
