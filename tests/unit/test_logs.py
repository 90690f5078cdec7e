"""upwatch/logs.py: JSON and text lines, the request id from context, secrets scrubbed,
and UPWATCH_LOG_FORMAT validated like the other settings."""

from __future__ import annotations

import io
import json
import logging
import re
import sys
import threading
from collections.abc import Iterator

import pytest

from upwatch import logs
from upwatch.config import LogFormat, load_settings
from upwatch.errors import ConfigError

RFC3339_MS_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
KEY = "uptime_" + "A1b2C3d4" * 5
SECRET = "whsec_" + "c2VjcmV0LXNlY3JldC1zZWNyZXQ="


def record(
    message: str = "hello world",
    *args: object,
    name: str = "upwatch.test",
    level: int = logging.INFO,
    exc: bool = False,
    **fields: object,
) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ValueError("boom")
        except ValueError:
            exc_info = sys.exc_info()
    made = logging.LogRecord(name, level, __file__, 1, message, args, exc_info)
    made.__dict__.update(fields)
    return made


def as_json(rec: logging.LogRecord) -> dict[str, object]:
    line = logs.JsonFormatter().format(rec)
    assert "\n" not in line
    parsed: dict[str, object] = json.loads(line)
    return parsed


def test_a_json_line_has_time_level_logger_and_message() -> None:
    rec = record()
    rec.created = 1_771_070_400.1239  # 2026-02-14T12:00:00.123Z
    assert as_json(rec) == {
        "time": "2026-02-14T12:00:00.123Z",
        "level": "info",
        "logger": "upwatch.test",
        "message": "hello world",
    }
    assert RFC3339_MS_UTC.match(str(as_json(record())["time"]))


def test_a_json_line_carries_the_events_fields_and_no_other_extras() -> None:
    line = as_json(
        record(
            monitor_id="tcpm_1",
            incident_id="inc_1",
            delivery_id="ndl_1",
            channel_id="nch_1",
            request_id="r-1",
            duration_ms=1.25,
            status=200,
            method="GET",
            path="/v1/tcp-monitors/{monitor_id}",
            color_message="uvicorn's, not ours",
            password="never",
        )
    )
    assert line["monitor_id"] == "tcpm_1"
    assert (line["incident_id"], line["delivery_id"], line["channel_id"]) == (
        "inc_1",
        "ndl_1",
        "nch_1",
    )
    assert (line["request_id"], line["duration_ms"], line["status"]) == ("r-1", 1.25, 200)
    assert (line["method"], line["path"]) == ("GET", "/v1/tcp-monitors/{monitor_id}")
    assert "color_message" not in line
    assert "password" not in line


def test_an_exception_is_its_traceback_in_one_json_line() -> None:
    line = as_json(record("failed", level=logging.ERROR, exc=True))
    assert line["level"] == "error"
    text = str(line["exc_info"])
    assert text.startswith("Traceback (most recent call last):")
    assert "ValueError: boom" in text


def test_odd_text_still_makes_valid_json() -> None:
    line = as_json(record("%s", 'lone \udc80 surrogate, "quotes" and a\nnewline'))
    assert "surrogate" in str(line["message"])


def test_a_text_line_ends_with_the_ids_its_message_does_not_show() -> None:
    rec = record("delivery %s failed", "ndl_1", delivery_id="ndl_1", monitor_id="tcpm_1")
    line = logs.TextFormatter().format(rec)
    assert line.endswith("INFO upwatch.test: delivery ndl_1 failed monitor_id=tcpm_1")
    assert "\n" not in line


def test_a_text_line_keeps_its_ids_on_the_first_line_before_a_traceback() -> None:
    line = logs.TextFormatter().format(record("failed", exc=True, request_id="abc"))
    first, *rest = line.splitlines()
    assert first.endswith("upwatch.test: failed request_id=abc")
    assert rest[0].startswith("Traceback")


@pytest.mark.parametrize(
    ("secret", "shown"),
    [
        (KEY, "uptime_***"),
        (SECRET, "whsec_***"),
        ("postgresql://upwatch:s3cr3t@db:5432/upwatch", "postgresql://upwatch:***@db:5432/upwatch"),
        ("smtp://mailer:p%40ss@mail.example.com:587", "smtp://mailer:***@mail.example.com:587"),
    ],
)
def test_lines_are_scrubbed_of_what_looks_like_a_secret(secret: str, shown: str) -> None:
    for formatter in (logs.JsonFormatter(), logs.TextFormatter()):
        line = formatter.format(record("oops: %s", secret, exc=True))
        assert secret not in line
        assert shown in line


