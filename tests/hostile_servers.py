"""Loopback servers that misbehave on purpose: answers trickled a byte at a time, bodies that
decompress to a gigabyte, bodies too large or too deep to read whole (issue 17).

``HostileApi`` is a ``LoopbackApi`` (tests/loopback.py) that also streams some paths from a
generator — over a real socket, with a pause before each chunk — so the suite's GET meets
them as it would meet a hostile production target. Every other path is canned or forwarded
to the real reference app as usual. Nothing large is stored: each body is generated while
it is sent, and the client closing the connection ends it.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from urllib.parse import urlsplit

from tests.loopback import LoopbackApi


@dataclass(frozen=True)
class Streamed:
    """An answer sent chunk by chunk: ``every_s`` before each chunk (0: as fast as the
    socket takes them). ``trickle_headers``: the status line, then one header line every
    ``every_s`` seconds, forever — the body never starts."""

    chunks: Callable[[], Iterable[bytes]] = lambda: ()
    status: int = 200
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()
    every_s: float = 0.0
    trickle_headers: bool = False


def trickle(byte: bytes = b" ") -> Callable[[], Iterator[bytes]]:
    """One byte per chunk, forever (with ``every_s``: a server that never finishes)."""

    def chunks() -> Iterator[bytes]:
        while True:
            yield byte

    return chunks


def gzip_bomb(decoded_mb: int, head: bytes = b'{"status": "healthy", "pad": "') -> Callable[[], Iterator[bytes]]:
    """A gzip stream that decodes to ``decoded_mb`` MB (a 1 GB one is about 1 MB on the wire),
    compressed while it is sent."""

    def chunks() -> Iterator[bytes]:
        gz = zlib.compressobj(9, zlib.DEFLATED, 31)
        block = b"a" * (1 << 20)
        yield gz.compress(head)
        for _ in range(decoded_mb):
            out = gz.compress(block)
            if out:
                yield out
        yield gz.flush()

    return chunks


def large_json(mb: int, head: bytes = b'{"status": "healthy", "pad": "', tail: bytes = b'"}') -> Callable[[], Iterator[bytes]]:
    """A JSON object of about ``mb`` MB: one long string of letters (the shape that made
    scrubbing quadratic), generated while it is sent."""

    def chunks() -> Iterator[bytes]:
        yield head
        block = b"a" * (1 << 20)
        for _ in range(mb):
            yield block
        yield tail

    return chunks


@dataclass
class HostileApi(LoopbackApi):
    """``LoopbackApi`` plus ``streamed`` paths (path -> Streamed); ``every_path``: the answer
    streamed on any other path."""

    streamed: dict[str, Streamed] = field(default_factory=dict)
    every_path: Streamed | None = None

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        base = super()._handler_class()
        api = self

        class Handler(base):  # type: ignore[valid-type, misc]
            def do_POST(self) -> None:  # noqa: N802 - a read sent as POST (Railway's GraphQL query)
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.do_GET()

            def do_GET(self) -> None:  # noqa: N802 - http.server's spelling
                path = urlsplit(self.path).path
                answer = api.streamed.get(path, api.every_path)
                if answer is None:
                    super().do_GET()
                    return
                api.requests.append(path)
                try:
                    api._stream(self, answer)
                except OSError:
                    pass  # the client hung up: what its bounds are for

        return Handler

    def _stream(self, handler: BaseHTTPRequestHandler, answer: Streamed) -> None:
        out = handler.wfile
        if answer.trickle_headers:
            out.write(f"HTTP/1.1 {answer.status} OK\r\n".encode())
            out.flush()
            while not self._release.wait(answer.every_s):
                out.write(b"X-Trickle: 1\r\n")
                out.flush()
            return
        # HTTP/1.0, no Content-Length: the body ends when the server closes the connection
        handler.send_response(answer.status)
        handler.send_header("Content-Type", answer.content_type)
        for name, value in answer.headers:
            handler.send_header(name, value)
        handler.end_headers()
        for chunk in answer.chunks():
            if answer.every_s and self._release.wait(answer.every_s):
                return  # the test is over
            out.write(chunk)
            out.flush()
