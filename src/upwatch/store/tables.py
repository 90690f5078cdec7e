"""Table definitions. Times are integer milliseconds since the Unix epoch (UTC):
exact to the millisecond and identical on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    text,
)

HOT_FILLFACTOR = 50  # % of a PostgreSQL page filled by inserts (migration 0011)

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

teams = Table(
    "teams",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("max_monitors", Integer, nullable=True),  # NULL: the configured default
    Column("monitor_count", Integer, nullable=False, server_default="0"),
    Column("created_at", BigInteger, nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(32), primary_key=True),
    Column(
        "team_id", Integer, ForeignKey("teams.id", ondelete="CASCADE"), nullable=False, index=True
    ),
    Column("name", String(255), nullable=True),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("prefix", String(32), nullable=False),
    Column("scopes", String(255), nullable=False),  # space-separated
    Column("created_at", BigInteger, nullable=False),
    Column("last_used_at", BigInteger, nullable=True),
    Column("revoked_at", BigInteger, nullable=True),
)

monitors = Table(
    "monitors",
    metadata,
    Column("id", String(32), primary_key=True),
    Column(
        "team_id", Integer, ForeignKey("teams.id", ondelete="CASCADE"), nullable=False, index=True
    ),
    Column("name", String(255), nullable=False),
    Column("host", String(255), nullable=False),
    Column("port", Integer, nullable=False),
    Column("timeout_ms", Integer, nullable=False),
    Column("interval_s", Integer, nullable=False),
    Column("is_enabled", Boolean(create_constraint=False), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("last_checked_at", BigInteger, nullable=True),
    Column("last_status", String(16), nullable=True),
    Column("last_response_time_ms", Integer, nullable=True),
    # The schedule lives here: when the next check is due. Claiming a check moves it on.
    Column("next_due_at", BigInteger, nullable=False),
    # Bumped when what is probed changes (host, port, enabled): results of checks
    # claimed under an older generation are discarded.
    Column("generation", Integer, nullable=False, server_default="0"),
    # Kept in step with check_results, so pagination.total never counts rows.
    Column("result_count", BigInteger, nullable=False, server_default="0"),
    # State and incidents (SPEC §7; upwatch/incidents.py's Tracker, kept in step with the
    # results in the same transaction).
    Column("confirmation_checks", Integer, nullable=False, server_default="2"),
    Column("recovery_checks", Integer, nullable=False, server_default="1"),
    Column("remind_every_minutes", Integer, nullable=False, server_default="0"),
    Column("state", String(16), nullable=False, server_default="unknown"),
    Column("state_changed_at", BigInteger, nullable=True),
    Column("open_incident_id", String(32), nullable=True),
    Column("run_failing", Boolean(create_constraint=False), nullable=True),
    Column("run_length", Integer, nullable=False, server_default="0"),
    Column("run_started_at", BigInteger, nullable=True),
    Column("cause_status", String(16), nullable=True),
    Column("cause_error", String(255), nullable=True),
    # SPEC §9: which addresses a check connects to (domain.IpFamily).
    Column("ip_family", String(8), nullable=False, server_default="auto"),
    Index(
        "ix_monitors_due",
        "next_due_at",
        postgresql_where=text("is_enabled"),
        sqlite_where=text("is_enabled = 1"),
    ),
    # Every check updates its monitor twice (the claim, then the result). Room left on
    # each page lets PostgreSQL keep the new row version there: the result's update
    # then touches no index (a HOT update), and dead versions are pruned in place.
    postgresql_with={"fillfactor": HOT_FILLFACTOR},
)

check_results = Table(
    "check_results",
    metadata,
    Column("id", String(32), primary_key=True),
    Column(
        "monitor_id",
        String(32),
        ForeignKey("monitors.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("checked_at", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),
    Column("response_time_ms", Integer, nullable=True),
    Column("error", String(255), nullable=True),
    # Phase timings (SPEC §9). The address is packed (4 or 16 bytes, fastpath.pack_address):
    # a NULL costs one bit of the row's null bitmap on PostgreSQL and a byte on SQLite.
    Column("dns_time_ms", Integer, nullable=True),
    Column("connect_time_ms", Integer, nullable=True),
    Column("resolved_address", LargeBinary(16), nullable=True),
    CheckConstraint("status IN ('up', 'down', 'timeout')", name="status"),
    # "This monitor's results, newest first" is one index range scan.
    Index("ix_check_results_monitor_newest", "monitor_id", "checked_at", "id"),
    # Retention purges by age.
    Index("ix_check_results_checked_at", "checked_at"),
)

incidents = Table(
    "incidents",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("team_id", Integer, ForeignKey("teams.id", ondelete="CASCADE"), nullable=False),
    Column("monitor_id", String(32), ForeignKey("monitors.id", ondelete="CASCADE"), nullable=False),
    Column("status", String(16), nullable=False),
    Column("started_at", BigInteger, nullable=False),
    Column("confirmed_at", BigInteger, nullable=False),
    Column("resolved_at", BigInteger, nullable=True),
    Column("cause_status", String(16), nullable=False),
    Column("cause_error", String(255), nullable=True),
    Column("end_reason", String(16), nullable=True),
    # When the monitor's channels were last told about it (opened, or reminded).
    Column("notified_at", BigInteger, nullable=True),
    CheckConstraint("status IN ('open', 'resolved')", name="status"),
    # "The team's incidents, newest first" and "this monitor's" are index range scans.
    Index("ix_incidents_team_newest", "team_id", "started_at", "id"),
    Index("ix_incidents_monitor_newest", "monitor_id", "started_at", "id"),
)

notification_channels = Table(
    "notification_channels",
    metadata,
    Column("id", String(32), primary_key=True),
    Column(
        "team_id", Integer, ForeignKey("teams.id", ondelete="CASCADE"), nullable=False, index=True
    ),
    Column("name", String(255), nullable=False),
    Column("type", String(16), nullable=False),
    Column("config", JSON, nullable=False),  # the destination: secret (never returned)
    Column("secret", String(64), nullable=True),  # webhook signing secret (whsec_…)
    Column("is_enabled", Boolean(create_constraint=False), nullable=False),
    Column("disabled_reason", String(255), nullable=True),  # e.g. "HTTP 410 Gone"
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    CheckConstraint("type IN ('webhook', 'slack', 'email', 'apprise')", name="type"),
)

monitor_channels = Table(
    "monitor_channels",
    metadata,
    Column(
        "monitor_id",
        String(32),
        ForeignKey("monitors.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column(
        "channel_id",
        String(32),
        ForeignKey("notification_channels.id", ondelete="CASCADE"),
        primary_key=True,
        index=True,
    ),
    Column("position", Integer, nullable=False),  # the order the API was given them in
)

# The outbox: written in the transaction of the incident change that causes it, sent
# by any serve or worker process (claims move next_attempt_at, as for checks).
deliveries = Table(
    "deliveries",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("team_id", Integer, ForeignKey("teams.id", ondelete="CASCADE"), nullable=False),
    Column(
        "channel_id",
        String(32),
        ForeignKey("notification_channels.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("event", String(32), nullable=False),
    Column("incident_id", String(32), nullable=True),
    Column("monitor_id", String(32), nullable=True),
    Column("payload", JSON, nullable=False),  # what to say, fixed when it was created
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", BigInteger, nullable=False),
    Column("last_attempt_at", BigInteger, nullable=True),
    Column("last_error", String(255), nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("delivered_at", BigInteger, nullable=True),
    CheckConstraint("status IN ('pending', 'delivered', 'failed')", name="status"),
    Index(
        "ix_deliveries_due",
        "next_attempt_at",
        postgresql_where=text("status = 'pending'"),
        sqlite_where=text("status = 'pending'"),
    ),
    Index("ix_deliveries_channel_newest", "channel_id", "created_at", "id"),
)

maintenance_windows = Table(
    "maintenance_windows",
    metadata,
    Column("id", String(32), primary_key=True),
    Column(
        "team_id", Integer, ForeignKey("teams.id", ondelete="CASCADE"), nullable=False, index=True
    ),
    Column("name", String(255), nullable=False),
    Column("monitor_ids", JSON, nullable=False),  # [] means every monitor of the team
    Column("schedule", JSON, nullable=False),  # upwatch/maintenance.py's Once or Recurring
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

# -- statistics (SPEC §9) -----------------------------------------------------------------

# When a monitor was paused (isEnabled false) and resumed: time not monitored.
monitor_pauses = Table(
    "monitor_pauses",
    metadata,
    Column("monitor_id", String(32), ForeignKey("monitors.id", ondelete="CASCADE"), nullable=False),
    Column("started_at", BigInteger, nullable=False),
    Column("ended_at", BigInteger, nullable=True),  # NULL while paused
    Index("ix_monitor_pauses_monitor", "monitor_id", "started_at"),
)

# Per monitor and hour (span 3600) or UTC day (span 86400): check counts and a
# response-time sketch (upwatch/sketch.py). Kept UPWATCH_ROLLUP_RETENTION_DAYS.
rollups = Table(
    "rollups",
    metadata,
    Column(
        "monitor_id",
        String(32),
        ForeignKey("monitors.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("span", Integer, primary_key=True),  # seconds
    Column("start", BigInteger, primary_key=True),  # ms, a multiple of the span
    Column("up", Integer, nullable=False),
    Column("down", Integer, nullable=False),
    Column("timeout", Integer, nullable=False),
    Column("rt_sum", BigInteger, nullable=False),
    Column("rt_min", Integer, nullable=True),
    Column("rt_max", Integer, nullable=True),
    Column("sketch", LargeBinary, nullable=False),
    # The sketch's median (sketch.medians), kept at folding time so that a range of
    # hours (the dashboard's sparklines) reads without the sketches. NULL: no timed check.
    Column("rt_median", Float, nullable=True),
    # Retention purges by age.
    Index("ix_rollups_start", "start"),
    # Each fold rewrites every monitor's current hour and day: as for monitors.
    postgresql_with={"fillfactor": HOT_FILLFACTOR},
)

# Each batch of results also writes one row here, in the same transaction: what the
# rollups have still to count. The compactor folds rows into the rollups and deletes
# them in one transaction, so every result is counted exactly once, however late it
# was written and whatever crashed.
rollup_pending = Table(
    "rollup_pending",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("results", LargeBinary, nullable=False),  # upwatch/store/rollups.py's encoding
)

# One row: taken FOR UPDATE by the compactor, so that one process at a time folds.
rollup_lock = Table(
    "rollup_lock",
    metadata,
    Column("id", Integer, primary_key=True),
)

# -- users and sessions (SPEC §10; upwatch/users.py) --------------------------------------

users = Table(
    "users",
    metadata,
    Column("id", String(32), primary_key=True),
    Column(
        "team_id", Integer, ForeignKey("teams.id", ondelete="CASCADE"), nullable=False, index=True
    ),
    # Stored lower-cased, so that the unique constraint is case-insensitive on both databases.
    Column("email", String(254), nullable=False, unique=True),
    Column("role", String(16), nullable=False),
    Column("password_hash", String(255), nullable=False),  # Argon2id, a PHC string
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("password_changed_at", BigInteger, nullable=False),
    CheckConstraint("role IN ('admin', 'viewer')", name="role"),
)

# The id is the SHA-256 of the token the cookie carries: a copy of this table logs nobody in.
sessions = Table(
    "sessions",
    metadata,
    Column("id", String(64), primary_key=True),
    Column(
        "user_id",
        String(32),
        ForeignKey("users.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("last_seen_at", BigInteger, nullable=False),  # written at most once a minute
    # When it ends unless used again: the idle or the absolute limit, whichever is first.
    Column("expires_at", BigInteger, nullable=False, index=True),
)

# One row per failed (or still running) login attempt; rows older than the throttle's
# window are deleted as new ones come in.
login_failures = Table(
    "login_failures",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("address", String(64), nullable=False),  # users.address_key: an IPv6 /64 as one
    Column("email", String(254), nullable=False),  # as typed, lower-cased: known or not
    Column("at", BigInteger, nullable=False),
    Index("ix_login_failures_address", "address", "at"),
    Index("ix_login_failures_email", "email", "at"),
    Index("ix_login_failures_at", "at"),
)

# First run: while no user exists, each start prints a token; its hash is kept here
# until one of them creates the first admin (then all are deleted) or it expires.
setup_tokens = Table(
    "setup_tokens",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
)

# -- status pages (SPEC §10; upwatch/statuspages.py) ---------------------------------------

status_pages = Table(
    "status_pages",
    metadata,
    Column("id", String(32), primary_key=True),
    Column(
        "team_id", Integer, ForeignKey("teams.id", ondelete="CASCADE"), nullable=False, index=True
    ),
    Column("name", String(255), nullable=False),
    # Unique across the installation: /status/<slug> is one namespace.
    Column("slug", String(64), nullable=False, unique=True),
    Column("monitor_ids", JSON, nullable=False),  # in the order shown
    Column("is_public", Boolean(create_constraint=False), nullable=False),
    Column("show_targets", Boolean(create_constraint=False), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)
