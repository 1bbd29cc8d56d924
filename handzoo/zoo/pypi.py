"""Weights that live inside a package on PyPI: ``pypi:DIST==VERSION/inner/path/file.ext``.

Some upstream networks are published only inside a Python package
(MediaPipe's ``.tflite`` files in the ``mediapipe`` wheel). A catalogue entry
then names the file inside the wheel, and its ``sha256`` and ``size`` are
those of that inner file, not of the wheel.

Fetching (:func:`fetch_inner`, :func:`fetch_inners`) runs pip::

    python -m pip download --no-deps --only-binary=:all: --platform manylinux_2_28_x86_64
        --python-version 3.11 --implementation cp --abi cp311 DIST==VERSION -d TMP

so pip's own configuration (index, mirror, proxy, certificates) applies, and
the options name one exact wheel: every machine, whatever its operating
system or Python, downloads the same file. The inner file alone is extracted
(streamed, never more bytes than the entry's size), its sha256 verified
(a mismatch raises :class:`~handzoo.zoo.transfer.IntegrityError` and caches
nothing) and it is cached, under a lock, as
``$HANDZOO_HOME/weights/pypi/DIST-VERSION/inner/path/file.ext``; the wheel
itself is deleted. A verified cached file is used without running pip.

Which wheel is pinned hardly matters for the files handzoo reads: the four
hand and palm ``.tflite`` files (hand_landmark_{full,lite},
palm_detection_{full,lite}) are byte-identical in mediapipe 0.10.21's wheels
for Linux x86_64 (cp311, cp312), macOS universal2 (cp310, cp311; pip's pick
for macOS arm64) and Windows amd64 (cp311), checked file by file with
sha256. That release has no Linux aarch64 wheel, one more reason to pin a
platform rather than take the running one's. So any wheel of the release
handed over with ``handzoo pull NAME --from FILE.whl`` works too: the sha256
of the inner file decides.

Without the network (or without pip), the error names the wheel to obtain
and how to hand it over: ``--from`` takes the wheel or the inner file itself.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
import sys
import tempfile
import warnings
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from handzoo.errors import UsageError
from handzoo.paths import weights_cache_dir
from handzoo.zoo.transfer import (
    CHUNK_BYTES,
    DEFAULT_RETRIES,
    DEFAULT_TIMEOUT,
    DownloadError,
    IntegrityError,
    file_lock,
    install_verified,
    sha256_file,
)

SCHEME = "pypi"
# The one wheel pip is asked for (see the module doc): same bytes on every machine.
WHEEL_PLATFORM = "manylinux_2_28_x86_64"
WHEEL_PYTHON = "3.11"
WHEEL_IMPLEMENTATION = "cp"
WHEEL_ABI = "cp311"
PIP_TARGET = (
    "--only-binary=:all:",
    "--platform",
    WHEEL_PLATFORM,
    "--python-version",
    WHEEL_PYTHON,
    "--implementation",
    WHEEL_IMPLEMENTATION,
    "--abi",
    WHEEL_ABI,
)
# Inner files that would be unpickled by whoever reads them: never fetched.
PICKLE_SUFFIXES = (".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".bin", ".joblib")

_DIST = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$")  # PEP 508 names
_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.+!_-]*$")
_SEGMENT = re.compile(r"^[A-Za-z0-9_.+-]+$")
_FORM = "pypi:DIST==VERSION/path/inside/the/wheel.ext"


@dataclass(frozen=True)
class PypiSource:
    """A file inside one release of a distribution on PyPI."""

    dist: str
    version: str
    inner: str  # the path inside the wheel, '/'-separated

    @property
    def spec(self) -> str:
        """``DIST==VERSION``, what pip is asked for."""
        return f"{self.dist}=={self.version}"

    @property
    def stem(self) -> str:
        """``dist-version`` with the name normalised as wheel file names spell it."""
        return f"{re.sub(r'[-_.]+', '_', self.dist).lower()}-{self.version}"

    @property
    def wheel_name(self) -> str:
        """The file name of the wheel pip is asked for (a platform wheel; see the module doc)."""
        return f"{self.stem}-{WHEEL_ABI}-{WHEEL_ABI}-{WHEEL_PLATFORM}.whl"

    def cache_path(self, cache: Path) -> Path:
        """Where the verified inner file is kept under the weights cache ``cache``."""
        return cache.joinpath(SCHEME, self.stem, *self.inner.split("/"))


@dataclass(frozen=True)
class InnerFile:
    """One file to fetch: its ``pypi:`` URL, the sha256 of its bytes and (optionally) its size."""

    url: str
    sha256: str | None
    size: int | None = None


def is_pypi_url(url: str) -> bool:
    return url.startswith(f"{SCHEME}:")


def parse_pypi_url(url: str) -> PypiSource:
    """``pypi:DIST==VERSION/inner/path`` -> :class:`PypiSource`.

    Raises:
        UsageError: anything else: another form, a version range, an inner path
            with ``..``, an absolute path or a pickle's suffix.
    """
    if not is_pypi_url(url):
        raise UsageError(f"{url!r}: expected {_FORM}")
    spec, sep, inner = url[len(SCHEME) + 1 :].partition("/")
    dist, pin, version = spec.partition("==")
    if not sep or not pin or not _DIST.match(dist) or not _VERSION.match(version):
        raise UsageError(f"{url!r}: expected {_FORM} (one exact version, ==)")
    parts = inner.split("/")
    if not all(_SEGMENT.match(p) and p not in (".", "..") for p in parts):
        raise UsageError(f"{url!r}: the path inside the wheel must be plain names separated by '/'")
    if PurePosixPath(inner).suffix.lower() in PICKLE_SUFFIXES:
        raise UsageError(f"{url!r}: a pickle ({PurePosixPath(inner).suffix}) is never fetched or loaded")
    return PypiSource(dist, version, inner)


# ----------------------------------------------------------------------------- fetching
def fetch_inner(
    url: str,
    sha256: str | None,
    size: int | None = None,
    source: str | Path | None = None,
    *,
    cache_dir: str | Path | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    retries: int = DEFAULT_RETRIES,
    progress: bool | None = None,
    pull_ref: str | None = None,
) -> Path:
    """The verified raw file that the ``pypi:`` URL ``url`` names.

    Args:
        url: ``pypi:DIST==VERSION/inner/path/file.ext``.
        sha256: the hex digest of the inner file; None for a URL no catalogue
            lists (then used unverified, with a warning).
        size: the inner file's size in bytes, when known (a larger member is
            refused before it is extracted).
        source: instead of running pip, a wheel (``.whl``) of the release or the
            inner file itself, e.g. copied from a machine with network access;
            verified and cached exactly like a download.
        cache_dir: default ``$HANDZOO_HOME/weights``.
        timeout, retries: pip's ``--timeout`` and ``--retries``.
        progress: say on stderr that pip runs (default: when stderr is a terminal).
        pull_ref: ``NAME:TAG`` of the catalogue entry, named in the error that
            says how to hand the file over.

    Returns:
        The cached file (``$HANDZOO_HOME/weights/pypi/DIST-VERSION/inner/path``).

    Raises:
        DownloadError: pip could not download the release (the message names
            the wheel to obtain and ``handzoo pull NAME --from FILE``).
        IntegrityError: the inner file's sha256 (or size) differs; nothing is cached.
        UsageError: a malformed URL, or a ``source`` that is missing or holds no such file.
    """
    return fetch_inners(
        [InnerFile(url, sha256, size)],
        source,
        cache_dir=cache_dir,
        timeout=timeout,
        retries=retries,
        progress=progress,
        pull_ref=pull_ref,
    )[0]


def fetch_inners(
    files: Sequence[InnerFile],
    source: str | Path | None = None,
    *,
    cache_dir: str | Path | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    retries: int = DEFAULT_RETRIES,
    progress: bool | None = None,
    pull_ref: str | None = None,
) -> list[Path]:
    """:func:`fetch_inner` for several files, in order; each release's wheel is downloaded once."""
    sources = [parse_pypi_url(f.url) for f in files]
    cache = Path(cache_dir) if cache_dir is not None else weights_cache_dir()
    finals = [s.cache_path(cache) for s in sources]
    given = Path(source).expanduser() if source is not None else None
    if given is not None and not given.is_file():
        raise UsageError(f"--from {source}: no such file")
    locks = sorted(
        {cache / ".locks" / f"{SCHEME}--{s.stem}--{s.inner.replace('/', '--')}.lock" for s in sources}
    )
    with contextlib.ExitStack() as stack:
        for lock in locks:  # in one order, so that two processes never wait for each other
            stack.enter_context(file_lock(lock))
        pending = [i for i, f in enumerate(files) if given is not None or not _cached(finals[i], f.sha256)]
        for spec in dict.fromkeys(sources[i].spec for i in pending):
            todo = [i for i in pending if sources[i].spec == spec]
            first = todo[0]
            with _wheel_for(
                sources[first], files[first].url, given, cache, timeout, retries, progress, pull_ref
            ) as wheel:
                for i in todo:
                    _install(files[i], sources[i], wheel, given, finals[i])
    return finals


