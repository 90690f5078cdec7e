import statistics

from upwatch.domain import DueCheck
from upwatch.scheduler.planning import CATCHUP_WINDOW_MAX_MS, LATE_THRESHOLD_MS, plan

T0 = 1_771_070_400_000


def due(i: int = 0, *, at: int = T0, interval_s: int = 60) -> DueCheck:
    return DueCheck(f"tcpm_{i}", "127.0.0.1", 1, 1000, interval_s, 0, at)


def test_an_on_time_check_runs_at_its_due_time_and_stays_on_its_grid() -> None:
    [p] = plan([due(at=T0 + 300)], at=T0)
    assert p.run_at == T0 + 300
    assert p.next_due_at == T0 + 300 + 60_000


def test_a_slightly_late_check_runs_now_without_drifting() -> None:
    [p] = plan([due(at=T0 - 1_500)], at=T0)
    assert p.run_at == T0
    assert p.next_due_at == T0 - 1_500 + 60_000


def test_missed_checks_are_spread_over_their_interval_not_burst() -> None:
    late = [due(i, at=T0 - LATE_THRESHOLD_MS - 1, interval_s=60) for i in range(2000)]
    plans = plan(late, at=T0)
    assert all(p.run_at is None for p in plans)
    offsets = [p.next_due_at - T0 for p in plans]
    assert all(0 <= o < 60_000 for o in offsets)
    # Evenly spread: each tenth of the interval holds about a tenth of the checks.
    buckets = [sum(1 for o in offsets if k * 6000 <= o < (k + 1) * 6000) for k in range(10)]
    assert min(buckets) > 140
    assert max(buckets) < 260
    assert abs(statistics.median(offsets) - 30_000) < 3_000


def test_catch_up_of_long_intervals_is_capped() -> None:
    plans = plan([due(i, at=T0 - 10**8, interval_s=86_400) for i in range(500)], at=T0)
    assert max(p.next_due_at for p in plans) < T0 + CATCHUP_WINDOW_MAX_MS


def test_late_checks_land_evenly_in_the_order_they_fell_due() -> None:
    """60 monitors at 60 s, all late (the clock jumped forward): exactly one a second,
    the longest overdue first; an on-time check in the same batch keeps its grid."""
    late = [due(i, at=T0 - 3_600_000 + i * 1000) for i in reversed(range(60))]
    on_time = due(99, at=T0 + 200)
    plans = plan([*late, on_time], at=T0)
    by_id = {p.check.monitor_id: p for p in plans}
    assert [by_id[f"tcpm_{i}"].next_due_at - T0 for i in range(60)] == [
        i * 1000 + 500 for i in range(60)
    ]
    assert by_id["tcpm_99"].run_at == T0 + 200
    assert by_id["tcpm_99"].next_due_at == T0 + 200 + 60_000
