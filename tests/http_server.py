"""A real HTTP server on 127.0.0.1 (free port, own thread) serving a folder, with fault switches.

::

    with serve_folder(tmp_path) as server:
        url = server.url + "/file.safetensors"
        server.faults.status = 404          # every GET answers 404
        server.faults.stall = 5.0           # sleep 5 s before answering (client times out)
        server.faults.truncate = 0.5        # send half the body, then close the connection
        server.faults.fail_first = 2        # the first 2 GETs answer 503
        server.faults.ranges = False        # ignore Range headers (always 200 + whole file)
        server.faults.endless = True        # no Content-Length, then bytes until the client hangs up
        server.faults.trickle = 0.2         # send one byte every 0.2 s
        server.requests                     # [(path, Range header or None, status), ...]

Range requests (``bytes=N-`` and ``bytes=N-M``) are honoured with 206 unless
``faults.ranges`` is False. A folder's ``index.html`` answers for the folder
and ``.html`` files are served as ``text/html``, so a folder in PEP 503
layout (``simple/<name>/index.html``) is a package index pip can use.
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


@dataclass
class Faults:
    status: int | None = None
    stall: float = 0.0
    truncate: float | None = None
    fail_first: int = 0
    ranges: bool = True
    endless: bool = False
    trickle: float | None = None

ENDLESS_CAP = 1 << 30  # an endless body still ends here, so a broken client cannot hang a test


@dataclass
class Server:
    url: str
    root: Path
    faults: Faults = field(default_factory=Faults)
    requests: list[tuple[str, str | None, int]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def range_requests(self) -> list[str]:
        return [r for _, r, _ in self.requests if r is not None]


def _handler(server: Server) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # keep test output clean
            pass

        def _answer(self, status: int, rng: str | None) -> None:
            server.requests.append((self.path, rng, status))
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.send_header("Connection", "close")
            self.end_headers()

        def do_GET(self) -> None:
            rng = self.headers.get("Range")
            faults = server.faults
            if faults.stall and server.stop.wait(faults.stall):
                return
            if faults.fail_first > 0:
                faults.fail_first -= 1
                return self._answer(503, rng)
            if faults.status is not None:
                return self._answer(faults.status, rng)
            path = server.root / self.path.lstrip("/").split("?", 1)[0]
            if path.is_dir():
                path = path / "index.html"
            if not path.is_file() or server.root not in path.resolve().parents:
                return self._answer(404, rng)
            data = path.read_bytes()
            start, end, status = 0, len(data), 200
            match = re.fullmatch(r"bytes=(\d+)-(\d*)", rng or "")
            if faults.ranges and match:
                start = int(match.group(1))
                end = int(match.group(2)) + 1 if match.group(2) else len(data)
                if start >= len(data):
                    return self._answer(416, rng)
                status = 206
            body = data[start:end]
            server.requests.append((self.path, rng, status))
            self.send_response(status)
            kind = "text/html; charset=utf-8" if path.suffix == ".html" else "application/octet-stream"
            self.send_header("Content-Type", kind)
            if not faults.endless:
                self.send_header("Content-Length", str(len(body)))
            self.send_header("Accept-Ranges", "bytes" if faults.ranges else "none")
            if status == 206:
                self.send_header("Content-Range", f"bytes {start}-{end - 1}/{len(data)}")
            self.send_header("Connection", "close")
            self.end_headers()
            if faults.truncate is not None:
                body = body[: int(len(body) * faults.truncate)]
            # The client hangs up on an endless or trickling body: that is the point of those faults.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self._send(body, faults)
            self.close_connection = True

        def _send(self, body: bytes, faults: Faults) -> None:
            if faults.trickle is not None:
                for k in range(len(body)):
                    if server.stop.wait(faults.trickle):
                        return
                    self.wfile.write(body[k : k + 1])
                    self.wfile.flush()
                return
            self.wfile.write(body)
            sent = len(body)
            while faults.endless and sent < ENDLESS_CAP and not server.stop.is_set():
                self.wfile.write(b"\0" * 65536)
                sent += 65536
            self.wfile.flush()

    return Handler


@contextmanager
def serve_folder(root: str | Path) -> Iterator[Server]:
    """Serve ``root`` over HTTP on 127.0.0.1 at a free port until the block ends."""
    root = Path(root).resolve()
    server = Server(url="", root=root)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(server))
    httpd.daemon_threads = True
    httpd.block_on_close = False  # a stalled handler must not hold up the test's exit
    server.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.stop.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)
