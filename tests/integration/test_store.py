"""The Store's contract, run on SQLite and on PostgreSQL."""

import asyncio
from functools import partial
from typing import Any

import pytest

from tests.support.seeding import make_key, team_id
from upwatch import security
from upwatch.domain import (
    SCOPE_READ,
    DueCheck,
    MonitorChanges,
    NewMonitor,
    Observation,
    Outcome,
    Status,
)
from upwatch.errors import KeyNotFound, LimitExceeded, NotFound, TeamExists, TeamNotFound
from upwatch.scheduler.planning import plan
from upwatch.store import Store

T0 = 1_771_070_400_000
NEW = NewMonitor(name="db", host="127.0.0.1", port=5432, interval_s=10)


async def a_team(store: Store, name: str = "acme", limit: int | None = None) -> int:
    team = await store.teams.create(name, limit, at=T0)
    return team.id


async def claim(store: Store, at: int, *, lookahead: int = 0) -> list[DueCheck]:
    plans = await store.schedule.claim_due(
        horizon=at + lookahead, limit=1000, planner=partial(plan, at=at)
    )
    return [p.check for p in plans if p.run_at is not None]


def seen(check: DueCheck, at: int, status: Status = Status.UP) -> Observation:
    outcome = (
        Outcome(status, response_time_ms=3)
        if status is Status.UP
        else Outcome(status, error="Connection refused")
    )
    return Observation(check, outcome, at)


# -- teams and keys -----------------------------------------------------------------------


async def test_teams_are_created_listed_and_updated(store: Store) -> None:
    await store.teams.create("acme", None, at=T0)
    await store.teams.create("beta", 5, at=T0)
    with pytest.raises(TeamExists):
        await store.teams.create("acme", 3, at=T0)
    updated = await store.teams.update("acme", 7)
    assert updated.max_monitors == 7
    with pytest.raises(TeamNotFound):
        await store.teams.update("nobody", 1)
    teams = {t.name: t for t in await store.teams.all()}
    assert teams["acme"].max_monitors == 7
    assert store.teams.effective_limit(teams["beta"]) == 5


async def test_a_key_authenticates_until_revoked(store: Store) -> None:
    secret = await make_key(store, "acme", (SCOPE_READ,), at=T0)
    who = await store.keys.authenticate(security.hash_key(secret), at=T0 + 1)
    assert who is not None
    assert who.scopes == {SCOPE_READ}
    [key] = await store.keys.all("acme")
    assert key.last_used_at == T0 + 1
    assert secret not in repr(key)
    revoked = await store.keys.revoke(key.id, at=T0 + 2)
    assert revoked.revoked_at == T0 + 2
    assert await store.keys.authenticate(security.hash_key(secret), at=T0 + 3) is None
    with pytest.raises(KeyNotFound):
        await store.keys.revoke("key_nope", at=T0)


async def test_only_a_hash_of_the_key_is_stored(store: Store) -> None:
    key, secret = await store.keys.create(team="acme", name="ci", scopes=[SCOPE_READ], at=T0)
    from sqlalchemy import select

    from upwatch.store.tables import api_keys

    async with store.engine.connect() as conn:
        rows = (await conn.execute(select(api_keys))).all()
    stored = " ".join(str(v) for row in rows for v in row)
    assert secret not in stored
    assert security.hash_key(secret) in stored
    assert secret.startswith(key.prefix)


async def test_last_used_is_written_at_most_once_a_minute(store: Store) -> None:
    secret = await make_key(store, at=T0)
    digest = security.hash_key(secret)
    await store.keys.authenticate(digest, at=T0)
    await store.keys.authenticate(digest, at=T0 + 30_000)
    assert (await store.keys.all())[0].last_used_at == T0
    await store.keys.authenticate(digest, at=T0 + 60_000)
    assert (await store.keys.all())[0].last_used_at == T0 + 60_000


async def test_creating_a_key_creates_its_team_once(store: Store) -> None:
    await make_key(store, "new-team")
    await make_key(store, "new-team")
    assert [t.name for t in await store.teams.all()] == ["new-team"]
    assert len(await store.keys.all("new-team")) == 2
    assert await store.keys.all("other") == []


# -- monitors -------------------------------------------------------------------------


async def test_monitors_belong_to_their_team(store: Store) -> None:
    acme, beta = await a_team(store, "acme"), await a_team(store, "beta")
    m = await store.monitors.create(acme, NEW, at=T0)
    assert (await store.monitors.get(acme, m.id)) == m
    assert await store.monitors.list_for(beta) == []
    for attempt in (
        store.monitors.get(beta, m.id),
        store.monitors.update(beta, m.id, MonitorChanges(name="x"), at=T0),
        store.monitors.delete(beta, m.id, at=T0),
        store.results.page(beta, m.id, limit=10, offset=0),
    ):
        with pytest.raises(NotFound):
            await attempt
    assert (await store.monitors.get(acme, m.id)).name == "db"


