"""Atomic file writes that keep the usual permissions and fail with the file's name.

Some writers (safetensors' serialiser among them) create files readable by
their owner only (mode 0600) whatever the umask; a published weights file
must be servable by a web server. :func:`replace_atomic` gives the finished
file the mode an ordinary ``open(path, "w")`` would (0666 less the umask),
then renames it over the target in one step.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from handzoo.errors import HandzooError


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


class OutputError(HandzooError):
    """An output file could not be written (disk full, read-only, a size limit); names the file."""


def write_atomic(path: str | Path, write: Callable[[Path], None], what: str, sync: bool = False) -> Path:
    """Write ``path`` through ``write(tmp)`` on a temporary file beside it, then rename it into place.

    On any failure the temporary file is removed and ``path`` is left as it
    was (the previous checkpoint or weights survive); the error names the file.

    Raises:
        OutputError: the write failed (disk full, read-only folder, file-size limit, ...).
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        if sync:
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        return replace_atomic(tmp, path)
    except Exception as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, HandzooError):
            raise
        text = str(exc).strip()
        reason = getattr(exc, "strerror", None) or (text.splitlines()[0] if text else type(exc).__name__)
        kept = "the previous one is kept" if path.exists() else "nothing was written under its name"
        raise OutputError(
            f"cannot write the {what} {path} ({reason}); {kept}. Free disk space or choose another --out"
        ) from exc