def _cached(final: Path, sha256: str | None) -> bool:
    """Whether ``final`` is there and verified (a stale copy is removed with a warning)."""
    if not final.is_file():
        return False
    if sha256 is None or sha256_file(final) == sha256:
        return True  # offline use: a verified cached file needs neither pip nor the network
    warnings.warn(f"{final}: cached file does not match its sha256 any more; fetching it again", stacklevel=4)
    final.unlink()
    return False


@contextlib.contextmanager
def _wheel_for(
    src: PypiSource,
    url: str,
    given: Path | None,
    cache: Path,
    timeout: float,
    retries: int,
    progress: bool | None,
    pull_ref: str | None,
) -> Iterator[Path | None]:
    """The wheel to extract from: ``given`` (None when it is the inner file itself) or one pip downloads."""
    if given is not None:
        yield given if given.suffix == ".whl" else None
        return
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".pip-", dir=cache) as tmp:  # gone with the wheel afterwards
        yield _pip_download(src, url, Path(tmp), timeout, retries, progress, pull_ref)


def pip_command(
    spec: str, dest: str | Path, timeout: float = DEFAULT_TIMEOUT, retries: int = DEFAULT_RETRIES
) -> list[str]:
    """The pip command that downloads ``spec``'s pinned wheel (see the module doc) into ``dest``."""
    return [
        sys.executable, "-m", "pip", "download", "--no-deps", *PIP_TARGET,
        "--no-input", "--disable-pip-version-check", "--progress-bar", "off",
        "--timeout", f"{timeout:g}", "--retries", str(retries), "-d", str(dest), spec,
    ]  # fmt: skip


