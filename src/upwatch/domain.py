"""Plain dataclasses and pure rules. No I/O here."""

from __future__ import annotations

import enum
import functools
import ipaddress
import re
import secrets
import string
import time
from dataclasses import dataclass

BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase

MONITOR_ID_PREFIX = "tcpm_"
RESULT_ID_PREFIX = "tcpr_"
RANDOM_ID_CHARS = 22  # 22 base62 characters carry ~131 bits: unguessable
RESULT_TIME_CHARS = 8  # base62 milliseconds: sorts by time until the year 8888

SCOPE_READ = "tcp-monitors:read"
SCOPE_WRITE = "tcp-monitors:write"
SCOPE_CHANNELS_READ = "notification-channels:read"
SCOPE_CHANNELS_WRITE = "notification-channels:write"
SCOPE_METRICS_READ = "metrics:read"  # GET /metrics (SPEC §9)
SCOPES = (SCOPE_READ, SCOPE_WRITE, SCOPE_CHANNELS_READ, SCOPE_CHANNELS_WRITE, SCOPE_METRICS_READ)

# Bounds of the API document.
NAME_MAX = 255
HOST_MAX = 255
PORT_MIN, PORT_MAX = 1, 65535
TIMEOUT_MS_MIN, TIMEOUT_MS_MAX, TIMEOUT_MS_DEFAULT = 100, 60_000, 5_000
INTERVAL_S_MIN, INTERVAL_S_MAX, INTERVAL_S_DEFAULT = 10, 86_400, 60
# SPEC §7: consecutive failures that confirm an outage, ups that confirm a recovery.
CHECKS_MIN, CHECKS_MAX = 1, 10
CONFIRMATION_CHECKS_DEFAULT, RECOVERY_CHECKS_DEFAULT = 2, 1
# While an incident stays open, notify again every so many minutes (0: never).
REMIND_MINUTES_MIN, REMIND_MINUTES_MAX = 5, 10_080


class IpFamily(enum.StrEnum):
    """Which addresses of a name a check connects to (SPEC §9)."""

    AUTO = "auto"  # both, raced as Happy Eyeballs (RFC 8305)
    IPV4 = "ipv4"
    IPV6 = "ipv6"


def family_problem(host: str, family: IpFamily) -> str | None:
    """Why an IP literal ``host`` cannot be reached over ``family``, or None."""
    if family is IpFamily.AUTO:
        return None
    try:
        version = ipaddress.ip_address(host).version
    except ValueError:
        return None  # a name: judged on what it resolves to, at each check
    if family is IpFamily.IPV4 and version == 6:
        return "is ipv4, but host is an IPv6 address"
    if family is IpFamily.IPV6 and version == 4:
        return "is ipv6, but host is an IPv4 address"
    return None


class Status(enum.StrEnum):
    UP = "up"
    DOWN = "down"
    TIMEOUT = "timeout"


class MonitorState(enum.StrEnum):
    """Confirmed by consecutive results (upwatch/incidents.py); unknown until then."""

    UNKNOWN = "unknown"
    UP = "up"
    DOWN = "down"


@dataclass(frozen=True, slots=True)
class Team:
    id: int
    name: str
    max_monitors: int | None  # None: the configured default applies
    monitor_count: int
    created_at: int


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: str
    team: str
    name: str | None
    scopes: tuple[str, ...]
    prefix: str
    created_at: int
    last_used_at: int | None
    revoked_at: int | None


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the key's team and what it may do."""

    key_id: str
    team_id: int
    scopes: frozenset[str]
    last_used_at: int | None


@dataclass(frozen=True, slots=True)
class Monitor:
    id: str
    team_id: int
    name: str
    host: str
    port: int
    timeout_ms: int
    interval_s: int
    is_enabled: bool
    created_at: int
    updated_at: int
    last_checked_at: int | None
    last_status: Status | None
    last_response_time_ms: int | None
    confirmation_checks: int = CONFIRMATION_CHECKS_DEFAULT
    recovery_checks: int = RECOVERY_CHECKS_DEFAULT
    state: MonitorState = MonitorState.UNKNOWN
    state_changed_at: int | None = None
    open_incident_id: str | None = None
    channel_ids: tuple[str, ...] = ()  # the notification channels it notifies, in order
    remind_every_minutes: int = 0
    in_maintenance: bool = False  # in a maintenance window when it was read
    ip_family: IpFamily = IpFamily.AUTO