async def test_update_changes_only_given_fields_and_sets_updated_at(store: Store) -> None:
    acme = await a_team(store)
    m = await store.monitors.create(acme, NEW, at=T0)
    after = await store.monitors.update(acme, m.id, MonitorChanges(timeout_ms=150), at=T0 + 5)
    assert after.timeout_ms == 150
    assert after.updated_at == T0 + 5
    assert (after.name, after.host, after.port, after.created_at) == ("db", "127.0.0.1", 5432, T0)
    assert await store.monitors.get(acme, m.id) == after


async def test_a_list_in_chunks_is_the_whole_list_in_order(store: Store) -> None:
    acme = await a_team(store, limit=10)
    for i in range(7):
        await store.monitors.create(acme, NEW, at=T0 + i)
    whole = await store.monitors.list_for(acme)
    chunks = [c async for c in store.monitors.chunks_for(acme, size=3)]
    assert [len(c) for c in chunks] == [3, 3, 1]
    assert [m for c in chunks for m in c] == whole
    assert [m.created_at for m in whole] == [T0 + i for i in range(7)]


async def test_the_team_limit_holds_under_parallel_creates(store: Store) -> None:
    acme = await a_team(store, limit=5)
    outcomes = await asyncio.gather(
        *(store.monitors.create(acme, NEW, at=T0) for _ in range(25)), return_exceptions=True
    )
    assert sum(not isinstance(o, BaseException) for o in outcomes) == 5
    assert all(isinstance(o, LimitExceeded) for o in outcomes if isinstance(o, BaseException))
    assert len(await store.monitors.list_for(acme)) == 5


async def test_deleting_frees_a_slot_under_the_limit(store: Store) -> None:
    acme = await a_team(store, limit=1)
    m = await store.monitors.create(acme, NEW, at=T0)
    with pytest.raises(LimitExceeded):
        await store.monitors.create(acme, NEW, at=T0)
    await store.monitors.delete(acme, m.id, at=T0)
    await store.monitors.create(acme, NEW, at=T0)
    assert [t.monitor_count for t in await store.teams.all()] == [1]


async def test_the_default_limit_applies_to_teams_without_their_own(database_url: str) -> None:
    from tests.support.databases import fresh_store

    store = await fresh_store(database_url, default_limit=2)
    try:
        acme = await a_team(store)
        await store.monitors.create(acme, NEW, at=T0)
        await store.monitors.create(acme, NEW, at=T0)
        with pytest.raises(LimitExceeded):
            await store.monitors.create(acme, NEW, at=T0)
        await store.teams.update("acme", 3)
        await store.monitors.create(acme, NEW, at=T0)
    finally:
        await store.close()


# -- claiming and results ---------------------------------------------------------------


async def test_a_new_monitor_is_due_at_once_then_every_interval(store: Store) -> None:
    acme = await a_team(store)
    m = await store.monitors.create(acme, NEW, at=T0)
    [check] = await claim(store, T0)
    assert (check.monitor_id, check.due_at) == (m.id, T0)
    assert await claim(store, T0 + 9_999) == []
    [again] = await claim(store, T0 + 10_000)
    assert again.due_at == T0 + 10_000


async def test_disabled_monitors_are_never_claimed(store: Store) -> None:
    acme = await a_team(store)
    m = await store.monitors.create(acme, NewMonitor("x", "127.0.0.1", 1, is_enabled=False), at=T0)
    assert await claim(store, T0 + 10**7) == []
    await store.monitors.update(acme, m.id, MonitorChanges(is_enabled=True), at=T0 + 10**7)
    assert [c.monitor_id for c in await claim(store, T0 + 10**7)] == [m.id]


async def test_claims_do_not_overlap(store: Store) -> None:
    acme = await a_team(store)
    for _ in range(50):
        await store.monitors.create(acme, NEW, at=T0)
    batches = await asyncio.gather(*(claim(store, T0) for _ in range(5)))
    claimed = [c.monitor_id for batch in batches for c in batch]
    assert len(claimed) == 50
    assert len(set(claimed)) == 50


