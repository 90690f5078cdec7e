"""Maintenance windows at local wall time, across both daylight-saving changes, in
Europe/Berlin and America/New_York (SPEC §8)."""

from datetime import UTC, datetime

import pytest

from upwatch.maintenance import (
    Once,
    Recurring,
    ScheduleError,
    active,
    check_recurring,
    intervals,
    next_window,
    occurrences,
)


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


def starts(schedule: Recurring, until: str) -> list[str]:
    return [
        datetime.fromtimestamp(b / 1000, UTC).strftime("%Y-%m-%d %H:%M")
        for b, _ in occurrences(schedule, until_ms=ms(until))
    ]


def test_berlin_sundays_at_two_keep_the_wall_time_and_skip_forward_in_spring() -> None:
    weekly = Recurring("FREQ=WEEKLY;BYDAY=SU", "02:00", 60, "Europe/Berlin", "2026-03-22")
    assert starts(weekly, "2026-04-06") == [
        "2026-03-22 01:00",  # 02:00 CET
        "2026-03-29 01:00",  # 02:00 does not exist that day: 03:00 CEST, the first minute after
        "2026-04-05 00:00",  # 02:00 CEST
    ]


def test_berlin_autumn_takes_the_first_of_the_repeated_hour() -> None:
    daily = Recurring("FREQ=DAILY;COUNT=3", "02:30", 30, "Europe/Berlin", "2026-10-24")
    assert starts(daily, "2026-12-01") == [
        "2026-10-24 00:30",  # 02:30 CEST
        "2026-10-25 00:30",  # 02:30 happens twice: the first, still CEST
        "2026-10-26 01:30",  # 02:30 CET
    ]


def test_new_york_across_both_changes() -> None:
    daily = Recurring("FREQ=DAILY", "02:15", 30, "America/New_York", "2026-03-07")
    assert starts(daily, "2026-03-10") == [
        "2026-03-07 07:15",  # EST
        "2026-03-08 07:00",  # 02:15 skipped: 03:00 EDT
        "2026-03-09 06:15",  # EDT
    ]
    night = Recurring("FREQ=DAILY;COUNT=2", "01:30", 10, "America/New_York", "2026-11-01")
    assert starts(night, "2026-12-01") == ["2026-11-01 05:30", "2026-11-02 06:30"]


def test_active_and_next_window() -> None:
    monthly = Recurring("FREQ=MONTHLY;BYMONTHDAY=1", "00:00", 120, "UTC", "2026-01-01")
    assert active(monthly, ms("2026-02-01 01:59"))
    assert not active(monthly, ms("2026-02-01 02:00"))
    assert next_window(monthly, ms("2026-02-01 01:00")) == (
        ms("2026-02-01 00:00"),
        ms("2026-02-01 02:00"),
    )
    assert next_window(monthly, ms("2026-02-02 00:00")) == (
        ms("2026-03-01 00:00"),
        ms("2026-03-01 02:00"),
    )
    once = Once(ms("2026-05-01 10:00"), ms("2026-05-01 11:00"))
    assert active(once, ms("2026-05-01 10:30"))
    assert next_window(once, ms("2026-05-01 11:00")) is None
    # A one-off window is known however far ahead it is (not only within the horizon
    # that bounds a recurring rule's expansion).
    far = Once(ms("2031-05-01 10:00"), ms("2031-05-01 11:00"))
    assert next_window(far, ms("2026-05-01 11:00")) == (far.starts_at, far.ends_at)
    assert intervals(once, start_ms=ms("2026-04-30 00:00"), end_ms=ms("2026-05-02 00:00")) == [
        (ms("2026-05-01 10:00"), ms("2026-05-01 11:00"))
    ]
    ended = Recurring("FREQ=DAILY;UNTIL=20260103", "10:00", 5, "UTC", "2026-01-01")
    assert len(starts(ended, "2027-01-01")) == 3
    assert next_window(ended, ms("2026-02-01 00:00")) is None


@pytest.mark.parametrize(
    ("schedule", "field"),
    [
        (Recurring("FREQ=HOURLY", "02:00", 60, "UTC", "2026-01-01"), "schedule.rrule"),
        (Recurring("FREQ=DAILY;BYHOUR=3", "02:00", 60, "UTC", "2026-01-01"), "schedule.rrule"),
        (Recurring("FREQ=DAILY;FREQ=DAILY", "02:00", 60, "UTC", "2026-01-01"), "schedule.rrule"),
        (
            Recurring("FREQ=DAILY;COUNT=2;UNTIL=20270101", "02:00", 60, "UTC", "2026-01-01"),
            "schedule.rrule",
        ),
        (Recurring("FREQ=WEEKLY;BYDAY=XX", "02:00", 60, "UTC", "2026-01-01"), "schedule.rrule"),
        (Recurring("nonsense", "02:00", 60, "UTC", "2026-01-01"), "schedule.rrule"),
        (Recurring("FREQ=DAILY", "24:00", 60, "UTC", "2026-01-01"), "schedule.startTime"),
        (Recurring("FREQ=DAILY", "2:00", 60, "UTC", "2026-01-01"), "schedule.startTime"),
        (Recurring("FREQ=DAILY", "02:00", 0, "UTC", "2026-01-01"), "schedule.durationMinutes"),
        (Recurring("FREQ=DAILY", "02:00", 10081, "UTC", "2026-01-01"), "schedule.durationMinutes"),
        (Recurring("FREQ=DAILY", "02:00", 60, "Mars/Olympus", "2026-01-01"), "schedule.timezone"),
        (Recurring("FREQ=DAILY", "02:00", 60, "../etc/passwd", "2026-01-01"), "schedule.timezone"),
        (Recurring("FREQ=DAILY", "02:00", 60, "UTC", "2026-02-30"), "schedule.startsOn"),
    ],
)
def test_bad_recurring_schedules_name_their_field(schedule: Recurring, field: str) -> None:
    with pytest.raises(ScheduleError) as caught:
        check_recurring(schedule)
    assert caught.value.field == field