@dataclass(frozen=True, slots=True)
class NewMonitor:
    name: str
    host: str
    port: int
    timeout_ms: int = TIMEOUT_MS_DEFAULT
    interval_s: int = INTERVAL_S_DEFAULT
    is_enabled: bool = True
    confirmation_checks: int = CONFIRMATION_CHECKS_DEFAULT
    recovery_checks: int = RECOVERY_CHECKS_DEFAULT
    channel_ids: tuple[str, ...] = ()
    remind_every_minutes: int = 0
    ip_family: IpFamily = IpFamily.AUTO


@dataclass(frozen=True, slots=True)
class MonitorChanges:
    """A partial update: None means "leave as it is"."""

    name: str | None = None
    host: str | None = None
    port: int | None = None
    timeout_ms: int | None = None
    interval_s: int | None = None
    is_enabled: bool | None = None
    confirmation_checks: int | None = None
    recovery_checks: int | None = None
    channel_ids: tuple[str, ...] | None = None
    remind_every_minutes: int | None = None
    ip_family: IpFamily | None = None


@dataclass(frozen=True, slots=True)
class CheckResult:
    id: str
    monitor_id: str
    status: Status
    response_time_ms: int | None
    error: str | None
    checked_at: int
    # Phase timings (SPEC §9): None where the phase did not happen or did not finish.
    dns_time_ms: int | None = None
    connect_time_ms: int | None = None
    resolved_address: str | None = None


@dataclass(frozen=True, slots=True)
class DueCheck:
    """A monitor claimed by a worker: what to probe, and when it was due."""

    monitor_id: str
    host: str
    port: int
    timeout_ms: int
    interval_s: int
    generation: int
    due_at: int
    ip_family: IpFamily = IpFamily.AUTO


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one probe saw. ``response_time_ms`` only when up; ``error`` only when not.
    ``dns_time_ms`` when a name was looked up and answered with an address;
    ``connect_time_ms`` when the handshake finished; ``resolved_address`` is the
    address connected to (or the last one tried)."""

    status: Status
    response_time_ms: int | None = None
    error: str | None = None
    dns_time_ms: int | None = None
    connect_time_ms: int | None = None
    resolved_address: str | None = None


@dataclass(frozen=True, slots=True)
class Observation:
    """An outcome tied to the claim it answers, before it becomes a stored result."""

    check: DueCheck
    outcome: Outcome
    checked_at: int


def random_base62(n: int) -> str:
    """n base62 characters from one read of the system's CSPRNG (not one per character:
    result ids are made thousands of times a second)."""
    bits = int.from_bytes(secrets.token_bytes(n * 6 // 8 + 2), "big")
    return to_base62(bits, n)


def to_base62(value: int, width: int) -> str:
    chars = []
    for _ in range(width):
        value, rem = divmod(value, 62)
        chars.append(BASE62[rem])
    return "".join(reversed(chars))


def new_monitor_id() -> str:
    return MONITOR_ID_PREFIX + random_base62(RANDOM_ID_CHARS)


def new_result_id(checked_at_ms: int) -> str:
    """Time-ordered, so inserts append to the index; random tail, so unguessable."""
    return RESULT_ID_PREFIX + to_base62(checked_at_ms, RESULT_TIME_CHARS) + random_base62(14)


_LABEL = re.compile(r"^[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$")


def host_problem(host: str) -> str | None:
    """Why ``host`` is not a hostname or an IP literal, or None when it is fine.

    Underscores are accepted in labels: container and internal DNS names use them.
    """
    if host != host.strip() or any(c.isspace() for c in host):
        return "must not contain spaces"
    if "://" in host:
        return "must be a hostname or IP address, without a scheme"
    if "/" in host:
        return "must be a hostname or IP address, without a path"
    if ":" in host:
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            return "must be a hostname or IP address, without a port"
        return None
    name = host[:-1] if host.endswith(".") else host
    if not name or len(name) > 253:
        return "must be a valid hostname or IP address"
    labels = name.split(".")
    if not all(_LABEL.match(label) for label in labels):
        return "must be a valid hostname or IP address"
    if labels[-1].isdigit():
        # All-numeric last label: only an IPv4 literal can look like this.
        try:
            ipaddress.IPv4Address(name)
        except ValueError:
            return "must be a valid hostname or IP address"
    return None


@dataclass(frozen=True, slots=True)
class Reschedule:
    """How an update moves a monitor's schedule."""

    next_due_at: int | None  # None: keep the current due time
    new_generation: bool  # in-flight checks of the old target are to be discarded


