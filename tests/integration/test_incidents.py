"""State and incidents where results are written (SPEC §7), on SQLite and PostgreSQL:
opened and resolved in the results' transaction, in checkedAt order, ended by pausing
and re-targeting, listed per monitor and per team."""

from functools import partial

import pytest

from upwatch.domain import (
    DueCheck,
    MonitorChanges,
    MonitorState,
    NewMonitor,
    Observation,
    Outcome,
    Status,
)
from upwatch.errors import MonitorNotFound
from upwatch.incidents import EndReason
from upwatch.maintenance import Once
from upwatch.scheduler.planning import plan
from upwatch.store import Store

T0 = 1_771_070_400_000
S = 1000


async def setup(store: Store, team: str = "acme", **kw: int) -> tuple[int, str, DueCheck]:
    """A team, a monitor of it, and the monitor's claimed check."""
    team_id = (await store.teams.create(team, None, at=T0)).id
    m = await store.monitors.create(team_id, NewMonitor("db", "127.0.0.1", 5432, **kw), at=T0)
    plans = await store.schedule.claim_due(horizon=T0, limit=10, planner=partial(plan, at=T0))
    [check] = [p.check for p in plans if p.check.monitor_id == m.id]
    return team_id, m.id, check


def seen(check: DueCheck, at: int, status: Status) -> Observation:
    if status is Status.UP:
        return Observation(check, Outcome(status, response_time_ms=3), at)
    return Observation(check, Outcome(status, error=f"refused at {at}"), at)


async def test_failures_open_an_incident_and_an_up_resolves_it(store: Store) -> None:
    team, monitor_id, check = await setup(store)
    await store.results.save([seen(check, T0 + 10 * S, Status.DOWN)])
    m = await store.monitors.get(team, monitor_id)
    assert (m.state, m.open_incident_id) == (MonitorState.UNKNOWN, None)
    await store.results.save([seen(check, T0 + 20 * S, Status.TIMEOUT)])
    m = await store.monitors.get(team, monitor_id)
    assert (m.state, m.state_changed_at) == (MonitorState.DOWN, T0 + 20 * S)
    [opened], total = await store.incidents.of_monitor(team, monitor_id, limit=50, offset=0)
    assert total == 1
    assert m.open_incident_id == opened.id
    assert opened.is_open
    assert (opened.started_at, opened.confirmed_at, opened.resolved_at) == (
        T0 + 10 * S,
        T0 + 20 * S,
        None,
    )
    assert (opened.cause_status, opened.cause_error) == (Status.DOWN, f"refused at {T0 + 10 * S}")
    await store.results.save(
        [seen(check, T0 + 30 * S, Status.UP), seen(check, T0 + 40 * S, Status.UP)]
    )
    m = await store.monitors.get(team, monitor_id)
    assert (m.state, m.state_changed_at, m.open_incident_id) == (
        MonitorState.UP,
        T0 + 30 * S,
        None,
    )
    [resolved], _ = await store.incidents.of_monitor(team, monitor_id, limit=50, offset=0)
    assert not resolved.is_open
    assert (resolved.resolved_at, resolved.end_reason) == (T0 + 30 * S, EndReason.RECOVERED)


async def test_a_batch_is_applied_in_checked_at_order(store: Store) -> None:
    team, monitor_id, check = await setup(store, confirmation_checks=3)
    batch = [seen(check, T0 + t * S, Status.DOWN) for t in (30, 10, 20)]
    await store.results.save(batch)
    [opened], _ = await store.incidents.of_monitor(team, monitor_id, limit=50, offset=0)
    assert (opened.started_at, opened.confirmed_at) == (T0 + 10 * S, T0 + 30 * S)


async def test_a_result_older_than_one_applied_is_stored_but_changes_nothing(
    store: Store,
) -> None:
    team, monitor_id, check = await setup(store, confirmation_checks=1)
    await store.results.save([seen(check, T0 + 20 * S, Status.UP)])
    await store.results.save([seen(check, T0 + 10 * S, Status.DOWN)])  # late: a slow batch
    m = await store.monitors.get(team, monitor_id)
    assert (m.state, m.last_checked_at, m.last_status) == (MonitorState.UP, T0 + 20 * S, Status.UP)
    assert await store.incidents.of_monitor(team, monitor_id, limit=50, offset=0) == ([], 0)
    _, total = await store.results.page(team, monitor_id, limit=50, offset=0)
    assert total == 2


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        (MonitorChanges(is_enabled=False), EndReason.PAUSED),
        (MonitorChanges(port=5433), EndReason.RETARGETED),
        (MonitorChanges(host="localhost"), EndReason.RETARGETED),
    ],
)
async def test_pausing_or_retargeting_ends_the_incident_and_resets_the_state(
    store: Store, changes: MonitorChanges, reason: EndReason
) -> None:
    team, monitor_id, check = await setup(store, confirmation_checks=1)
    await store.results.save([seen(check, T0 + 10 * S, Status.DOWN)])
    updated = await store.monitors.update(team, monitor_id, changes, at=T0 + 15 * S)
    assert (updated.state, updated.state_changed_at, updated.open_incident_id) == (
        MonitorState.UNKNOWN,
        None,
        None,
    )
    assert await store.monitors.get(team, monitor_id) == updated
    [ended], _ = await store.incidents.of_monitor(team, monitor_id, limit=50, offset=0)
    assert (ended.is_open, ended.resolved_at, ended.end_reason) == (False, T0 + 15 * S, reason)


