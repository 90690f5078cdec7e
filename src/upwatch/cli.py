"""The ``upwatch`` command: serve | api | worker | migrate | keys … | teams … | users …"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Awaitable, Callable, Coroutine
from typing import Annotated, Any, NoReturn, TypeVar

import typer

from upwatch import logs, security, service
from upwatch.clock import SystemClock
from upwatch.config import LogFormat, Settings, load_settings
from upwatch.domain import SCOPES, ApiKey, Team, rfc3339
from upwatch.errors import ConfigError, TeamNotFound, UpwatchError, UserExists, UserNotFound
from upwatch.store import Store
from upwatch.users import Role, User, email_problem, normalize_email, password_problem

T = TypeVar("T")

EXIT_USAGE = 2  # bad configuration or arguments
EXIT_FAILURE = 1  # the command could not do its work

app = typer.Typer(
    help="upwatch: uptime monitoring for TCP services.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
keys_app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)
teams_app = typer.Typer(help="Create, update and list teams.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(teams_app, name="teams")
users_app = typer.Typer(
    help="Create, list and delete users of the web dashboard.", no_args_is_help=True
)
app.add_typer(users_app, name="users")

HostOpt = Annotated[str | None, typer.Option("--host", help="Bind address [UPWATCH_HOST].")]
PortOpt = Annotated[int | None, typer.Option("--port", help="Bind port [UPWATCH_PORT].")]
DbOpt = Annotated[
    str | None, typer.Option("--database-url", help="Database URL [UPWATCH_DATABASE_URL].")
]
NoMigrateOpt = Annotated[
    bool, typer.Option("--no-migrate", help="Do not apply migrations at start.")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
LogFormatOpt = Annotated[
    str | None,
    typer.Option("--log-format", help="text, or json: one object a line [UPWATCH_LOG_FORMAT]."),
]


def fail(message: str, status: int = EXIT_FAILURE) -> NoReturn:
    if logs.structured():  # a log shipper reads standard error: one JSON line
        logging.getLogger("upwatch").error("%s", message)
        raise typer.Exit(status)
    typer.echo(f"upwatch: {message}", err=True)
    raise typer.Exit(status)


def settings_from(**overrides: Any) -> Settings:
    try:
        settings = load_settings(overrides)
    except ConfigError as exc:
        fail(str(exc), EXIT_USAGE)
    logs.configure(
        level=settings.log_level.number, json_lines=settings.log_format is LogFormat.JSON
    )
    return settings


def run_async(work: Callable[[], Coroutine[Any, Any, T]]) -> T:
    try:
        return service.run(work)
    except UpwatchError as exc:
        fail(str(exc))


def with_store(settings: Settings, action: Callable[[Store], Awaitable[T]]) -> T:
    """Run ``action`` against a migrated database, then close it."""

    async def work() -> T:
        store = await service.open_store(settings, migrate=True)
        try:
            return await action(store)
        finally:
            await store.close()

    return run_async(work)


# -- servers ---------------------------------------------------------------------------


def _serve(
    settings: Settings, *, api: bool, checker: bool, migrate: bool, supervised: bool = False
) -> None:
    status = run_async(
        lambda: service.serve(
            settings, api=api, checker=checker, migrate=migrate, supervised=supervised
        )
    )
    raise typer.Exit(status)


@app.command()
def serve(
    host: HostOpt = None,
    port: PortOpt = None,
    database_url: DbOpt = None,
    no_migrate: NoMigrateOpt = False,
    log_format: LogFormatOpt = None,
    checker_processes: Annotated[
        int | None,
        typer.Option(
            "--checker-processes",
            help="Run the checks in this many processes (default 1) [UPWATCH_CHECKER_PROCESSES].",
        ),
    ] = None,
) -> None:
    """Run the API and the checker with one command (SQLite needs nothing else)."""
    settings = settings_from(
        host=host,
        port=port,
        database_url=database_url,
        log_format=log_format,
        checker_processes=checker_processes,
    )
    _serve(settings, api=True, checker=True, migrate=not no_migrate)


@app.command()
def api(
    host: HostOpt = None,
    port: PortOpt = None,
    database_url: DbOpt = None,
    no_migrate: NoMigrateOpt = False,
    log_format: LogFormatOpt = None,
) -> None:
    """Run the API only (scale-out: any number, sharing one PostgreSQL)."""
    settings = settings_from(host=host, port=port, database_url=database_url, log_format=log_format)
    _serve(settings, api=True, checker=False, migrate=not no_migrate)


@app.command()
def worker(
    database_url: DbOpt = None,
    no_migrate: NoMigrateOpt = False,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            "--metrics-port", help="Serve this worker's metrics here [UPWATCH_METRICS_PORT]."
        ),
    ] = None,
    metrics_host: Annotated[
        str | None,
        typer.Option("--metrics-host", help="Their bind address [UPWATCH_METRICS_HOST]."),
    ] = None,
    log_format: LogFormatOpt = None,
    supervised: Annotated[
        bool,
        typer.Option("--supervised", hidden=True, help="A checker process of `serve`."),
    ] = False,
) -> None:
    """Run the checker only (scale-out: any number, sharing one PostgreSQL)."""
    settings = settings_from(
        database_url=database_url,
        metrics_port=metrics_port,
        metrics_host=metrics_host,
        log_format=log_format,
    )
    _serve(settings, api=False, checker=True, migrate=not no_migrate, supervised=supervised)


@app.command()
def migrate(database_url: DbOpt = None, log_format: LogFormatOpt = None) -> None:
    """Apply schema migrations."""
    settings = settings_from(database_url=database_url, log_format=log_format)

    async def nothing(_: Store) -> None:
        return None

    with_store(settings, nothing)
    typer.echo("database is up to date", err=True)


# -- teams -----------------------------------------------------------------------------

MaxMonitorsOpt = Annotated[
    int | None,
    typer.Option(
        "--max-monitors", min=0, help="Monitor limit (default: UPWATCH_MAX_MONITORS_PER_TEAM)."
    ),
]


def _check_name(name: str, what: str) -> str:
    if not name.strip() or len(name) > 255:
        fail(f"{what} must be 1 to 255 characters and not blank", EXIT_USAGE)
    return name


@teams_app.command("create")
def teams_create(
    name: str, max_monitors: MaxMonitorsOpt = None, database_url: DbOpt = None
) -> None:
    """Create a team."""
    settings = settings_from(database_url=database_url)
    _check_name(name, "team name")
    team = with_store(
        settings, lambda s: s.teams.create(name, max_monitors, at=SystemClock().now_ms())
    )
    typer.echo(f"created team {team.name}", err=True)


@teams_app.command("update")
def teams_update(
    name: str,
    max_monitors: Annotated[int, typer.Option("--max-monitors", min=0, help="Monitor limit.")],
    database_url: DbOpt = None,
) -> None:
    """Change a team's monitor limit (at once, also on running servers)."""
    settings = settings_from(database_url=database_url)
    team = with_store(settings, lambda s: s.teams.update(name, max_monitors))
    typer.echo(f"team {team.name}: limit {team.max_monitors} monitors", err=True)


