"""Logging for every upwatch process: one handler on standard error, writing text for
people or, with ``UPWATCH_LOG_FORMAT=json``, one JSON object a line for log shippers.
Every logger goes through it: upwatch's own, uvicorn's and alembic's.

An event's ids travel as ``extra={"monitor_id": …}`` and become fields of its JSON line
(``FIELDS``); text lines end with the ids their message does not already show. The API's
request id is a context variable, set for each request by ``api/requestlog.py``: lines
logged while a request is handled carry it without its being passed down.

Secrets stay out of the logs. upwatch's own calls never pass one (keys, webhook secrets,
channel URLs, passwords); the third-party loggers that would (``QUIET``) are held at
WARNING whatever the level; and every line is scrubbed of what has the shape of an API
key, a webhook secret or a URL's password, in case a message or a traceback ever
carries one."""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
import threading
import time
from types import TracebackType
from typing import TextIO

import orjson

REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "upwatch_request_id", default=None
)

# The structured fields a line may carry, in the order they are written.
FIELDS = (
    "request_id",
    "method",
    "path",
    "status",
    "duration_ms",
    "monitor_id",
    "incident_id",
    "delivery_id",
    "channel_id",
)
IDS = ("request_id", "monitor_id", "incident_id", "delivery_id", "channel_id")  # text lines

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# Held at WARNING even at DEBUG, for what they would write: httpx and httpcore (and
# urllib3 and requests, under Apprise) log request URLs, which for Slack-style webhooks
# hold the token; Apprise logs its URLs at DEBUG and some at INFO; SQLAlchemy and
# aiosqlite log statements with their parameters (channel configs, secrets) at DEBUG.
QUIET = ("httpx", "httpcore", "urllib3", "requests", "apprise", "sqlalchemy", "aiosqlite")

# What a secret looks like: an API key (not its 13-character prefix), a webhook secret,
# the password of a URL (``scheme://user:password@host``).
_SECRET = re.compile(
    r"(uptime_)[0-9A-Za-z]{8,}|(whsec_)[0-9A-Za-z+/=]{8,}|(://[^\s/:@\"]*:)[^\s/@\"]+(?=@)"
)


def scrub(line: str) -> str:
    """``line`` with anything shaped like a secret replaced by ``***``."""
    if "uptime_" not in line and "whsec_" not in line and "@" not in line:
        return line  # the common case, at the cost of three scans
    return _SECRET.sub(_keep_prefix, line)


def _keep_prefix(match: re.Match[str]) -> str:
    return next(g for g in match.groups() if g is not None) + "***"


def rfc3339(created: float) -> str:
    """A ``LogRecord.created`` as RFC 3339 in UTC with milliseconds."""
    seconds = int(created)
    ms = int((created - seconds) * 1000)
    return f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(seconds))}.{ms:03d}Z"


class JsonFormatter(logging.Formatter):
    """One JSON object a line: ``time``, ``level``, ``logger``, ``message``, the fields
    of ``FIELDS`` the event has, and ``exc_info`` (the traceback) when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": rfc3339(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        given = record.__dict__
        for name in FIELDS:
            value = given.get(name)
            if value is not None:
                line[name] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exc_info"] = record.exc_text
        if record.stack_info:
            line["stack_info"] = self.formatStack(record.stack_info)
        try:
            text = orjson.dumps(line, default=str).decode()
        except TypeError:  # orjson refuses lone surrogates; json escapes them
            text = json.dumps(line, default=str)
        return scrub(text)


class TextFormatter(logging.Formatter):
    """The classic line (local time, level, logger, message), then ``key=value`` for the
    ids the message does not already show, then any traceback."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def formatMessage(self, record: logging.LogRecord) -> str:
        line = super().formatMessage(record)
        given = record.__dict__
        for name in IDS:
            value = given.get(name)
            if value is not None and str(value) not in record.message:
                line += f" {name}={value}"
        return line

    def format(self, record: logging.LogRecord) -> str:
        return scrub(super().format(record))


class RequestIdFilter(logging.Filter):
    """Gives each record the id of the request being handled, if there is one."""

    def filter(self, record: logging.LogRecord) -> bool:
        if "request_id" not in record.__dict__:
            request_id = REQUEST_ID.get()
            if request_id is not None:
                record.request_id = request_id
        return True


class _Handler(logging.StreamHandler[TextIO]):
    """The handler ``configure`` installs (and replaces when called again)."""


def configure(*, level: int, json_lines: bool, stream: TextIO | None = None) -> logging.Handler:
    """Send every logger's lines at ``level`` and above to ``stream`` (standard error),
    as JSON lines or as text. Returns the handler."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _Handler)]:
        root.removeHandler(old)
    handler = _Handler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if json_lines else TextFormatter())
    handler.addFilter(RequestIdFilter())
    root.addHandler(handler)
    root.setLevel(level)
    for name in QUIET:
        logging.getLogger(name).setLevel(max(level, logging.WARNING))
    # "Context impl SQLiteImpl." on every command helps nobody but a debugger.
    alembic = logging.NOTSET if level <= logging.DEBUG else logging.WARNING
    logging.getLogger("alembic").setLevel(alembic)
    logging.captureWarnings(True)  # warnings become lines in the same format
    # No line shows where a call was made, nor the process or thread: not gathering
    # them saves a third of what a record costs (the logging HOWTO, "Optimization"),
    # and the API writes one a request.
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    if json_lines:
        # A crash's traceback is one line too, not forty that a shipper cannot parse.
        sys.excepthook = _log_uncaught
        threading.excepthook = _log_uncaught_in_thread
    return handler


def structured() -> bool:
    """Whether ``configure`` made standard error JSON lines."""
    return any(
        isinstance(h, _Handler) and isinstance(h.formatter, JsonFormatter)
        for h in logging.getLogger().handlers
    )


def _log_uncaught(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    logging.getLogger("upwatch").critical("uncaught %s", kind.__name__, exc_info=(kind, exc, tb))


def _log_uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit:
        return
    name = args.thread.name if args.thread is not None else "a thread"
    logging.getLogger("upwatch").critical(
        "uncaught %s in %s",
        args.exc_type.__name__,
        name,
        exc_info=(args.exc_type, args.exc_value or args.exc_type(), args.exc_traceback),
    )
