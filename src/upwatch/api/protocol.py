"""uvicorn's httptools protocol with the connection guards it lacks.

uvicorn cuts idle keep-alive connections (``timeout_keep_alive``) but has no limit on how
long a client may take to send a request's headers, nor on how many header bytes it may
send: one client trickling a byte every few seconds, or streaming an endless header,
holds a connection (and its memory) for as long as it likes. Its ``limit_concurrency``
counts open connections as well as requests, so idle keep-alive clients would be
refused. No well-kept ASGI server option covers these, so these lines are ours:

- the request line and headers must arrive within ``header_timeout_s`` of the connection
  opening or of the previous response on it; otherwise the connection is closed;
- more than ``max_header_bytes`` of request line and headers is answered with 431 and the
  connection is closed, before the parser buffers any more;
- a request is refused with 503 at once, from here (no task, no ASGI, no parsing of its
  body, so that refusing costs almost nothing), when requests have been waiting longer
  than a target for longer than an interval (``DelayShedder``, CoDel's test: a burst is
  absorbed, a standing queue is not), or past ``max_in_flight`` requests received and
  not yet answered (a backstop for queues the delay does not see, such as writers
  waiting for SQLite's lock). The delay is measured from when a request arrived (an
  estimate: on one event loop most of the queue is still unread, in the sockets; see
  ``shedding``) to when it is served: when it holds its database connection (a
  handler may start at once and then queue for PostgreSQL's pool or SQLite's write
  lock: ``upwatch/waiting.py``), or when its response starts if it needs none. An
  ASGI middleware would never see the part of the wait spent unread.
  ``/healthz`` is never refused, so that a load balancer does not take a busy node out
  and push its load onto the others; nor is a request pipelined behind another on its
  connection (uvicorn answers those in order).

Its 503s and 431s carry an ``X-Request-Id`` like every other response (the client's, if
sane, else a new one: ``api/requestlog.py``), but no access line: a refusal must cost
almost nothing when thousands a second are refused (they are counted, and logged every
10,000). uvicorn's own 400 for a request it cannot parse carries none.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from upwatch import waiting
from upwatch.api.requestlog import request_id
from upwatch.api.shedding import BURST_REQUESTS, INTERVAL_S, DelayShedder
from upwatch.waiting import Wait

log = logging.getLogger(__name__)

HEADER_TIMEOUT_S = 10.0
MAX_HEADER_BYTES = 64 * 1024
NEVER_SHED = (b"/healthz",)
ARRIVED = "upwatch.arrived"  # scope key: loop time at which the request arrived (estimate)


def _response(status: bytes, code: str, message: str, *extra: bytes) -> bytes:
    body = orjson.dumps({"error": {"code": code, "message": message}})
    head = [
        b"HTTP/1.1 " + status,
        b"content-type: application/json",
        b"content-length: " + str(len(body)).encode(),
        *extra,
    ]
    return b"\r\n".join(head) + b"\r\n\r\n" + body


def _with_id(response: bytes, headers: list[tuple[bytes, bytes]] | None) -> bytes:
    """``response`` with the request's ``x-request-id`` header added."""
    head, blank, body = response.partition(b"\r\n\r\n")
    return head + b"\r\nx-request-id: " + request_id(headers or ()).encode() + blank + body


_OVERLOADED = ("SERVICE_UNAVAILABLE", "The server is overloaded; retry shortly")
SHED_KEEP_ALIVE = _response(b"503 Service Unavailable", *_OVERLOADED, b"retry-after: 1")
SHED_CLOSE = _response(
    b"503 Service Unavailable", *_OVERLOADED, b"retry-after: 1", b"connection: close"
)


def guarded_protocol(
    *,
    header_timeout_s: float = HEADER_TIMEOUT_S,
    max_header_bytes: int = MAX_HEADER_BYTES,
    max_in_flight: int = 0,
    shed_target_s: float = 0.0,
    shed_interval_s: float = INTERVAL_S,
    shed_burst: int = BURST_REQUESTS,
) -> type[HttpToolsProtocol]:
    """The protocol class to pass to ``uvicorn.Config(http=...)``. ``max_in_flight`` 0
    and ``shed_target_s`` 0 turn off their reason to refuse."""

    class GuardedHttpToolsProtocol(_Guarded):
        HEADER_TIMEOUT_S = header_timeout_s
        MAX_HEADER_BYTES = max_header_bytes
        MAX_IN_FLIGHT = max_in_flight
        shedder = DelayShedder(target_s=shed_target_s, interval_s=shed_interval_s, burst=shed_burst)
        in_flight = 0  # requests received and not yet answered, in this server
        shed = 0  # requests refused, in this server

    return GuardedHttpToolsProtocol


