"""Atomic file writes that keep the usual permissions and fail with the file's name.

Some writers (safetensors' serialiser among them) create files readable by
their owner only (mode 0600) whatever the umask; a published weights file
must be servable by a web server. :func:`replace_atomic` gives the finished
file the mode an ordinary ``open(path, "w")`` would (0666 less the umask),
then renames it over the target in one step.
"""

from __future__ import annotations

import os
import stat
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


def _temporary(path: Path, owner: str) -> Path:
    """The temporary file beside ``path`` that process ``owner`` writes it through (``*``: any)."""
    return path.with_name(f".{path.name}.tmp-{owner}")


def write_atomic(path: str | Path, write: Callable[[Path], None], what: str, sync: bool = False) -> Path:
    """Write ``path`` through ``write(tmp)`` on a temporary file beside it, then rename it into place.

    On any failure the temporary file is removed and ``path`` is left as it
    was (the previous checkpoint or weights survive); the error names the file.

    Raises:
        OutputError: the write failed (disk full, read-only folder, file-size limit, ...).
    """
    path = Path(path)
    tmp = _temporary(path, str(os.getpid()))
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


def write_text_atomic(path: str | Path, text: str, what: str) -> Path:
    """:func:`write_atomic` for text: a symlink at ``path`` is replaced, never written through."""
    return write_atomic(path, lambda tmp: Path(tmp).write_text(text), what)


def append_line(path: str | Path, line: str) -> None:
    """Append ``line`` + newline to ``path``, refusing to follow a symlink out of its folder."""
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags, 0o666)
    except OSError as exc:
        raise OutputError(f"cannot append to {path} ({exc.strerror}); it must be a plain file") from exc
    with os.fdopen(fd, "a") as f:
        f.write(line + "\n")


def remove_temporaries(folder: str | Path, names: tuple[str, ...]) -> list[Path]:
    """Delete the temporary files :func:`write_atomic` leaves when killed mid-write (``.NAME.tmp-PID``).

    Call it only while holding the folder's lock (no live writer). Returns what was removed.
    """
    removed = []
    for name in names:
        for stale in Path(folder).glob(_temporary(Path(name), "*").name):
            stale.unlink(missing_ok=True)
            removed.append(stale)
    return removed


def finite_json(value: object) -> object:
    """``value`` with every NaN or infinite float replaced by None (JSON ``null``).

    ``json.dumps`` writes NaN as a bare ``NaN``, which is not JSON; use
    :func:`json_text` for everything handzoo writes.
    """
    import math

    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite_json(v) for v in value]
    return value


def json_text(value: object, **kwargs: object) -> str:
    """Strictly valid JSON (non-finite floats become ``null``); keyword arguments go to ``json.dumps``."""
    import json

    return json.dumps(finite_json(value), allow_nan=False, **kwargs)


MAX_IMAGE_BYTES = 256 << 20  # far above any photograph; bounds what one image file may make us read


def image_file_problem(path: str | Path) -> str | None:
    """Why ``path`` cannot be an image file to read (None when it can).

    Only regular files are read: opening a FIFO blocks for ever and a device
    such as ``/dev/zero`` never ends (symlinks are followed to what they name).
    A file over :data:`MAX_IMAGE_BYTES` is refused before any byte is read.
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return "file does not exist"
    except OSError as exc:
        return f"cannot read image ({exc.strerror or exc})"
    if stat.S_ISDIR(st.st_mode):
        return "is a folder, not an image file"
    if not stat.S_ISREG(st.st_mode):
        return "is not a regular file (a FIFO, device or socket); only image files are read"
    if st.st_size > MAX_IMAGE_BYTES:
        return f"is {st.st_size} bytes, more than the {MAX_IMAGE_BYTES >> 20} MiB an image file may have"
    return None
