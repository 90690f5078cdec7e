"""What notifications say, and when a failed one is tried again."""

import pytest

from upwatch.notifications import (
    GIVE_UP_AFTER_MS,
    RETRY_DELAYS_S,
    Event,
    duration_text,
    headline,
    new_webhook_secret,
    retry_at,
)

MONITOR = {"name": "db", "host": "10.0.0.5", "port": 5432}


def incident(**kw: object) -> dict[str, object]:
    base = {
        "startedAt": "2026-02-14T12:00:00.000Z",
        "cause": {"status": "down", "error": "Connection refused"},
        "endReason": None,
        "durationSeconds": None,
    }
    return {**base, **kw}


@pytest.mark.parametrize(("attempt", "base"), list(enumerate(RETRY_DELAYS_S, start=1)))
def test_retries_back_off_about_as_the_spec_says_with_jitter(attempt: int, base: int) -> None:
    for _ in range(50):
        delay = retry_at(attempt, 1_000_000, 1_000_000, retry_after_s=None)
        assert delay is not None
        assert 0.8 * base * 1000 <= delay - 1_000_000 <= 1.2 * base * 1000


def test_hourly_after_the_schedule_and_failed_after_a_day() -> None:
    created = 0
    late = retry_at(9, 3_600_000, created, retry_after_s=None)
    assert late is not None
    assert 0.8 * 3_600_000 <= late - 3_600_000 <= 1.2 * 3_600_000
    assert retry_at(30, GIVE_UP_AFTER_MS - 60_000, created, retry_after_s=None) is None


def test_retry_after_is_honoured_when_longer() -> None:
    at = retry_at(1, 0, 0, retry_after_s=900)
    assert at is not None
    assert at >= 900_000
    short = retry_at(1, 0, 0, retry_after_s=1)
    assert short is not None
    assert short >= 24_000


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(45, "45 s"), (60, "1 min"), (750, "12 min 30 s"), (3600, "1 h"), (7500, "2 h 5 min")],
)
def test_durations_read_as_people_say_them(seconds: int, text: str) -> None:
    assert duration_text(seconds) == text


def test_headlines_say_which_monitor_what_and_since_when() -> None:
    data = {"monitor": MONITOR, "incident": incident()}
    assert headline(Event.OPENED, data) == (
        "DOWN: Connection refused - db (10.0.0.5:5432), since 2026-02-14T12:00:00.000Z"
    )
    assert headline(Event.REMINDER, data).startswith("STILL DOWN: ")
    timeout = {"monitor": MONITOR, "incident": incident(cause={"status": "timeout", "error": None})}
    assert headline(Event.OPENED, timeout).startswith("TIMEOUT - db (10.0.0.5:5432)")
    recovered = {
        "monitor": MONITOR,
        "incident": incident(endReason="recovered", durationSeconds=750.5),
    }
    assert headline(Event.RESOLVED, recovered) == "RECOVERED after 12 min 30 s: db (10.0.0.5:5432)"
    paused = {"monitor": MONITOR, "incident": incident(endReason="paused", durationSeconds=9)}
    assert "paused" in headline(Event.RESOLVED, paused)


def test_webhook_secrets_are_standard_webhooks_secrets() -> None:
    secret = new_webhook_secret()
    assert secret.startswith("whsec_")
    assert secret != new_webhook_secret()
