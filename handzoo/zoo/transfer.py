"""Moving bytes safely: bounded transfers, verified files, the cache's file locks.

The lowest layer of the zoo package, shared by the hub (weights over
http(s)/hf://), the ``pypi:`` sources and remote catalogues:

* :class:`Bound`: the size (the catalogue's ``size``, else
  :data:`DEFAULT_MAX_BYTES`, ``HANDZOO_MAX_DOWNLOAD_BYTES``) and time
  (:data:`DEFAULT_DEADLINE` seconds, ``HANDZOO_DOWNLOAD_DEADLINE``) bounds of
  one transfer; :func:`read_bounded` reads a small body (a catalogue) whole;
* :func:`sha256_file`, :func:`verify_file`, :func:`install_verified` (write
  through ``.part``, verify, rename into place, nothing left on failure);
* :func:`file_lock`: one process at a time per cached file.

It knows nothing of catalogues or models.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from handzoo._version import __version__
from handzoo.errors import HandzooError, UsageError
from handzoo.files import replace_atomic

CHUNK_BYTES = 1 << 20
DEFAULT_TIMEOUT = 30.0  # seconds without a byte before a connection counts as stalled
DEFAULT_RETRIES = 3  # further attempts after the first, for transient errors only
DEFAULT_BACKOFF = 1.0  # seconds before the first retry; doubles each time
MAX_BYTES_ENV = "HANDZOO_MAX_DOWNLOAD_BYTES"
DEADLINE_ENV = "HANDZOO_DOWNLOAD_DEADLINE"
DEFAULT_MAX_BYTES = 4 << 30  # 4 GiB: a download with no catalogue size may not grow past this
DEFAULT_DEADLINE = 3600.0  # seconds for a whole download, all attempts together


def _env_number(name: str, default: float, kind: type = float) -> Any:
    value = os.environ.get(name)
    if not value:
        return default
    try:
        number = kind(value)
    except ValueError:
        number = None
    if number is None or not number > 0 or number == float("inf"):
        kind_text = "whole number of bytes" if kind is int else "finite number of seconds"
        raise UsageError(f"{name}={value!r} is not a positive {kind_text}; unset it or fix it")
    return number


def max_download_bytes() -> int:
    """The size bound of a download whose catalogue entry gives no ``size``."""
    return _env_number(MAX_BYTES_ENV, DEFAULT_MAX_BYTES, int)


def download_deadline() -> float:
    """Seconds one download (all its attempts together) may take."""
    return _env_number(DEADLINE_ENV, DEFAULT_DEADLINE)


class DownloadError(HandzooError):
    """Weights could not be downloaded (404, timeout, truncated transfer, no network).

    ``transient`` tells whether trying again later may help (a ``.part`` file
    may then be kept for the next attempt to resume).
    """

    def __init__(self, message: str, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


class IntegrityError(HandzooError):
    """A file's sha256 differs from the one the catalogue records."""


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(CHUNK_BYTES):
            digest.update(block)
    return digest.hexdigest()


def verify_file(path: str | Path, sha256: str, source: str | None = None) -> None:
    """Raise :class:`IntegrityError` unless ``path`` hashes to ``sha256``."""
    found = sha256_file(path)
    if found != sha256:
        raise IntegrityError(
            f"{source or path}: sha256 is {found[:16]}..., the catalogue expects {sha256[:16]}...; "
            "the file was modified or the zoo entry is out of date (republish it or fix its sha256)"
        )


def install_verified(final: Path, write: Callable[[Path], None], verify: Callable[[Path], None]) -> Path:
    """Put a file in the cache at ``final`` through ``final.part``, atomically.

    ``write(part)`` fills the part file and ``verify(part)`` raises on a wrong
    file (an :class:`IntegrityError`); when either fails, the part file is
    removed and the cache is left as it was. The caller holds the file's lock.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    part = final.with_name(final.name + ".part")
    try:
        write(part)
        verify(part)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    replace_atomic(part, final)
    return final


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock between processes downloading the same file (POSIX; a no-op elsewhere)."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class Bound:
    """The size and time bounds of one transfer (all its attempts together).

    ``limit`` bytes at most (``exact``: the catalogue's size of the file, else
    the default cap) and :func:`download_deadline` seconds from construction.
    """

    def __init__(
        self,
        url: str,
        limit: int,
        exact: bool,
        deadline: float | None = None,
        what: str | None = None,
        advice: str = "the transfer was stopped and its partial file deleted: check the URL and the "
        "catalogue entry",
    ) -> None:
        self.url, self.limit, self.exact = url, limit, exact
        self.what = what or (
            "the size its catalogue entry gives"
            if exact
            else f"the cap for downloads of unknown size (set {MAX_BYTES_ENV} to raise it)"
        )
        self.advice = advice
        self.slow = f"try again later or raise {DEADLINE_ENV}" if deadline is None else "try again later"
        self.deadline = download_deadline() if deadline is None else deadline
        self.ends = time.monotonic() + self.deadline

    def remaining(self) -> float:
        return self.ends - time.monotonic()

    def timeout(self, per_read: float) -> float:
        """The socket timeout of the next connection: the per-read timeout, cut to the deadline."""
        return max(0.05, min(per_read, self.remaining()))

    def check(self, received: int) -> None:
        """Raise DownloadError once ``received`` bytes pass the limit or the deadline has passed."""
        if received > self.limit:
            raise DownloadError(
                f"{self.url}: the server sent more than {self.limit} bytes, {self.what}; {self.advice}"
            )
        if self.remaining() < 0:
            raise DownloadError(
                f"{self.url}: the transfer did not finish within {self.deadline:g} s ({received} bytes "
                f"received); the server is stalled or too slow: {self.slow}",
                transient=True,
            )

    def stream(self, response: Any, write: Callable[[bytes], Any], received: int = 0) -> Iterator[int]:
        """Copy ``response``'s body through ``write``, yielding the running byte count.

        ``read1`` returns as soon as any bytes arrive, so a server that trickles
        a byte at a time meets the deadline rather than filling a whole chunk.
        """
        while True:
            self.check(received)
            block = response.read1(CHUNK_BYTES)
            if not block:
                return
            received += len(block)
            self.check(received)
            write(block)
            yield received


def read_bounded(url: str, limit: int, timeout: float, deadline: float) -> bytes:
    """The whole body at ``url`` (a remote catalogue), at most ``limit`` bytes within ``deadline`` s.

    Raises :class:`DownloadError` (one line) for network errors and crossed bounds.
    """
    bound = Bound(
        url, limit, exact=False, deadline=deadline, what="the most one may hold", advice="check the URL"
    )
    request = urllib.request.Request(url, headers={"User-Agent": f"handzoo/{__version__}"})
    body = bytearray()
    try:
        with urllib.request.urlopen(request, timeout=bound.timeout(timeout)) as response:
            length = response.headers.get("Content-Length")
            if length is not None and length.isdigit():
                bound.check(int(length))
            for _ in bound.stream(response, body.extend):
                pass
    except urllib.error.HTTPError as exc:
        exc.close()
        raise DownloadError(f"{url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        raise DownloadError(f"{url}: {type(reason).__name__}: {reason}", transient=True) from None
    return bytes(body)
