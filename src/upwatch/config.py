"""Typed settings from ``UPWATCH_*`` variables. Built once in the CLI and passed down."""

from __future__ import annotations

import enum
import logging
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from upwatch.domain import DEFAULT_TARGET_DENY, TargetPolicy, parse_networks
from upwatch.errors import ConfigError

ENV_PREFIX = "UPWATCH_"
SUPPORTED_SCHEMES = ("sqlite", "postgresql", "postgres")


class LogLevel(enum.StrEnum):
    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"
    CRITICAL = "critical"

    @property
    def number(self) -> int:
        return logging.getLevelNamesMapping()[self.value.upper()]


class LogFormat(enum.StrEnum):
    TEXT = "text"  # for people: time, level, logger, message, then ids as key=value
    JSON = "json"  # for log shippers: one JSON object a line (upwatch/logs.py)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    database_url: str = "sqlite:///./upwatch.db"
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 8080
    max_monitors_per_team: Annotated[int, Field(ge=0)] = 1000
    result_retention_days: Annotated[int, Field(ge=1)] = 30
    # Hourly and daily statistics (SPEC §9) are kept this long.
    rollup_retention_days: Annotated[int, Field(ge=1, le=36_500)] = 400
    log_level: LogLevel = LogLevel.INFO
    log_format: LogFormat = LogFormat.TEXT
    # `serve` runs the checks in this many processes of their own (checkers.py).
    checker_processes: Annotated[int, Field(ge=1, le=64)] = 1
    # Beyond SPEC.md §2: how many probes one process runs at once.
    check_concurrency: Annotated[int, Field(ge=1, le=100_000)] = 2000
    # Requests per minute per API key and API process; 0 turns the limit off.
    rate_limit_per_minute: Annotated[int, Field(ge=0)] = 600
    # Load shedding (api/shedding.py): a request is refused with 503 when requests have
    # waited for their handler longer than the target for longer than the interval (and
    # more than a burst are queued). A target of 0 turns it off.
    shed_target_ms: Annotated[float, Field(ge=0, le=10_000)] = 20.0
    shed_interval_ms: Annotated[float, Field(gt=0, le=60_000)] = 100.0
    # A backstop: API requests received and not yet answered per process; past it, 503
    # at once. 0 turns it off.
    max_requests_in_flight: Annotated[int, Field(ge=0)] = 1024
    # Results a checker holds while the database is unreachable; past it they are
    # dropped, counted and logged.
    result_buffer_rows: Annotated[int, Field(ge=1000)] = 200_000
    # Which addresses may be checked (comma-separated CIDR networks).
    target_deny: str = DEFAULT_TARGET_DENY
    target_allow: str = ""
    # Where people reach this upwatch: notifications link to the monitor's page there.
    public_url: Annotated[str, Field(pattern=r"^(https?://[^\s/]+(/\S*)?)?$")] = ""
    # E-mail channels send through this server: smtp://user:pass@host:587 (STARTTLS when
    # the server offers it) or smtps://…:465 (TLS from the start). Empty: no e-mail.
    smtp_url: Annotated[str, Field(pattern=r"^(smtps?://\S+)?$")] = ""
    smtp_from: str = "upwatch@localhost"
    # Notifications sent at once by one process; a slow receiver holds only its own.
    max_sends_in_flight: Annotated[int, Field(ge=1, le=10_000)] = 64
    # A claimed delivery is left to its process this long; then another may send it
    # (same webhook-id). Longer than any attempt (at most 25 s), so only a dead process
    # loses one.
    delivery_lease_s: Annotated[float, Field(ge=30, le=3600)] = 60.0
    # `upwatch worker` serves its own metrics, without a key, on this port (unset: not
    # at all), bound to this address (SPEC §9).
    metrics_port: Annotated[int | None, Field(ge=1, le=65535)] = None
    metrics_host: str = "127.0.0.1"

    @field_validator("target_deny", "target_allow")
    @classmethod
    def _networks(cls, value: str) -> str:
        parse_networks(value)
        return value

    @property
    def target_policy(self) -> TargetPolicy:
        return TargetPolicy(parse_networks(self.target_deny), parse_networks(self.target_allow))

    @field_validator("database_url")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        scheme, sep, _ = value.partition("://")
        base = scheme.split("+", 1)[0]
        if not sep or base not in SUPPORTED_SCHEMES:
            raise ValueError(
                f"unsupported scheme {scheme!r}: use sqlite:///path or postgresql://host/db"
            )
        return value

    @field_validator("log_level", "log_format", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value


def load_settings(overrides: Mapping[str, Any] | None = None) -> Settings:
    """Settings from the environment, with CLI ``overrides`` (None values ignored).

    A bad value raises ConfigError with a single line naming the variable.
    """
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    try:
        return Settings(**given)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = str(err["loc"][0]) if err["loc"] else "?"
        origin = f"--{field.replace('_', '-')}" if field in given else ENV_PREFIX + field.upper()
        raise ConfigError(f"{origin}: {err['msg']}") from None


def redact_url(url: str) -> str:
    """The URL with any password replaced, for logs and error messages."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    creds, _, host = rest.rpartition("@")
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if ":" in creds else url