def _pip_download(
    src: PypiSource,
    url: str,
    dest: Path,
    timeout: float,
    retries: int,
    progress: bool | None,
    pull_ref: str | None,
) -> Path:
    if sys.stderr.isatty() if progress is None else progress:
        print(f"handzoo: fetching {src.spec} with pip for {src.inner.rsplit('/', 1)[-1]}", file=sys.stderr)
    done = subprocess.run(
        pip_command(src.spec, dest, timeout, retries),
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    wheels = sorted(dest.glob("*.whl"))
    if done.returncode != 0 or len(wheels) != 1:
        reason = _pip_reason(done.stdout + "\n" + done.stderr) or f"pip exited with code {done.returncode}"
        raise DownloadError(
            f"{url}: pip could not download {src.spec} ({reason}); on a machine that reaches the package "
            f"index, get the wheel {src.wheel_name} (`pip download --no-deps {' '.join(PIP_TARGET)} "
            f"{src.spec}`; any wheel of {src.spec} holding the same file does) and run "
            f"`handzoo pull {pull_ref or 'NAME'} --from {src.wheel_name}` here (--from also takes the file "
            f"{src.inner} taken out of it)"
        )
    return wheels[0]


_UNREACHABLE = re.compile(
    r"NewConnectionError|Connection refused|Name or service not known|name resolution|timed out|"
    r"ProxyError|SSLError|Could not fetch URL|Network is unreachable",
    re.I,
)


def _pip_reason(output: str) -> str:
    """pip's last ``ERROR:`` line (or its last line), and whether the index was unreachable."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line.removeprefix("ERROR:").strip() for line in lines if line.startswith("ERROR:")]
    found = (errors[-1] if errors else (lines[-1] if lines else "")).rstrip(".")
    if _UNREACHABLE.search(output):
        found = (
            f"{found}; the package index could not be reached" if found else "the index could not be reached"
        )
    return found


def _install(file: InnerFile, src: PypiSource, wheel: Path | None, given: Path | None, final: Path) -> None:
    """Extract (or copy) the inner file to ``final``, verified (see ``transfer.install_verified``)."""
    where = f"--from {given}" if given is not None else wheel.name if wheel is not None else ""
    origin = f"{where} ({src.inner})" if wheel is not None else where

    def write(part: Path) -> None:
        if wheel is not None:
            _extract(wheel, src, where, part, file)
            return
        assert given is not None
        if file.size is not None and given.stat().st_size != file.size:
            raise _size_error(origin, given.stat().st_size, file)
        shutil.copyfile(given, part)

    def verify(part: Path) -> None:
        found = sha256_file(part)
        if file.sha256 is None:
            warnings.warn(
                f"{file.url}: no catalogue lists this URL, so its sha256 ({found[:16]}...) is not verified",
                stacklevel=7,  # the caller of fetch_inner(s)
            )
        elif found != file.sha256:
            fix = (
                f"it is not the file the catalogue names: hand over a wheel of {src.spec} or its {src.inner}"
                if given is not None
                else "the release on the index changed or the zoo entry is wrong: fix the entry's sha256"
            )
            raise IntegrityError(
                f"{origin}: sha256 is {found[:16]}..., the catalogue expects {file.sha256[:16]}... for "
                f"{file.url}; nothing was cached: {fix}"
            )

    install_verified(final, write, verify)


def _size_error(origin: str, found: int, file: InnerFile) -> IntegrityError:
    return IntegrityError(
        f"{origin}: {found} bytes, the catalogue expects {file.size} for {file.url}; nothing was cached"
    )


def _extract(wheel: Path, src: PypiSource, where: str, part: Path, file: InnerFile) -> None:
    """Stream ``src.inner`` out of ``wheel`` into ``part`` (never more bytes than the entry's size)."""
    origin = f"{where} ({src.inner})"
    try:
        with zipfile.ZipFile(wheel) as archive:
            try:
                info = archive.getinfo(src.inner)
            except KeyError:
                raise UsageError(
                    f"{where}: the wheel holds no {src.inner}; is it a wheel of {src.spec}?"
                ) from None
            if file.size is not None and info.file_size != file.size:
                raise _size_error(origin, info.file_size, file)
            limit = info.file_size if file.size is None else file.size
            with archive.open(info) as member, open(part, "wb") as out:
                written = 0
                while block := member.read(CHUNK_BYTES):
                    written += len(block)
                    if written > limit:  # a member larger than its header says
                        raise _size_error(origin, written, file)
                    out.write(block)
    except (zipfile.BadZipFile, zipfile.LargeZipFile) as exc:
        raise UsageError(f"{where}: not a readable wheel (zip) file ({exc})") from None