@teams_app.command("list")
def teams_list(as_json: JsonOpt = False, database_url: DbOpt = None) -> None:
    """List teams with their monitor limit and count."""
    settings = settings_from(database_url=database_url)

    async def fetch(store: Store) -> list[tuple[Team, int]]:
        return [(t, store.teams.effective_limit(t)) for t in await store.teams.all()]

    teams = with_store(settings, fetch)
    if as_json:
        typer.echo(
            json.dumps(
                [
                    {
                        "name": t.name,
                        "maxMonitors": limit,
                        "maxMonitorsIsDefault": t.max_monitors is None,
                        "monitorCount": t.monitor_count,
                        "createdAt": rfc3339(t.created_at),
                    }
                    for t, limit in teams
                ],
                indent=2,
            )
        )
        return
    rows = [
        [
            t.name,
            f"{limit}" + (" (default)" if t.max_monitors is None else ""),
            str(t.monitor_count),
        ]
        for t, limit in teams
    ]
    typer.echo(table(["TEAM", "LIMIT", "MONITORS"], rows))


# -- keys ------------------------------------------------------------------------------


@keys_app.command("create")
def keys_create(
    team: Annotated[str, typer.Option("--team", help="The key's team (created if new).")],
    scope: Annotated[
        list[str],
        typer.Option("--scope", help=f"Repeat for each scope: {', '.join(SCOPES)}."),
    ],
    name: Annotated[str | None, typer.Option("--name", help="A label for listings.")] = None,
    database_url: DbOpt = None,
) -> None:
    """Create an API key and print it, alone, on standard output. It is shown once."""
    settings = settings_from(database_url=database_url)
    _check_name(team, "team name")
    if name is not None:
        _check_name(name, "key name")
    unknown = [s for s in scope if s not in SCOPES]
    if unknown:
        fail(f"unknown scope {unknown[0]!r}: use {' or '.join(SCOPES)}", EXIT_USAGE)
    scopes = [s for s in SCOPES if s in scope]
    _, secret = with_store(
        settings,
        lambda s: s.keys.create(team=team, name=name, scopes=scopes, at=SystemClock().now_ms()),
    )
    typer.echo(secret)


