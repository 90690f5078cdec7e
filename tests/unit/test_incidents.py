"""The state machine of SPEC §7 over sequences of results."""

import pytest

from upwatch.domain import MonitorState, Status
from upwatch.incidents import EndReason, Opened, Resolved, Tracker, advance, reset

U, D, T = Status.UP, Status.DOWN, Status.TIMEOUT


def run(
    statuses: list[Status], *, confirm: int = 2, recover: int = 1, tracker: Tracker | None = None
) -> tuple[Tracker, list[tuple[int, Opened | Resolved]]]:
    """Apply results at t = 1000, 2000, …; returns the tracker and (t, change) pairs."""
    t = tracker or Tracker()
    changes = []
    for i, status in enumerate(statuses, start=1):
        error = None if status is U else f"e{i}"
        t, change = advance(
            t, status, error, i * 1000, confirmation_checks=confirm, recovery_checks=recover
        )
        if change is not None:
            changes.append((i * 1000, change))
    return t, changes


def test_unknown_until_the_first_confirmation() -> None:
    t, changes = run([D])
    assert (t.state, t.state_changed_at, changes) == (MonitorState.UNKNOWN, None, [])


def test_ups_from_unknown_make_it_up_with_no_incident() -> None:
    t, changes = run([U], recover=1)
    assert (t.state, t.state_changed_at, changes) == (MonitorState.UP, 1000, [])
    t, changes = run([U, U], recover=3)
    assert t.state is MonitorState.UNKNOWN


def test_confirmation_checks_failures_open_one_incident() -> None:
    t, changes = run([U, D, T, D, D], confirm=2)
    assert t.state is MonitorState.DOWN
    assert t.state_changed_at == 3000
    [(at, opened)] = changes
    assert isinstance(opened, Opened)
    assert at == 3000
    assert (opened.started_at, opened.confirmed_at) == (2000, 3000)
    assert (opened.cause_status, opened.cause_error) == (D, "e2")  # the run's first failure
    assert t.open_incident_id == opened.incident_id
    assert opened.incident_id.startswith("tcpi_")


def test_an_interrupted_run_starts_again() -> None:
    _, changes = run([D, U, D, U, D], confirm=2)
    assert changes == []


def test_recovery_resolves_at_the_first_up_of_the_run() -> None:
    t, changes = run([D, D, U, D, U, U, U], confirm=2, recover=2)
    opened, resolved = (c for _, c in changes)
    assert isinstance(opened, Opened)
    assert isinstance(resolved, Resolved)
    assert resolved.incident_id == opened.incident_id
    assert resolved.resolved_at == 5000  # the recovery run began at 5000, confirmed at 6000
    assert resolved.reason is EndReason.RECOVERED
    assert (t.state, t.state_changed_at, t.open_incident_id) == (MonitorState.UP, 6000, None)


def test_flapping_opens_a_new_incident_each_confirmed_outage() -> None:
    _, changes = run([D, D, U, D, D, U], confirm=2, recover=1)
    kinds = [type(c).__name__ for _, c in changes]
    assert kinds == ["Opened", "Resolved", "Opened", "Resolved"]
    first, second = changes[0][1], changes[2][1]
    assert first.incident_id != second.incident_id


@pytest.mark.parametrize("length", [20, 200])
def test_long_runs_are_capped_and_change_nothing_more(length: int) -> None:
    t, changes = run([D] * length, confirm=10)
    assert len(changes) == 1
    assert t.run_length == 10


def test_reset_ends_an_open_incident_with_the_reason() -> None:
    t, _ = run([D, D])
    fresh, ended = reset(t.open_incident_id, EndReason.PAUSED, 9000)
    assert fresh == Tracker()
    assert ended == Resolved(t.open_incident_id or "", 9000, EndReason.PAUSED)
    assert reset(None, EndReason.RETARGETED, 9000) == (Tracker(), None)
