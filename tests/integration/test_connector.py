"""The connector's contract, run on SQLite and on PostgreSQL: one read and one write
primitive that read back the same Python types on both, expand IN lists, and commit
or roll back a transaction shared by several aggregates' functions."""

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    insert,
    select,
    update,
)

from upwatch.domain import NewMonitor, Observation, Outcome, Status
from upwatch.errors import NotFound
from upwatch.scheduler.planning import plan
from upwatch.store import Store
from upwatch.store import results as result_rows
from upwatch.store import teams as team_rows
from upwatch.store.fastpath import fastpath_for

scratch_metadata = MetaData()
# Shaped like what the next resources store: a channel's JSON config, a flag, a time.
scratch = Table(
    "connector_scratch",
    scratch_metadata,
    Column("id", String(16), primary_key=True),
    Column("config", JSON, nullable=True),
    Column("enabled", Boolean(create_constraint=False), nullable=False),
    Column("at", BigInteger, nullable=True),
    Column("n", Integer, nullable=False),
)
_BY_IDS = (
    select(scratch)
    .where(scratch.c.id.in_(bindparam("b_ids", expanding=True)))
    .order_by(scratch.c.id)
)
_ENABLED_AMONG = (
    select(scratch.c.id)
    .where(scratch.c.enabled.is_(True), scratch.c.n.in_(bindparam("b_ns", expanding=True)))
    .order_by(scratch.c.id)
)
_BUMP = update(scratch).where(scratch.c.id == bindparam("b_id")).values(n=scratch.c.n + 1)
CONFIG = {"url": "https://hooks.example.invalid/x", "headers": {"X-Key": "é"}, "retries": [1, 5]}
ROWS = [
    {"id": "a", "config": CONFIG, "enabled": True, "at": 1_771_070_400_000, "n": 1},
    {"id": "b", "config": None, "enabled": False, "at": None, "n": 2},
    {"id": "c", "config": [1, "two", None], "enabled": True, "at": 0, "n": 3},
]


@pytest.fixture
async def with_scratch(store: Store) -> AsyncIterator[Store]:
    async with store.engine.begin() as conn:
        await conn.run_sync(scratch_metadata.drop_all)
        await conn.run_sync(scratch_metadata.create_all)
    yield store
    async with store.engine.begin() as conn:
        await conn.run_sync(scratch_metadata.drop_all)


async def test_json_boolean_and_null_columns_read_back_as_written(with_scratch: Store) -> None:
    db = with_scratch.db
    async with db.write() as tx:
        await tx.execute_many(insert(scratch), ROWS)
    async with db.read() as reads:
        rows = await reads.rows(select(scratch).order_by(scratch.c.id))
    assert [r._asdict() for r in rows] == ROWS
    assert type(rows[0].config) is dict
    assert type(rows[0].enabled) is bool
    assert type(rows[0].at) is int
    assert rows[1].config is None


async def test_in_lists_expand_in_reads_and_in_transactions(with_scratch: Store) -> None:
    db = with_scratch.db
    async with db.write() as tx:
        await tx.execute_many(insert(scratch), ROWS)
        inside = await tx.rows(_BY_IDS, {"b_ids": ["c", "a"]})
        assert [r.id for r in inside] == ["a", "c"]
    async with db.read() as reads:
        assert [r.id for r in await reads.rows(_BY_IDS, {"b_ids": ["a", "b", "zz"]})] == ["a", "b"]
        assert await reads.rows(_BY_IDS, {"b_ids": []}) == []
        assert [r.id for r in await reads.rows(_ENABLED_AMONG, {"b_ns": [2, 3]})] == ["c"]
        [a] = await reads.rows(_BY_IDS, {"b_ids": ["a"]})
    assert a.config == CONFIG


async def test_execute_counts_the_rows_it_changed(with_scratch: Store) -> None:
    db = with_scratch.db
    async with db.write() as tx:
        await tx.execute_many(insert(scratch), ROWS)
        assert await tx.execute(_BUMP, {"b_id": "a"}) == 1
        assert await tx.execute(_BUMP, {"b_id": "nobody"}) == 0
    async with db.read() as reads:
        assert await reads.scalar(select(scratch.c.n).where(scratch.c.id == "a")) == 2


async def test_a_failing_transaction_leaves_nothing_behind(with_scratch: Store) -> None:
    db = with_scratch.db

    async def half_way() -> None:
        async with db.write() as tx:
            await tx.execute_many(insert(scratch), ROWS)
            await team_rows.ensure(tx, "rolled-back", at=0)
            raise RuntimeError("a bug half way")

    with pytest.raises(RuntimeError):
        await half_way()
    async with db.read() as reads:
        assert await reads.rows(select(scratch)) == []
    assert [t.name for t in await with_scratch.teams.all()] == []
    # The connection went back clean: the next transaction works.
    async with db.write() as tx:
        await tx.execute_many(insert(scratch), ROWS[:1])
    async with db.read() as reads:
        assert len(await reads.rows(select(scratch))) == 1


async def test_aggregates_share_one_transaction(store: Store) -> None:
    """A team created and a result batch stored in one Tx commit together: the shape of
    "results, the incident they open, and its outbox rows"."""
    acme = (await store.teams.create("acme", None, at=0)).id
    m = await store.monitors.create(acme, NewMonitor("m", "127.0.0.1", 1), at=0)
    [p] = await store.schedule.claim_due(horizon=0, limit=10, planner=lambda d: plan(d, at=0))
    seen = Observation(p.check, Outcome(Status.DOWN, error="refused"), 5)
    fast = fastpath_for(store.db.name)

    async def half_way() -> None:
        async with store.db.write() as tx:
            assert len(await result_rows.insert(tx, fast, [seen])) == 1
            await team_rows.ensure(tx, "beta", at=0)
            raise RuntimeError("the incident could not be opened")

    with pytest.raises(RuntimeError):
        await half_way()
    assert (await store.results.page(acme, m.id, limit=10, offset=0)) == ([], 0)
    assert [t.name for t in await store.teams.all()] == ["acme"]
    async with store.db.write() as tx:
        await result_rows.insert(tx, fast, [seen])
        await team_rows.ensure(tx, "beta", at=0)
    _, total = await store.results.page(acme, m.id, limit=10, offset=0)
    assert total == 1
    assert [t.name for t in await store.teams.all()] == ["acme", "beta"]
    assert (await store.monitors.get(acme, m.id)).last_status is Status.DOWN
    with pytest.raises(NotFound):
        await store.monitors.get(acme, "tcpm_missing")