def test_a_key_prefix_and_urls_without_passwords_are_left_alone() -> None:
    text = "key uptime_ab12CD (prefix) http://127.0.0.1:8080/x@y mail to ops@example.com"
    assert logs.scrub(text) == text


def test_lines_logged_during_a_request_carry_its_id() -> None:
    rec = record()
    token = logs.REQUEST_ID.set("req-1")
    try:
        assert logs.RequestIdFilter().filter(rec)
    finally:
        logs.REQUEST_ID.reset(token)
    assert as_json(rec)["request_id"] == "req-1"
    outside = record()
    logs.RequestIdFilter().filter(outside)
    assert "request_id" not in as_json(outside)


@pytest.fixture
def configured() -> Iterator[io.StringIO]:
    """A stream for ``logs.configure``, and logging as it was afterwards."""
    root = logging.getLogger()
    saved = (root.level, list(root.handlers), sys.excepthook, threading.excepthook)
    levels = {n: logging.getLogger(n).level for n in (*logs.QUIET, "alembic")}
    gathered = ("_srcfile", "logThreads", "logProcesses", "logMultiprocessing")
    flags = {name: getattr(logging, name) for name in gathered}
    try:
        yield io.StringIO()
    finally:
        for handler in root.handlers[:]:
            if handler not in saved[1]:
                root.removeHandler(handler)
        root.setLevel(saved[0])
        sys.excepthook, threading.excepthook = saved[2], saved[3]
        logging.captureWarnings(False)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
        for name, value in flags.items():
            setattr(logging, name, value)


def test_configured_json_covers_every_logger_and_holds_leaky_ones_back(
    configured: io.StringIO,
) -> None:
    logs.configure(level=logging.DEBUG, json_lines=True, stream=configured)
    logs.configure(level=logging.DEBUG, json_lines=True, stream=configured)  # still one
    logging.getLogger("uvicorn.error").info("Started server process [%d]", 42)
    logging.getLogger("alembic.runtime.migration").info("Running upgrade")
    logging.getLogger("httpx").info("HTTP Request: POST https://hooks.slack.com/services/T/B/X")
    logging.getLogger("aiosqlite").debug("executing INSERT … whsec_…")
    lines = [json.loads(line) for line in configured.getvalue().splitlines()]
    assert [(x["logger"], x["message"]) for x in lines] == [
        ("uvicorn.error", "Started server process [42]"),
        ("alembic.runtime.migration", "Running upgrade"),
    ]
    assert logs.structured()


def test_configured_text_is_the_classic_line(configured: io.StringIO) -> None:
    logs.configure(level=logging.INFO, json_lines=False, stream=configured)
    logging.getLogger("upwatch.x").info("hello", extra={"monitor_id": "tcpm_1"})
    logging.getLogger("alembic").info("Context impl SQLiteImpl.")  # held back below DEBUG
    (line,) = configured.getvalue().splitlines()
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO upwatch\.x: hello monitor_id=tcpm_1", line
    )
    assert not logs.structured()


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("LOG_FORMAT", "LOG_LEVEL"):
        monkeypatch.delenv(f"UPWATCH_{name}", raising=False)


@pytest.mark.usefixtures("clean_env")
def test_the_log_format_is_text_unless_json_is_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().log_format is LogFormat.TEXT
    monkeypatch.setenv("UPWATCH_LOG_FORMAT", "JSON")
    assert load_settings().log_format is LogFormat.JSON
    assert load_settings({"log_format": "text"}).log_format is LogFormat.TEXT


@pytest.mark.usefixtures("clean_env")
def test_a_bad_log_format_is_one_line_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UPWATCH_LOG_FORMAT", "yaml")
    with pytest.raises(ConfigError, match=r"^UPWATCH_LOG_FORMAT: .*'text' or 'json'"):
        load_settings()
    with pytest.raises(ConfigError, match=r"^--log-format: "):
        load_settings({"log_format": "xml"})