@keys_app.command("list")
def keys_list(
    team: Annotated[str | None, typer.Option("--team", help="Only this team's keys.")] = None,
    as_json: JsonOpt = False,
    database_url: DbOpt = None,
) -> None:
    """List API keys (never their secrets)."""
    settings = settings_from(database_url=database_url)
    keys = with_store(settings, lambda s: s.keys.all(team))
    if as_json:
        typer.echo(json.dumps([key_json(k) for k in keys], indent=2))
        return
    rows = [
        [
            k.id,
            k.team,
            k.name or "",
            ",".join(k.scopes),
            k.prefix + "…",
            rfc3339(k.created_at),
            _maybe_time(k.last_used_at),
            _maybe_time(k.revoked_at),
        ]
        for k in keys
    ]
    headers = ["ID", "TEAM", "NAME", "SCOPES", "PREFIX", "CREATED", "LAST USED", "REVOKED"]
    typer.echo(table(headers, rows))


@keys_app.command("revoke")
def keys_revoke(key_id: str, database_url: DbOpt = None) -> None:
    """Revoke an API key (at once, also on running servers)."""
    settings = settings_from(database_url=database_url)
    key = with_store(settings, lambda s: s.keys.revoke(key_id, at=SystemClock().now_ms()))
    typer.echo(f"revoked {key.id} ({key.team})", err=True)


def key_json(k: ApiKey) -> dict[str, Any]:
    return {
        "id": k.id,
        "team": k.team,
        "name": k.name,
        "scopes": list(k.scopes),
        "prefix": k.prefix,
        "createdAt": rfc3339(k.created_at),
        "lastUsedAt": None if k.last_used_at is None else rfc3339(k.last_used_at),
        "revokedAt": None if k.revoked_at is None else rfc3339(k.revoked_at),
    }


# -- users -----------------------------------------------------------------------------

PasswordStdinOpt = Annotated[
    bool,
    typer.Option(
        "--password-stdin",
        help="Read the password from the first line of standard input instead of asking.",
    ),
]


def _check_email(email: str) -> str:
    normal = normalize_email(email)
    problem = email_problem(normal)
    if problem is not None:
        fail(f"email {problem}", EXIT_USAGE)
    return normal


def _read_password(email: str, *, from_stdin: bool) -> str:
    """The new password, checked against the policy (upwatch/users.py). Never echoed."""
    if from_stdin:
        line = sys.stdin.readline()
        if not line:
            fail("no password on standard input (--password-stdin)", EXIT_USAGE)
        password = line.removesuffix("\n").removesuffix("\r")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    problem = password_problem(password, email=email)
    if problem is not None:
        fail(f"password {problem}", EXIT_USAGE)
    return password