def reschedule(before: Monitor, changes: MonitorChanges, at: int) -> Reschedule:
    """SPEC §5: re-enabled or re-targeted monitors are checked at once; a new interval
    applies from the last check (at once if that is already past); a new timeout applies
    from the next check, which needs nothing here."""
    enabled = before.is_enabled if changes.is_enabled is None else changes.is_enabled
    retargeted = (
        (changes.host is not None and changes.host != before.host)
        or (changes.port is not None and changes.port != before.port)
        or (changes.ip_family is not None and changes.ip_family != before.ip_family)
    )
    re_enabled = enabled and not before.is_enabled
    new_generation = retargeted or enabled != before.is_enabled
    if enabled and (retargeted or re_enabled):
        return Reschedule(at, new_generation)
    interval = changes.interval_s
    if interval is not None and interval != before.interval_s and before.last_checked_at:
        return Reschedule(max(at, before.last_checked_at + interval * 1000), new_generation)
    return Reschedule(None, new_generation)


@dataclass(frozen=True, slots=True)
class Plan:
    """What a worker does with one claimed monitor: probe it at ``run_at`` (or not at
    all, when ``run_at`` is None) and when the monitor is due next."""

    check: DueCheck
    run_at: int | None
    next_due_at: int


def rfc3339(ms: int) -> str:
    """RFC 3339, UTC, milliseconds, ``Z``: ``2026-02-14T12:00:00.123Z``. From lookup
    tables: a list of 10,000 monitors formats 40,000 of these, and strftime made them
    most of its cost (0.2 µs each here, against 1.6)."""
    days, rest = divmod(ms, 86_400_000)
    minute, rest = divmod(rest, 60_000)
    second, millis = divmod(rest, 1000)
    return _date(days) + _MINUTES[minute] + _SECONDS[second] + _MILLIS[millis]


@functools.lru_cache(maxsize=4096)
def _date(days: int) -> str:
    return time.strftime("%Y-%m-%dT", time.gmtime(days * 86_400))


_MINUTES = [f"{h:02d}:{m:02d}:" for h in range(24) for m in range(60)]  # by minute of day
_SECONDS = [f"{s:02d}." for s in range(60)]
_MILLIS = [f"{ms:03d}Z" for ms in range(1000)]


IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

DEFAULT_TARGET_DENY = "169.254.0.0/16,fe80::/10"  # link-local: where cloud metadata lives
TARGET_NOT_ALLOWED = "Target address not allowed"


def parse_networks(text: str) -> tuple[IPNetwork, ...]:
    """``"10.0.0.0/8, fe80::/10"`` -> networks. Raises ValueError naming a bad entry."""
    networks = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(f"{item!r} is not a CIDR network") from None
    return tuple(networks)


@dataclass(frozen=True, slots=True)
class TargetPolicy:
    """Which addresses may be checked: an address in ``allow`` may; else one in ``deny``
    may not; else it may."""

    deny: tuple[IPNetwork, ...] = ()
    allow: tuple[IPNetwork, ...] = ()

    def permits(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return True  # a name: decided on the addresses it resolves to
        if ip.version == 6 and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped  # ::ffff:169.254.169.254 is 169.254.169.254
        if any(ip in net for net in self.allow):
            return True
        return not any(ip in net for net in self.deny)
