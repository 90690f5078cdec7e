"""Wire format: request models (strict), response shapes, and their JSON.

Request models validate in pydantic's strict mode: JSON types are never coerced.
Response bodies are built as plain dicts (no validation on the way out); the response
models here only document them in /openapi.json, and the tests hold both to the API
document's JSON Schemas.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema
from pydantic_core import PydanticCustomError

from upwatch import domain

_NAME = "Monitor name"
_HOST = "Hostname or IP address"
_PORT = "TCP port number"
_TIMEOUT = "Connection timeout in milliseconds"
_INTERVAL = "Check interval in seconds"
_ENABLED = "Whether the monitor is active"

Name = Annotated[str, Field(min_length=1, max_length=domain.NAME_MAX, description=_NAME)]
Host = Annotated[str, Field(min_length=1, max_length=domain.HOST_MAX, description=_HOST)]
Port = Annotated[int, Field(ge=domain.PORT_MIN, le=domain.PORT_MAX, description=_PORT)]
TimeoutMs = Annotated[
    int, Field(ge=domain.TIMEOUT_MS_MIN, le=domain.TIMEOUT_MS_MAX, description=_TIMEOUT)
]
IntervalSeconds = Annotated[
    int, Field(ge=domain.INTERVAL_S_MIN, le=domain.INTERVAL_S_MAX, description=_INTERVAL)
]
IsEnabled = Annotated[bool, Field(description=_ENABLED)]


def _reminder_interval(value: int | None) -> int | None:
    if (
        value is not None
        and value != 0
        and not (domain.REMIND_MINUTES_MIN <= value <= domain.REMIND_MINUTES_MAX)
    ):
        raise ValueError(
            f"must be 0 (never) or from {domain.REMIND_MINUTES_MIN} to {domain.REMIND_MINUTES_MAX}"
        )
    return value


RemindEveryMinutes = Annotated[
    int,
    Field(
        ge=0,
        le=domain.REMIND_MINUTES_MAX,
        description="While an incident stays open, notify again this often: 0 (never) "
        "or 5-10080 minutes",
    ),
]
ChannelIds = Annotated[
    list[Annotated[str, Field(min_length=1, max_length=64)]],
    Field(
        max_length=20,
        description="Notification channels of the same team to notify (at most 20, no repeats)",
    ),
]
ConfirmationChecks = Annotated[
    int,
    Field(
        ge=domain.CHECKS_MIN,
        le=domain.CHECKS_MAX,
        description="Consecutive failed checks (down or timeout) that confirm an outage",
    ),
]
RecoveryChecks = Annotated[
    int,
    Field(
        ge=domain.CHECKS_MIN,
        le=domain.CHECKS_MAX,
        description="Consecutive up checks that confirm a recovery",
    ),
]


IpFamilyName = Annotated[
    Literal["auto", "ipv4", "ipv6"],
    Field(
        description="Addresses to connect to: `auto` (both families, raced as Happy "
        "Eyeballs, RFC 8305), `ipv4` or `ipv6` only. An IP literal host of the other "
        "family is refused."
    ),
]


# Wire names to the domain's.
_DOMAIN_NAMES = {
    "name": "name",
    "host": "host",
    "port": "port",
    "timeoutMs": "timeout_ms",
    "intervalSeconds": "interval_s",
    "isEnabled": "is_enabled",
    "confirmationChecks": "confirmation_checks",
    "recoveryChecks": "recovery_checks",
    "notificationChannelIds": "channel_ids",
    "remindEveryMinutes": "remind_every_minutes",
    "ipFamily": "ip_family",
}


def _domain_names(model: BaseModel) -> dict[str, Any]:
    names = {_DOMAIN_NAMES[k]: v for k, v in model.model_dump().items()}
    if names.get("ip_family") is not None:
        names["ip_family"] = domain.IpFamily(names["ip_family"])
    if names.get("channel_ids") is not None:
        names["channel_ids"] = tuple(names["channel_ids"])
    return names


def _distinct(value: list[str] | None) -> list[str] | None:
    if value is not None and len(set(value)) != len(value):
        raise ValueError("must not repeat an id")
    return value


def _checked_host(value: str | None) -> str | None:
    if value is not None and (problem := domain.host_problem(value)):
        raise ValueError(problem)
    return value


def _family_fits_host(model: Any) -> Any:
    """Both given: an IP literal of the other family is refused. (On an update that
    gives one of them, the store judges it against the stored other.)"""
    host, family = model.host, model.ipFamily
    if (
        host is not None
        and family is not None
        and (p := domain.family_problem(host, domain.IpFamily(family)))
    ):
        raise PydanticCustomError("ip_family", p, {"field": "ipFamily"})
    return model


def _as_in_the_api_document(schema: dict[str, Any]) -> None:
    """Shape the generated schema like the API document's: no per-field titles, and
    no ``default: null`` (an omitted update field means "unchanged", not null)."""
    for prop in schema.get("properties", {}).values():
        prop.pop("title", None)
        if prop.get("default", 0) is None:
            del prop["default"]


class CreateTcpMonitorRequest(BaseModel):
    model_config = ConfigDict(
        strict=True,
        extra="forbid",
        title="CreateTcpMonitorRequest",
        json_schema_extra=_as_in_the_api_document,
    )

    name: Name
    host: Host
    port: Port
    timeoutMs: TimeoutMs = domain.TIMEOUT_MS_DEFAULT
    intervalSeconds: IntervalSeconds = domain.INTERVAL_S_DEFAULT
    isEnabled: IsEnabled = True
    confirmationChecks: ConfirmationChecks = domain.CONFIRMATION_CHECKS_DEFAULT
    recoveryChecks: RecoveryChecks = domain.RECOVERY_CHECKS_DEFAULT
    notificationChannelIds: ChannelIds = []
    remindEveryMinutes: RemindEveryMinutes = 0
    ipFamily: IpFamilyName = "auto"

    _host = field_validator("host")(_checked_host)
    _channels = field_validator("notificationChannelIds")(_distinct)
    _remind = field_validator("remindEveryMinutes")(_reminder_interval)
    _family = model_validator(mode="after")(_family_fits_host)

    def to_domain(self) -> domain.NewMonitor:
        return domain.NewMonitor(**_domain_names(self))


class UpdateTcpMonitorRequest(BaseModel):
    """Every field optional; ``null`` is rejected before the model sees the body."""

    model_config = ConfigDict(
        strict=True,
        extra="forbid",
        title="UpdateTcpMonitorRequest",
        json_schema_extra=_as_in_the_api_document,
    )

    name: Name | SkipJsonSchema[None] = None
    host: Host | SkipJsonSchema[None] = None
    port: Port | SkipJsonSchema[None] = None
    timeoutMs: TimeoutMs | SkipJsonSchema[None] = None
    intervalSeconds: IntervalSeconds | SkipJsonSchema[None] = None
    isEnabled: IsEnabled | SkipJsonSchema[None] = None
    confirmationChecks: ConfirmationChecks | SkipJsonSchema[None] = None
    recoveryChecks: RecoveryChecks | SkipJsonSchema[None] = None
    notificationChannelIds: ChannelIds | SkipJsonSchema[None] = None
    remindEveryMinutes: RemindEveryMinutes | SkipJsonSchema[None] = None
    ipFamily: IpFamilyName | SkipJsonSchema[None] = None

    _host = field_validator("host")(_checked_host)
    _channels = field_validator("notificationChannelIds")(_distinct)
    _remind = field_validator("remindEveryMinutes")(_reminder_interval)
    _family = model_validator(mode="after")(_family_fits_host)

    def to_domain(self) -> domain.MonitorChanges:
        return domain.MonitorChanges(**_domain_names(self))  # unset fields stay None


# -- responses (documentation) ---------------------------------------------------------

StatusName = Literal["up", "down", "timeout"]


class TcpMonitor(BaseModel):
    id: Annotated[str, Field(description="Unique identifier", pattern=r"^tcpm_[a-zA-Z0-9]+$")]
    name: Name
    host: Host
    port: Port
    timeoutMs: TimeoutMs
    intervalSeconds: IntervalSeconds
    isEnabled: IsEnabled
    lastCheckedAt: Annotated[AwareDatetime | None, Field(description="Timestamp of the last check")]
    lastStatus: Annotated[StatusName | None, Field(description="Status from the last check")]
    lastResponseTimeMs: Annotated[
        int | None, Field(description="Response time from the last check in milliseconds")
    ]
    createdAt: Annotated[AwareDatetime, Field(description="Timestamp when the monitor was created")]
    updatedAt: Annotated[
        AwareDatetime, Field(description="Timestamp when the monitor was last updated")
    ]
    confirmationChecks: ConfirmationChecks
    recoveryChecks: RecoveryChecks
    state: Annotated[
        Literal["unknown", "up", "down"],
        Field(description="Confirmed state: unknown until the first confirmation"),
    ]
    stateChangedAt: Annotated[
        AwareDatetime | None, Field(description="When the state last changed; null while unknown")
    ]
    openIncidentId: Annotated[str | None, Field(description="The open incident, if any")]
    notificationChannelIds: list[str]
    remindEveryMinutes: RemindEveryMinutes
    inMaintenance: Annotated[bool, Field(description="In a maintenance window now")]
    ipFamily: IpFamilyName


class TcpMonitorEnvelope(BaseModel):
    data: TcpMonitor


class TcpMonitorList(BaseModel):
    data: list[TcpMonitor]


class IncidentCause(BaseModel):
    status: Literal["down", "timeout"]
    error: str | None


class Incident(BaseModel):
    id: Annotated[str, Field(description="Unique identifier", pattern=r"^tcpi_[a-zA-Z0-9]+$")]
    monitorId: str
    status: Literal["open", "resolved"]
    startedAt: Annotated[AwareDatetime, Field(description="The first failed check of the run")]
    confirmedAt: Annotated[AwareDatetime, Field(description="The check that confirmed it")]
    resolvedAt: Annotated[
        AwareDatetime | None,
        Field(description="The first up check of the recovery (or the change that ended it)"),
    ]
    durationSeconds: Annotated[float | None, Field(description="null while open")]
    cause: IncidentCause
    endReason: Literal["recovered", "retargeted", "paused", "deleted"] | None


class IncidentList(BaseModel):
    data: list[Incident]
    pagination: Pagination


class CheckResult(BaseModel):
    id: Annotated[str, Field(description="Unique identifier", pattern=r"^tcpr_[a-zA-Z0-9]+$")]
    status: Annotated[StatusName, Field(description="Result status")]
    responseTimeMs: Annotated[int | None, Field(description="Connection time in milliseconds")]
    error: Annotated[
        str | SkipJsonSchema[None],
        Field(description="Error message when status is down or timeout; absent when up"),
    ] = None
    checkedAt: Annotated[AwareDatetime, Field(description="Timestamp when the check was performed")]
    dnsTimeMs: Annotated[
        int | None,
        Field(description="Time to resolve the host; null for an IP literal or a failed lookup"),
    ]
    connectTimeMs: Annotated[
        int | None,
        Field(
            description="Time from the resolved address(es) to the established connection; "
            "null unless the handshake finished"
        ),
    ]
    resolvedAddress: Annotated[
        str | None,
        Field(
            description="The address connected to (or whose failure `error` reports); "
            "null when no address was tried"
        ),
    ]


class Pagination(BaseModel):
    total: Annotated[int, Field(description="Total number of results")]
    limit: Annotated[int, Field(description="Number of results per page")]
    offset: Annotated[int, Field(description="Number of results skipped")]


class CheckResultList(BaseModel):
    data: list[CheckResult]
    pagination: Pagination


class ErrorDetail(BaseModel):
    field: str
    message: str


class ErrorInfo(BaseModel):
    code: Annotated[str, Field(examples=["VALIDATION_ERROR"])]
    message: str
    details: list[ErrorDetail] | SkipJsonSchema[None] = None


class Error(BaseModel):
    error: ErrorInfo


class Health(BaseModel):
    status: Literal["ok", "unavailable"]


# -- notification channels --------------------------------------------------------------

ChannelName = Annotated[str, Field(min_length=1, max_length=domain.NAME_MAX)]
ChannelTypeName = Literal["webhook", "slack", "email", "apprise"]


class CreateNotificationChannelRequest(BaseModel):
    model_config = ConfigDict(
        strict=True, extra="forbid", json_schema_extra=_as_in_the_api_document
    )

    name: ChannelName
    type: ChannelTypeName
    config: dict[str, Any]
    isEnabled: IsEnabled = True


class UpdateNotificationChannelRequest(BaseModel):
    """``type`` may be given, but not changed."""

    model_config = ConfigDict(
        strict=True, extra="forbid", json_schema_extra=_as_in_the_api_document
    )

    name: ChannelName | SkipJsonSchema[None] = None
    type: ChannelTypeName | SkipJsonSchema[None] = None
    config: dict[str, Any] | SkipJsonSchema[None] = None
    isEnabled: IsEnabled | SkipJsonSchema[None] = None


class NotificationChannel(BaseModel):
    id: Annotated[str, Field(pattern=r"^nch_[a-zA-Z0-9]+$")]
    name: str
    type: ChannelTypeName
    config: Annotated[
        dict[str, Any], Field(description="Slack and Apprise URLs shown as scheme://host/…")
    ]
    isEnabled: bool
    disabledReason: Annotated[
        str | None, Field(description="Why upwatch disabled it (a receiver's HTTP 410)")
    ]
    createdAt: AwareDatetime
    updatedAt: AwareDatetime
    secret: Annotated[
        str | SkipJsonSchema[None],
        Field(description="A webhook's signing secret: only in create and rotate-secret"),
    ] = None


class NotificationChannelEnvelope(BaseModel):
    data: NotificationChannel


class NotificationChannelList(BaseModel):
    data: list[NotificationChannel]


class Delivery(BaseModel):
    id: Annotated[str, Field(pattern=r"^ndl_[a-zA-Z0-9]+$")]
    channelId: str
    event: Literal["incident.opened", "incident.reminder", "incident.resolved", "test"]
    incidentId: str | None
    monitorId: str | None
    status: Literal["pending", "delivered", "failed"]
    attempts: int
    lastAttemptAt: AwareDatetime | None
    lastError: str | None
    createdAt: AwareDatetime
    deliveredAt: AwareDatetime | None


class DeliveryEnvelope(BaseModel):
    data: Delivery


class DeliveryList(BaseModel):
    data: list[Delivery]
    pagination: Pagination


# -- maintenance windows ----------------------------------------------------------------


class OnceSchedule(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    type: Literal["once"]
    startsAt: Annotated[str, Field(description="RFC 3339, with a time zone offset or Z")]
    endsAt: Annotated[str, Field(description="RFC 3339; after startsAt")]


class RecurringSchedule(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    type: Literal["recurring"]
    rrule: Annotated[
        str,
        Field(
            max_length=500,
            description="RFC 5545: FREQ=DAILY|WEEKLY|MONTHLY, INTERVAL, BYDAY, BYMONTHDAY, "
            "COUNT, UNTIL",
            examples=["FREQ=WEEKLY;BYDAY=SU"],
        ),
    ]
    startTime: Annotated[str, Field(description="Local wall time, HH:MM", examples=["02:00"])]
    durationMinutes: Annotated[int, Field(ge=1, le=10_080)]
    timezone: Annotated[str, Field(max_length=64, description="IANA", examples=["Europe/Berlin"])]
    startsOn: Annotated[str, Field(description="Local date, YYYY-MM-DD")]


WindowSchedule = Annotated[OnceSchedule | RecurringSchedule, Field(discriminator="type")]
MonitorIds = Annotated[
    list[Annotated[str, Field(min_length=1, max_length=64)]],
    Field(max_length=1000, description="Empty: every monitor of the team, present and future"),
]


class CreateMaintenanceWindowRequest(BaseModel):
    model_config = ConfigDict(
        strict=True, extra="forbid", json_schema_extra=_as_in_the_api_document
    )

    name: ChannelName
    monitorIds: MonitorIds = []
    schedule: WindowSchedule

    _monitors = field_validator("monitorIds")(_distinct)


class UpdateMaintenanceWindowRequest(BaseModel):
    model_config = ConfigDict(
        strict=True, extra="forbid", json_schema_extra=_as_in_the_api_document
    )

    name: ChannelName | SkipJsonSchema[None] = None
    monitorIds: MonitorIds | SkipJsonSchema[None] = None
    schedule: WindowSchedule | SkipJsonSchema[None] = None

    _monitors = field_validator("monitorIds")(_distinct)


class WindowTimes(BaseModel):
    startsAt: AwareDatetime
    endsAt: AwareDatetime


class MaintenanceWindow(BaseModel):
    id: Annotated[str, Field(pattern=r"^mw_[a-zA-Z0-9]+$")]
    name: str
    monitorIds: list[str]
    schedule: WindowSchedule
    active: bool
    nextWindow: WindowTimes | None
    createdAt: AwareDatetime
    updatedAt: AwareDatetime


class MaintenanceWindowEnvelope(BaseModel):
    data: MaintenanceWindow


class MaintenanceWindowList(BaseModel):
    data: list[MaintenanceWindow]


# -- statistics (SPEC §9) ------------------------------------------------------------------

Percent = Annotated[
    float | None,
    Field(description="Time-based availability, maintenance excluded; null when no time counts"),
]
Ms = Annotated[float | None, Field(description="Milliseconds; null without up checks")]


class StatsIncidents(BaseModel):
    count: Annotated[int, Field(description="Incidents overlapping the range")]
    longestSeconds: Annotated[
        float | None, Field(description="The longest time one incident spent inside the range")
    ]
    meanTimeToRecoverySeconds: Annotated[
        float | None,
        Field(description="Mean start-to-resolution time of incidents resolved in the range"),
    ]


class StatsChecks(BaseModel):
    total: int
    up: int
    down: int
    timeout: int


class StatsResponseTimes(BaseModel):
    min: Ms
    mean: Ms
    p50: Ms
    p95: Ms
    p99: Ms
    max: Ms


class MonitorStats(BaseModel):
    from_: Annotated[AwareDatetime, Field(alias="from")]
    to: AwareDatetime
    availabilityPercent: Percent
    downtimeSeconds: Annotated[
        float, Field(description="Time down (in incidents), maintenance excluded")
    ]
    maintenanceSeconds: Annotated[float, Field(description="Time in maintenance windows")]
    incidents: StatsIncidents
    checks: StatsChecks
    responseTimeMs: StatsResponseTimes


class MonitorStatsEnvelope(BaseModel):
    data: MonitorStats


class SeriesResponseTimes(BaseModel):
    p50: Ms
    p95: Ms
    max: Ms


class SeriesBucket(BaseModel):
    start: Annotated[AwareDatetime, Field(description="Start of the bucket (UTC-aligned)")]
    availabilityPercent: Percent
    checks: Annotated[int, Field(description="Checks in the bucket")]
    responseTimeMs: SeriesResponseTimes


class StatsSeries(BaseModel):
    data: list[SeriesBucket]


class TeamStatsIncidents(BaseModel):
    count: int


class TeamStatsResponseTimes(BaseModel):
    p95: Ms


class TeamMonitorStats(BaseModel):
    monitorId: str
    availabilityPercent: Percent
    downtimeSeconds: float
    incidents: TeamStatsIncidents
    responseTimeMs: TeamStatsResponseTimes


class StatsRange(BaseModel):
    from_: Annotated[AwareDatetime, Field(alias="from")]
    to: AwareDatetime


class TeamStats(BaseModel):
    data: list[TeamMonitorStats]
    range: StatsRange


# -- status pages (SPEC §10) -----------------------------------------------------------------

Slug = Annotated[
    str,
    Field(
        pattern=r"^[a-z0-9-]{3,64}$",
        description="The page's address, /status/<slug>: 3-64 of a-z, 0-9 and -, unique "
        "across the installation",
    ),
]
PageMonitorIds = Annotated[
    list[Annotated[str, Field(min_length=1, max_length=64)]],
    Field(max_length=100, description="The team's monitors to show, in this order (at most 100)"),
]
IsPublic = Annotated[bool, Field(description="false: the page is a 404 to anyone without a login")]
ShowTargets = Annotated[
    bool, Field(description="Show each monitor's host and port, and error texts")
]


class CreateStatusPageRequest(BaseModel):
    model_config = ConfigDict(
        strict=True, extra="forbid", json_schema_extra=_as_in_the_api_document
    )

    name: ChannelName
    slug: Slug
    monitorIds: PageMonitorIds = []
    isPublic: IsPublic = True
    showTargets: ShowTargets = False

    _monitors = field_validator("monitorIds")(_distinct)


class UpdateStatusPageRequest(BaseModel):
    model_config = ConfigDict(
        strict=True, extra="forbid", json_schema_extra=_as_in_the_api_document
    )

    name: ChannelName | SkipJsonSchema[None] = None
    slug: Slug | SkipJsonSchema[None] = None
    monitorIds: PageMonitorIds | SkipJsonSchema[None] = None
    isPublic: IsPublic | SkipJsonSchema[None] = None
    showTargets: ShowTargets | SkipJsonSchema[None] = None

    _monitors = field_validator("monitorIds")(_distinct)


class StatusPageModel(BaseModel):
    model_config = ConfigDict(title="StatusPage")

    id: Annotated[str, Field(pattern=r"^sp_[a-zA-Z0-9]+$")]
    name: str
    slug: str
    monitorIds: list[str]
    isPublic: bool
    showTargets: bool
    url: Annotated[str, Field(description="Where the page is (absolute with UPWATCH_PUBLIC_URL)")]
    createdAt: AwareDatetime
    updatedAt: AwareDatetime


class StatusPageEnvelope(BaseModel):
    data: StatusPageModel


class StatusPageList(BaseModel):
    data: list[StatusPageModel]
