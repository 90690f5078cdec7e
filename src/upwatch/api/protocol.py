"""uvicorn's httptools protocol with the two connection guards it lacks.

uvicorn cuts idle keep-alive connections (``timeout_keep_alive``) but has no limit on how
long a client may take to send a request's headers, nor on how many header bytes it may
send: one client trickling a byte every few seconds, or streaming an endless header,
holds a connection (and its memory) for as long as it likes. No well-kept ASGI server
option covers this, so these few lines are ours:

- the request line and headers must arrive within ``header_timeout_s`` of the connection
  opening or of the previous response on it; otherwise the connection is closed;
- more than ``max_header_bytes`` of request line and headers is answered with 431 and the
  connection is closed, before the parser buffers any more.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

HEADER_TIMEOUT_S = 10.0
MAX_HEADER_BYTES = 64 * 1024


def guarded_protocol(
    *, header_timeout_s: float = HEADER_TIMEOUT_S, max_header_bytes: int = MAX_HEADER_BYTES
) -> type[HttpToolsProtocol]:
    """The protocol class to pass to ``uvicorn.Config(http=...)``."""

    class GuardedHttpToolsProtocol(_Guarded):
        HEADER_TIMEOUT_S = header_timeout_s
        MAX_HEADER_BYTES = max_header_bytes

    return GuardedHttpToolsProtocol


class _Guarded(HttpToolsProtocol):
    HEADER_TIMEOUT_S = HEADER_TIMEOUT_S
    MAX_HEADER_BYTES = MAX_HEADER_BYTES

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None
        self._awaiting_headers = True  # waiting for the client to send a request head
        self._header_bytes = 0

    # -- the header deadline -------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        idle = self.cycle is None or self.cycle.response_complete  # no pipelined request
        if idle and not self.transport.is_closing():
            self._awaiting_headers = True
            self._header_bytes = 0
            self._arm()

    def on_headers_complete(self) -> None:
        self._awaiting_headers = False
        self._disarm()
        # Headers that arrived whole in one read were not counted by data_received.
        size = len(self.url) + sum(len(k) + len(v) + 4 for k, v in self.headers)
        if size > self.MAX_HEADER_BYTES:
            self._send_431()
            return
        super().on_headers_complete()

    def _arm(self) -> None:
        self._disarm()
        self._header_timer = self.loop.call_later(self.HEADER_TIMEOUT_S, self._headers_late)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_late(self) -> None:
        self._header_timer = None
        if self._awaiting_headers and not self.transport.is_closing():
            self.transport.close()

    # -- the header size cap ---------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self._awaiting_headers:
            self._header_bytes += len(data)
        super().data_received(data)
        if (
            self._awaiting_headers
            and self._header_bytes > self.MAX_HEADER_BYTES
            and not self.transport.is_closing()
        ):
            self._send_431()

    def on_body(self, body: bytes) -> None:
        if not self.transport.is_closing():  # not after a 431
            super().on_body(body)

    def on_message_complete(self) -> None:
        if not self.transport.is_closing():
            super().on_message_complete()

    def _send_431(self) -> None:
        body = orjson.dumps(
            {
                "error": {
                    "code": "HEADERS_TOO_LARGE",
                    "message": f"Request line and headers exceed {self.MAX_HEADER_BYTES} bytes",
                }
            }
        )
        head = (
            b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
            b"content-type: application/json\r\n"
            b"content-length: " + str(len(body)).encode() + b"\r\n"
            b"connection: close\r\n\r\n"
        )
        self.transport.write(head + body)
        self.transport.close()
        self._disarm()