async def test_results_update_the_monitor_and_are_listed_newest_first(store: Store) -> None:
    acme = await a_team(store)
    m = await store.monitors.create(acme, NEW, at=T0)
    [c1] = await claim(store, T0)
    await store.results.save([seen(c1, T0 + 1)])
    [c2] = await claim(store, T0 + 10_000)
    await store.results.save([seen(c2, T0 + 10_002, Status.DOWN)])
    after = await store.monitors.get(acme, m.id)
    assert (after.last_checked_at, after.last_status, after.last_response_time_ms) == (
        T0 + 10_002,
        Status.DOWN,
        None,
    )
    assert after.updated_at == T0  # a check is not an update
    results, total = await store.results.page(acme, m.id, limit=50, offset=0)
    assert total == 2
    assert [r.checked_at for r in results] == [T0 + 10_002, T0 + 1]
    assert results[0].error == "Connection refused"
    assert results[1].error is None
    assert results[1].response_time_ms == 3
    page, total = await store.results.page(acme, m.id, limit=1, offset=1)
    assert [r.checked_at for r in page] == [T0 + 1]
    assert total == 2


async def test_an_older_result_does_not_overwrite_the_last_check(store: Store) -> None:
    acme = await a_team(store)
    m = await store.monitors.create(acme, NEW, at=T0)
    [c] = await claim(store, T0)
    await store.results.save([seen(c, T0 + 500, Status.DOWN)])
    await store.results.save([seen(c, T0 + 100, Status.UP)])
    after = await store.monitors.get(acme, m.id)
    assert (after.last_checked_at, after.last_status) == (T0 + 500, Status.DOWN)
    assert (await store.results.page(acme, m.id, limit=5, offset=0))[1] == 2


async def test_results_of_deleted_disabled_or_retargeted_monitors_are_dropped(store: Store) -> None:
    acme = await a_team(store)
    gone, off, moved, kept = [await store.monitors.create(acme, NEW, at=T0) for _ in range(4)]
    checks = {c.monitor_id: c for c in await claim(store, T0)}
    await store.monitors.delete(acme, gone.id, at=T0)
    await store.monitors.update(acme, off.id, MonitorChanges(is_enabled=False), at=T0 + 1)
    await store.monitors.update(acme, moved.id, MonitorChanges(port=1), at=T0 + 1)
    stored = await store.results.save([seen(c, T0 + 2) for c in checks.values()])
    assert [r.monitor_id for r in stored] == [kept.id]
    assert (await store.results.page(acme, off.id, limit=5, offset=0))[1] == 0
    assert (await store.results.page(acme, moved.id, limit=5, offset=0))[1] == 0


@pytest.mark.parametrize("bulk", [False, True], ids=["short", "bulk"])
async def test_deleting_a_monitor_deletes_its_results(
    store: Store, bulk: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Also when it has so many that SQLite deletes it off the event loop."""
    from sqlalchemy import func, select

    from upwatch.store import monitors as monitor_store
    from upwatch.store.tables import check_results

    monkeypatch.setattr(monitor_store, "BULK_DELETE_ROWS", 0 if bulk else 1_000)
    acme = await a_team(store)
    m = await store.monitors.create(acme, NEW, at=T0)
    kept = await store.monitors.create(acme, NEW, at=T0)
    checks = await claim(store, T0)
    await store.results.save([seen(c, T0 + 1) for c in checks])
    writes: list[bool] = []
    write = store.db.write

    def noted(*, bulk: bool = False) -> Any:
        writes.append(bulk)
        return write(bulk=bulk)

    monkeypatch.setattr(store.db, "write", noted)
    await store.monitors.delete(acme, m.id, at=T0)
    assert writes == [bulk]
    with pytest.raises(NotFound):
        await store.monitors.delete(acme, m.id, at=T0)
    async with store.engine.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(check_results)) == 1
    assert [x.id for x in await store.monitors.list_for(acme)] == [kept.id]


async def test_old_results_are_purged_and_totals_follow(store: Store) -> None:
    acme = await a_team(store)
    m = await store.monitors.create(acme, NEW, at=T0)
    [c] = await claim(store, T0)
    await store.results.save([seen(c, T0 + i) for i in range(10)])
    assert await store.results.purge(before=T0 + 4) == 4
    results, total = await store.results.page(acme, m.id, limit=50, offset=0)
    assert total == 6
    assert min(r.checked_at for r in results) == T0 + 4


async def test_released_claims_are_due_again_at_their_old_time(store: Store) -> None:
    acme = await a_team(store)
    await store.monitors.create(acme, NEW, at=T0)
    [p] = await store.schedule.claim_due(horizon=T0, limit=10, planner=partial(plan, at=T0))
    await store.schedule.release([p])
    [again] = await claim(store, T0 + 1)
    assert again.due_at == T0


async def test_the_team_id_helper_finds_teams(store: Store) -> None:
    await make_key(store, "zeta")
    assert await team_id(store, "zeta") > 0
