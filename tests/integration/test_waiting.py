"""The store tells a request's wait when it holds its database connection (for load
shedding: upwatch/waiting.py), on both databases, for reads and for writes."""

from __future__ import annotations

import functools

from tests.support.seeding import make_key, team_id
from upwatch import waiting
from upwatch.store import Store


async def test_a_read_and_a_write_each_end_the_wait_once(store: Store) -> None:
    await make_key(store, "acme")
    team = await team_id(store)
    for use in ("read", "write"):
        ended: list[str] = []
        wait = waiting.Wait(functools.partial(ended.append, use))
        token = waiting.CURRENT.set(wait)
        try:
            if use == "read":
                await store.monitors.list_for(team, at=0)
            else:
                await make_key(store, "beta")
            waiting.ready()  # later connections, or later calls, change nothing
        finally:
            waiting.CURRENT.reset(token)
        assert ended == [use]


async def test_outside_a_request_nothing_waits(store: Store) -> None:
    assert waiting.CURRENT.get() is None
    await store.monitors.list_for(1, at=0)  # no request: nothing to tell, no error
