"""A real HTTP server on 127.0.0.1:0, in a thread of the test process, serving canned answers.

The health checks must be proven against the ways a deployment's endpoints misbehave —
500s, HTML error pages, redirects to a login, answers after the timeout, a deep report that
contradicts itself. Those are served here over a real socket (the suite under test talks
HTTP to it like to production), and every path not canned is forwarded to the real
reference app, so only the fault under test differs from a healthy deployment.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

RECORDINGS = Path(__file__).resolve().parent / "recordings"
_UPSTREAM_TIMEOUT_S = 15


@dataclass(frozen=True)
class Canned:
    """One recorded answer: status, body, content type, extra headers, and a delay."""

    status: int = 200
    body: Any = b""  # bytes / str sent as is; anything else is sent as JSON
    content_type: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    delay_s: float = 0.0

    def payload(self) -> tuple[bytes, str]:
        if isinstance(self.body, bytes):
            return self.body, self.content_type or "application/octet-stream"
        if isinstance(self.body, str):
            return self.body.encode(), self.content_type or "text/plain; charset=utf-8"
        return json.dumps(self.body).encode(), self.content_type or "application/json"


def recording(name: str) -> Canned:
    """A recorded answer from tests/recordings/<name>.json ({http_status, body, ...})."""
    data = json.loads((RECORDINGS / f"{name}.json").read_text(encoding="utf-8"))
    return Canned(status=int(data["http_status"]), body=data["body"])


NOT_FOUND = Canned(404, {"detail": "Not Found"})


@dataclass
class LoopbackApi:
    """Serve ``routes`` (path -> Canned); other paths go to ``upstream``, else ``default``."""

    routes: dict[str, Canned] = field(default_factory=dict)
    default: Canned = NOT_FOUND
    upstream: str | None = None
    requests: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._release = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="loopback-api", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> LoopbackApi:
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._release.set()  # delayed answers give up at once
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def answer_target(self, target: str) -> tuple[int, bytes, str, tuple[tuple[str, str], ...], float]:
        """The answer to a request target (path and query); canned routes match the path."""
        return self.answer(urlsplit(target).path)

    def answer(self, path: str) -> tuple[int, bytes, str, tuple[tuple[str, str], ...], float]:
        canned = self.routes.get(path)
        if canned is None and self.upstream is not None:
            return (*self._forward(path), (), 0.0)
        canned = canned or self.default
        body, ctype = canned.payload()
        return canned.status, body, ctype, canned.headers, canned.delay_s

    def _forward(self, path: str) -> tuple[int, bytes, str]:
        assert self.upstream is not None
        try:
            with urllib.request.urlopen(self.upstream.rstrip("/") + path, timeout=_UPSTREAM_TIMEOUT_S) as resp:
                return resp.status, resp.read(), resp.headers.get("content-type", "")
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read(), exc.headers.get("content-type", "")

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        loop = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's spelling
                path = urlsplit(self.path).path
                loop.requests.append(path)
                status, body, ctype, headers, delay = loop.answer_target(self.path)
                if delay and loop._release.wait(delay):
                    return  # the test is over: drop the connection
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                for name, value in headers:
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return

        return Handler


class DroppingApi:
    """A real HTTP server on 127.0.0.1:0 that drops the first ``drops`` connections after
    reading their request (no answer: the client sees the link close mid-answer, as with a
    reset or a keep-alive the server had closed), then answers every GET with ``body``."""

    def __init__(self, drops: int, body: Any = None) -> None:
        import socket

        self.drops = drops
        self.body = json.dumps(body if body is not None else {"status": "ok"}).encode()
        self.connections = 0
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self._sock.settimeout(0.2)
        host, port = self._sock.getsockname()[:2]
        self.url = f"http://{host}:{port}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="dropping-api", daemon=True)

    def _serve(self) -> None:
        import socket

        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except (TimeoutError, socket.timeout):
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                try:
                    conn.recv(65536)
                except OSError:
                    continue
                self.connections += 1
                if self.connections <= self.drops:
                    continue  # closed without a byte of answer
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
                             + f"Content-Length: {len(self.body)}\r\n\r\n".encode() + self.body)

    def __enter__(self) -> DroppingApi:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._sock.close()


class StalledListener:
    """A real listening socket on 127.0.0.1:0 whose accept queue is full and never drained:
    the kernel drops every further SYN, so a client's TCP handshake never completes and it
    sees a connect timeout (httpx.ConnectTimeout), as with a host behind a silent firewall or
    an overloaded load balancer. Not a refused connection: nothing answers at all."""

    def __init__(self, fillers: int = 4) -> None:
        import socket

        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(0)
        host, port = self._sock.getsockname()[:2]
        self.url = f"http://{host}:{port}"
        self._fillers: list[socket.socket] = []
        for _ in range(fillers):  # fill the accept queue; never accepted
            conn = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            conn.setblocking(False)
            try:
                conn.connect((host, port))
            except BlockingIOError:
                pass
            self._fillers.append(conn)

    def __enter__(self) -> StalledListener:
        return self

    def __exit__(self, *exc: Any) -> None:
        for conn in self._fillers:
            conn.close()
        self._sock.close()
