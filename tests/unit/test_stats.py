"""Time-based availability and incident figures on constructed histories (SPEC §9),
against values computed by hand."""

import pytest

from upwatch.stats import (
    History,
    bucket_starts,
    daily,
    incident_figures,
    merged,
    minus,
    time_in,
    whole_units,
)

H = 3_600_000  # an hour, ms
RANGE = (0, 100 * H)


def test_an_incident_spanning_the_whole_range_is_all_downtime() -> None:
    t = time_in(History(created_at=-50 * H, incidents=[(-10 * H, 110 * H)]), *RANGE)
    assert (t.down_ms, t.maintenance_ms, t.unmonitored_ms) == (100 * H, 0, 0)
    assert t.availability == 0.0


def test_incidents_are_clipped_to_the_range_at_both_ends() -> None:
    history = History(created_at=-50 * H, incidents=[(-5 * H, 5 * H), (95 * H, 120 * H)])
    t = time_in(history, *RANGE)
    assert t.down_ms == 10 * H
    assert t.availability == pytest.approx(90.0)


def test_maintenance_overlapping_an_incident_is_maintenance_not_downtime() -> None:
    history = History(
        created_at=-50 * H, incidents=[(10 * H, 20 * H)], maintenance=[(15 * H, 25 * H)]
    )
    t = time_in(history, *RANGE)
    assert (t.down_ms, t.maintenance_ms) == (5 * H, 10 * H)
    assert t.availability == pytest.approx(100 * (1 - 5 / 90))  # 94.444…


def test_time_before_the_monitor_existed_is_not_counted() -> None:
    t = time_in(History(created_at=50 * H, incidents=[(60 * H, 70 * H)]), *RANGE)
    assert t.unmonitored_ms == 50 * H
    assert t.availability == pytest.approx(80.0)  # 10 h down of 50 h monitored


def test_a_disabled_stretch_is_not_counted_and_outranks_maintenance() -> None:
    history = History(
        created_at=0,
        paused=[(20 * H, 40 * H)],
        maintenance=[(30 * H, 50 * H)],
        incidents=[(45 * H, 60 * H)],
    )
    t = time_in(history, *RANGE)
    assert t.unmonitored_ms == 20 * H
    assert t.maintenance_ms == 10 * H  # 40-50 h: the part while paused is not maintenance
    assert t.down_ms == 10 * H  # 50-60 h: the part in maintenance is not downtime
    assert t.availability == pytest.approx(100 * (1 - 10 / 70))


def test_availability_is_null_when_no_time_is_left() -> None:
    assert time_in(History(created_at=200 * H), *RANGE).availability is None
    every_hour = History(created_at=0, maintenance=[(0, 100 * H)])
    assert time_in(every_hour, *RANGE).availability is None


def test_overlapping_incidents_and_windows_count_once() -> None:
    history = History(
        created_at=0,
        incidents=[(10 * H, 20 * H), (15 * H, 30 * H)],
        maintenance=[(50 * H, 60 * H), (55 * H, 65 * H)],
    )
    t = time_in(history, *RANGE)
    assert (t.down_ms, t.maintenance_ms) == (20 * H, 15 * H)


def test_incident_figures_count_overlaps_clip_the_longest_and_average_recoveries() -> None:
    incidents = [(-5 * H, 5 * H), (10 * H, 12 * H), (90 * H, None), (150 * H, 160 * H)]
    f = incident_figures(incidents, 0, 100 * H, now=100 * H)
    assert f.count == 3
    assert f.longest_s == 10 * 3600  # the open one, 90 h to now
    assert f.mttr_s == 6 * 3600  # (10 h + 2 h) / 2: whole durations of those resolved inside
    assert incident_figures([], 0, H, now=H).longest_s is None


def test_interval_helpers() -> None:
    assert merged([(5, 7), (1, 3), (2, 4), (9, 9)]) == [(1, 4), (5, 7)]
    assert minus([(0, 10), (20, 30)], [(2, 3), (8, 22), (29, 40)]) == [(0, 2), (3, 8), (22, 29)]


def test_buckets_are_aligned_from_the_one_holding_from_to_the_one_holding_to() -> None:
    assert bucket_starts(90 * 60_000, 5 * H, H) == [H, 2 * H, 3 * H, 4 * H]
    assert bucket_starts(H, H + 1, H) == [H]
    assert whole_units(H + 1, 5 * H - 1, H) == (2 * H, 4 * H)
    assert whole_units(H + 1, 2 * H, H) is None


def test_daily_slices_agree_with_time_in_slice_by_slice() -> None:
    history = History(
        created_at=5 * H,
        paused=[(30 * H, 33 * H)],
        incidents=[(10 * H, 12 * H), (47 * H, 52 * H), (70 * H, 100 * H)],
        maintenance=[(11 * H, 14 * H), (50 * H, 51 * H)],
    )
    end = 95 * H + 17
    slices = daily(history, 0, end, 24 * H)
    starts = list(range(0, end, 24 * H))
    assert slices == [time_in(history, s, min(s + 24 * H, end)) for s in starts]