class _Guarded(HttpToolsProtocol):
    HEADER_TIMEOUT_S = HEADER_TIMEOUT_S
    MAX_HEADER_BYTES = MAX_HEADER_BYTES
    MAX_IN_FLIGHT = 0
    shedder = DelayShedder(target_s=0.0)
    in_flight = 0
    shed = 0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.app = _timed(self.app, self.shedder, self.loop)
        self._header_timer: asyncio.TimerHandle | None = None
        self._awaiting_headers = True  # waiting for the client to send a request head
        self._header_bytes = 0
        self._shedding = False  # the request being read was refused
        self._unanswered = 0  # this connection's share of in_flight
        self._free_since = self.loop.time()  # when it could last send a request

    # -- the header deadline -------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        type(self).in_flight -= self._unanswered
        self._unanswered = 0
        super().connection_lost(exc)

    def on_response_complete(self) -> None:
        self._free_since = now = self.loop.time()
        self.shedder.answered(now)
        if self._unanswered:
            self._unanswered -= 1
            type(self).in_flight -= 1
        super().on_response_complete()
        idle = self.cycle is None or self.cycle.response_complete  # no pipelined request
        if idle and not self.transport.is_closing():
            self._await_next_request()

    def on_headers_complete(self) -> None:
        self._awaiting_headers = False
        self._disarm()
        # Headers that arrived whole in one read were not counted by data_received.
        size = len(self.url) + sum(len(k) + len(v) + 4 for k, v in self.headers)
        if size > self.MAX_HEADER_BYTES:
            self._send_431()
            return
        # A request queued behind one still running on this connection (pipelined) is
        # answered in order by uvicorn, never from here; it is not queued for the loop.
        first = self.cycle is None or self.cycle.response_complete
        refusable = first and not self.url.startswith(NEVER_SHED)
        if refusable and 0 < self.MAX_IN_FLIGHT <= type(self).in_flight:
            self._shed(backstop=True)
            return
        if first:
            arrived = self.shedder.admit(self.loop.time(), self._free_since, refusable=refusable)
            if arrived is None:
                self._shed(backstop=False)
                return
            self.scope[ARRIVED] = arrived  # type: ignore[literal-required]
        before = self.cycle
        super().on_headers_complete()
        if self.cycle is not before:  # a request to answer (not a protocol upgrade)
            self._unanswered += 1
            type(self).in_flight += 1
        elif first:
            self.shedder.forget()

    # -- load shedding -----------------------------------------------------------------

    def _shed(self, *, backstop: bool) -> None:
        cls = type(self)
        cls.shed += 1
        self._free_since = now = self.loop.time()
        self.shedder.answered(now)
        if cls.shed == 1 or cls.shed % 10_000 == 0:
            if backstop:
                why = f"{cls.in_flight} requests in progress, the most allowed"
            else:
                why = (
                    f"requests waited over {self.shedder.target_s * 1000:g} ms for over "
                    f"{self.shedder.interval_s * 1000:g} ms; refusing those that would wait "
                    f"longer ({cls.in_flight} in progress)"
                )
            log.warning("overloaded: %s; %d refused with 503 so far", why, cls.shed)
        self._shedding = True
        if self.parser.should_keep_alive():
            self.transport.write(_with_id(SHED_KEEP_ALIVE, self.headers))
        else:
            self.transport.write(_with_id(SHED_CLOSE, self.headers))
            self.transport.close()

    def _await_next_request(self) -> None:
        self._awaiting_headers = True
        self._header_bytes = 0
        self._arm()

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
        if not self._shedding and not self.transport.is_closing():  # not after 503, 431
            super().on_body(body)

    def on_message_complete(self) -> None:
        if self._shedding:  # the refused request has been read: wait for the next one
            self._shedding = False
            self._await_next_request()
            return
        if not self.transport.is_closing():
            super().on_message_complete()

    def _send_431(self) -> None:
        response = _response(
            b"431 Request Header Fields Too Large",
            "HEADERS_TOO_LARGE",
            f"Request line and headers exceed {self.MAX_HEADER_BYTES} bytes",
            b"connection: close",
        )
        self.transport.write(_with_id(response, self.headers))
        self.transport.close()
        self._disarm()


def _timed(app: ASGIApp, shedder: DelayShedder, loop: asyncio.AbstractEventLoop) -> ASGIApp:
    """``app``, telling ``shedder`` how long each request waited: until it held its
    database connection (``waiting.ready``, called by the store), or until its response
    started if it needed none."""

    async def timed(scope: Scope, receive: Receive, send: Send) -> None:
        arrived = scope.pop(ARRIVED, None)
        if arrived is None:
            await app(scope, receive, send)
            return
        wait = Wait(lambda: shedder.start(arrived, loop.time()))

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                wait.end()
            await send(message)

        token = waiting.CURRENT.set(wait)
        try:
            await app(scope, receive, sending)
        finally:
            wait.end()
            waiting.CURRENT.reset(token)

    return timed