async def test_a_rename_keeps_the_state_and_the_incident(store: Store) -> None:
    team, monitor_id, check = await setup(store, confirmation_checks=1)
    await store.results.save([seen(check, T0 + 10 * S, Status.DOWN)])
    renamed = await store.monitors.update(
        team, monitor_id, MonitorChanges(name="db2", confirmation_checks=3), at=T0 + 15 * S
    )
    assert renamed.state is MonitorState.DOWN
    assert renamed.open_incident_id is not None
    assert renamed.confirmation_checks == 3


async def test_incidents_are_listed_per_team_newest_first_and_by_status(store: Store) -> None:
    acme, first, check_a = await setup(store, confirmation_checks=1)
    beta, other, check_b = await setup(store, "beta", confirmation_checks=1)
    await store.results.save(
        [seen(check_a, T0 + 10 * S, Status.DOWN), seen(check_b, T0 + 10 * S, Status.DOWN)]
    )
    await store.results.save([seen(check_a, T0 + 20 * S, Status.UP)])
    await store.results.save([seen(check_a, T0 + 30 * S, Status.DOWN)])
    found, total = await store.incidents.of_team(acme, is_open=None, limit=50, offset=0)
    assert total == 2
    assert [i.started_at for i in found] == [T0 + 30 * S, T0 + 10 * S]
    assert {i.monitor_id for i in found} == {first}
    open_, n_open = await store.incidents.of_team(acme, is_open=True, limit=50, offset=0)
    assert (n_open, [i.started_at for i in open_]) == (1, [T0 + 30 * S])
    done, n_done = await store.incidents.of_team(acme, is_open=False, limit=1, offset=0)
    assert (n_done, len(done)) == (1, 1)
    page, _ = await store.incidents.of_team(acme, is_open=None, limit=1, offset=1)
    assert [i.started_at for i in page] == [T0 + 10 * S]
    with pytest.raises(MonitorNotFound):
        await store.incidents.of_monitor(acme, other, limit=50, offset=0)
    assert (await store.incidents.of_team(beta, is_open=None, limit=50, offset=0))[1] == 1


async def test_deleting_a_monitor_removes_its_incidents(store: Store) -> None:
    team, monitor_id, check = await setup(store, confirmation_checks=1)
    await store.results.save([seen(check, T0 + 10 * S, Status.DOWN)])
    await store.monitors.delete(team, monitor_id, at=T0 + 20 * S)
    assert await store.incidents.of_team(team, is_open=None, limit=50, offset=0) == ([], 0)


async def test_no_incident_opens_in_a_maintenance_window(store: Store) -> None:
    team, monitor_id, check = await setup(store, confirmation_checks=1)
    window = Once(T0 + 5 * S, T0 + 25 * S)
    await store.windows.create(
        team, name="upgrade", monitor_ids=[monitor_id], schedule=window, at=T0
    )
    await store.results.save(
        [seen(check, T0 + 10 * S, Status.DOWN), seen(check, T0 + 20 * S, Status.DOWN)]
    )
    m = await store.monitors.get(team, monitor_id, at=T0 + 20 * S)
    assert (m.state, m.open_incident_id, m.in_maintenance) == (MonitorState.UNKNOWN, None, True)
    assert await store.incidents.of_monitor(team, monitor_id, limit=10, offset=0) == ([], 0)
    _, total = await store.results.page(team, monitor_id, limit=10, offset=0)
    assert total == 2  # still checked and stored
    await store.results.save([seen(check, T0 + 30 * S, Status.DOWN)])  # after the window
    m = await store.monitors.get(team, monitor_id, at=T0 + 30 * S)
    assert (m.state, m.in_maintenance) == (MonitorState.DOWN, False)
    [opened], _ = await store.incidents.of_monitor(team, monitor_id, limit=10, offset=0)
    assert opened.started_at == T0 + 30 * S  # the failures in the window did not count


async def test_an_open_incident_may_resolve_in_a_window(store: Store) -> None:
    team, monitor_id, check = await setup(store, confirmation_checks=1)
    await store.results.save([seen(check, T0 + 10 * S, Status.DOWN)])
    everything = Once(T0 + 15 * S, T0 + 60 * S)
    await store.windows.create(team, name="all", monitor_ids=[], schedule=everything, at=T0)
    await store.results.save([seen(check, T0 + 20 * S, Status.UP)])
    [resolved], _ = await store.incidents.of_monitor(team, monitor_id, limit=10, offset=0)
    assert (resolved.is_open, resolved.resolved_at) == (False, T0 + 20 * S)
