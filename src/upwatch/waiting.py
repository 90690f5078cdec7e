"""When a request stops waiting: the hook between the HTTP protocol, which knows when a
request arrived, and the store, which knows when it got its database connection.

Load shedding (api/shedding.py) measures how long requests wait before they are served.
A request whose handler has started may still be waiting: for one of PostgreSQL's
pooled connections, or for SQLite's write lock. A queue there is as real as a queue in
the sockets, and it is the one an overloaded ``api`` process on PostgreSQL builds
(handlers start at once, then wait for the pool). So the protocol gives each request a
``Wait`` (a context variable, set in the request's own task), and the store ends it
with ``ready()`` once the request holds its connection; a request that never touches
the database ends it when its response starts. Only the first wait counts: a handler
that takes a second connection later has already been served once.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar


class Wait:
    """A request's wait: ``end`` runs ``on_end`` the first time only."""

    __slots__ = ("_on_end",)

    def __init__(self, on_end: Callable[[], None]) -> None:
        self._on_end: Callable[[], None] | None = on_end

    def end(self) -> None:
        on_end, self._on_end = self._on_end, None
        if on_end is not None:
            on_end()


CURRENT: ContextVar[Wait | None] = ContextVar("upwatch_wait", default=None)


def ready() -> None:
    """The running request (if any) has what it queued for: its wait ends now."""
    wait = CURRENT.get()
    if wait is not None:
        wait.end()