@users_app.command("create")
def users_create(
    email: str,
    team: Annotated[str, typer.Option("--team", help="The user's team (must exist).")],
    role: Annotated[
        str, typer.Option("--role", help="admin (changes things) or viewer (only looks).")
    ] = Role.ADMIN.value,
    password_stdin: PasswordStdinOpt = False,
    database_url: DbOpt = None,
) -> None:
    """Create a user of the web dashboard. Asks for the password twice."""
    settings = settings_from(database_url=database_url)
    email = _check_email(email)
    if role not in {r.value for r in Role}:
        fail(f"unknown role {role!r}: use admin or viewer", EXIT_USAGE)

    async def check(store: Store) -> None:  # before anyone types a password for nothing
        if team not in {t.name for t in await store.teams.all()}:
            raise TeamNotFound(f"no team named {team!r} (upwatch teams create {team})")
        if await store.users.get_by_email(email) is not None:
            raise UserExists(f"a user with email {email!r} already exists")

    with_store(settings, check)
    password_hash = security.hash_password(_read_password(email, from_stdin=password_stdin))
    created = with_store(
        settings,
        lambda s: s.users.create(
            team=team,
            email=email,
            role=Role(role),
            password_hash=password_hash,
            at=SystemClock().now_ms(),
        ),
    )
    typer.echo(f"created user {created.email} ({created.role}, team {created.team})", err=True)


@users_app.command("list")
def users_list(
    team: Annotated[str | None, typer.Option("--team", help="Only this team's users.")] = None,
    as_json: JsonOpt = False,
    database_url: DbOpt = None,
) -> None:
    """List users (never their password hashes)."""
    settings = settings_from(database_url=database_url)
    found = with_store(settings, lambda s: s.users.all(team))
    if as_json:
        typer.echo(json.dumps([user_json(u) for u in found], indent=2))
        return
    rows = [
        [u.email, u.team, u.role.value, rfc3339(u.created_at), rfc3339(u.password_changed_at)]
        for u in found
    ]
    typer.echo(table(["EMAIL", "TEAM", "ROLE", "CREATED", "PASSWORD CHANGED"], rows))


@users_app.command("set-password")
def users_set_password(
    email: str, password_stdin: PasswordStdinOpt = False, database_url: DbOpt = None
) -> None:
    """Change a user's password; ends every session of theirs. Asks for it twice."""
    settings = settings_from(database_url=database_url)
    email = normalize_email(email)

    async def check(store: Store) -> None:
        if await store.users.get_by_email(email) is None:
            raise UserNotFound(f"no user with email {email!r}")

    with_store(settings, check)
    password_hash = security.hash_password(_read_password(email, from_stdin=password_stdin))
    changed = with_store(
        settings,
        lambda s: s.users.set_password(email, password_hash, at=SystemClock().now_ms()),
    )
    typer.echo(f"password changed for {changed.email}; their sessions are ended", err=True)


@users_app.command("delete")
def users_delete(email: str, database_url: DbOpt = None) -> None:
    """Delete a user; ends every session of theirs."""
    settings = settings_from(database_url=database_url)
    deleted = with_store(settings, lambda s: s.users.delete(normalize_email(email)))
    typer.echo(f"deleted user {deleted.email} ({deleted.team})", err=True)


def user_json(u: User) -> dict[str, Any]:
    return {
        "id": u.id,
        "email": u.email,
        "team": u.team,
        "role": u.role.value,
        "createdAt": rfc3339(u.created_at),
        "updatedAt": rfc3339(u.updated_at),
        "passwordChangedAt": rfc3339(u.password_changed_at),
    }


def _maybe_time(ms: int | None) -> str:
    return "-" if ms is None else rfc3339(ms)


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(c)) for c in col) for col in zip(headers, *rows, strict=False)]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
        for r in [headers, *rows]
    ]
    return "\n".join(lines)


def main() -> None:
    app()
