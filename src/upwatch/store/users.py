"""Users, their sessions, the login throttle's failures and first-run setup tokens
(SPEC §10). The rules are upwatch/users.py's; hashing is upwatch/security.py's.

    store.users     create, list, find, change the password of, delete users
    store.sessions  start a session (the cookie's token is returned once), resolve, end
    store.logins    a whole login attempt, throttled; the failures it counts
    store.setup     one-time tokens that create the first admin

Tokens are stored as SHA-256 hashes, passwords as Argon2id hashes; neither a token nor a
hash is in anything these return but ``Sessions.start``'s and ``Setup.issue``'s token.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging

from sqlalchemy import BigInteger, bindparam, delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.elements import ClauseElement

from upwatch import security
from upwatch import users as rules
from upwatch.errors import DatabaseUnavailable, TeamNotFound, UserExists, UserNotFound
from upwatch.store import teams as team_rows
from upwatch.store.connector import Connector, Reads, Row, Tx
from upwatch.store.tables import login_failures, sessions, setup_tokens, teams, users
from upwatch.users import (
    Failures,
    LoginResult,
    RecentFailures,
    Role,
    Session,
    User,
)

log = logging.getLogger(__name__)

TOUCH_WAIT_S = 0.1  # how long a page waits for its session's last-seen write (store/keys.py)
TOKEN_MAX_CHARS = 256  # a longer cookie is nobody's: not even hashed

# -- statements ---------------------------------------------------------------------------

_USER_COLUMNS = (
    users.c.id,
    users.c.team_id,
    teams.c.name.label("team"),
    users.c.email,
    users.c.role,
    users.c.created_at,
    users.c.updated_at,
    users.c.password_changed_at,
)
_USERS = select(*_USER_COLUMNS).join(teams, teams.c.id == users.c.team_id)
_ALL = _USERS.order_by(users.c.email)
_OF_TEAM = _USERS.where(teams.c.name == bindparam("b_team")).order_by(users.c.email)
_BY_EMAIL = _USERS.where(users.c.email == bindparam("b_email"))
_BY_ID = _USERS.where(users.c.id == bindparam("b_id"))
_CREDENTIALS = (
    select(*_USER_COLUMNS, users.c.password_hash)
    .join(teams, teams.c.id == users.c.team_id)
    .where(users.c.email == bindparam("b_email"))
)
_COUNT = select(func.count()).select_from(users)
_TEAM_ID = select(teams.c.id).where(teams.c.name == bindparam("b_team"))


def _insert_unless_taken(dialect: str) -> postgresql.Insert | sqlite.Insert:
    """INSERT ... ON CONFLICT (email) DO NOTHING: a duplicate changes no row."""
    insert_ = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return (
        insert_(users)
        .values(
            id=bindparam("b_id"),
            team_id=bindparam("b_team_id"),
            email=bindparam("b_email"),
            role=bindparam("b_role"),
            password_hash=bindparam("b_hash"),
            created_at=bindparam("b_at"),
            updated_at=bindparam("b_at"),
            password_changed_at=bindparam("b_at"),
        )
        .on_conflict_do_nothing(index_elements=["email"])
    )


_INSERT_USER: dict[str, ClauseElement] = {
    d: _insert_unless_taken(d) for d in ("sqlite", "postgresql")
}
_SET_PASSWORD = (
    update(users)
    .where(users.c.email == bindparam("b_email"))
    .values(
        password_hash=bindparam("b_hash"),
        updated_at=bindparam("b_at"),
        password_changed_at=bindparam("b_at"),
    )
)
# Only if the password was not changed meanwhile: a rehash must not undo a new password.
_REHASH = (
    update(users)
    .where(users.c.id == bindparam("b_id"), users.c.password_hash == bindparam("b_old"))
    .values(password_hash=bindparam("b_new"))
)
_DELETE_USER = delete(users).where(users.c.id == bindparam("b_id"))

_INSERT_SESSION = insert(sessions)
_PURGE_SESSIONS = delete(sessions).where(sessions.c.expires_at <= bindparam("b_at"))
_RESOLVE = (
    select(
        *_USER_COLUMNS,
        sessions.c.id.label("session_id"),
        sessions.c.csrf_token,
        sessions.c.created_at.label("session_created_at"),
        sessions.c.last_seen_at,
        sessions.c.expires_at,
    )
    .select_from(
        sessions.join(users, users.c.id == sessions.c.user_id).join(
            teams, teams.c.id == users.c.team_id
        )
    )
    .where(sessions.c.id == bindparam("b_id"), sessions.c.expires_at > bindparam("b_at"))
)
_TOUCH_SESSION = (
    update(sessions)
    .where(sessions.c.id == bindparam("b_id"), sessions.c.last_seen_at <= bindparam("b_stale"))
    .values(last_seen_at=bindparam("b_at"), expires_at=bindparam("b_expires"))
)
_END_SESSION = delete(sessions).where(sessions.c.id == bindparam("b_id"))
_END_SESSIONS_OF = delete(sessions).where(sessions.c.user_id == bindparam("b_user"))
_SESSIONS_OF = (
    select(sessions)
    .where(sessions.c.user_id == bindparam("b_user"), sessions.c.expires_at > bindparam("b_at"))
    .order_by(sessions.c.created_at)
)

_FAILURES_OF_ADDRESS = select(func.count(), func.max(login_failures.c.at)).where(
    login_failures.c.address == bindparam("b_key"), login_failures.c.at > bindparam("b_since")
)
_FAILURES_OF_EMAIL = select(func.count(), func.max(login_failures.c.at)).where(
    login_failures.c.email == bindparam("b_key"), login_failures.c.at > bindparam("b_since")
)
_RECORD_FAILURE = (
    insert(login_failures)
    .values(address=bindparam("b_address"), email=bindparam("b_email"), at=bindparam("b_at"))
    .returning(login_failures.c.id)
)
_FORGET_OLD_FAILURES = delete(login_failures).where(login_failures.c.at <= bindparam("b_since"))
_FORGET_FAILURE = delete(login_failures).where(login_failures.c.id == bindparam("b_id"))
# PostgreSQL: attempts on one address or one account take turns between counting and
# recording, so that a burst of parallel attempts gets one try, not one each. (SQLite's
# writers take turns anyway.)
_PG_LOCK = select(func.pg_advisory_xact_lock(bindparam("b_key", type_=BigInteger)))

_INSERT_SETUP_TOKEN = insert(setup_tokens)
_PURGE_SETUP_TOKENS = delete(setup_tokens).where(setup_tokens.c.expires_at <= bindparam("b_at"))
# Taking every live token at once: of two consumes, PostgreSQL makes the second wait for
# the first's row locks and then finds nothing left.
_TAKE_SETUP_TOKENS = (
    delete(setup_tokens)
    .where(setup_tokens.c.expires_at > bindparam("b_at"))
    .returning(setup_tokens.c.token_hash)
)


# -- rows ---------------------------------------------------------------------------------


def user(row: Row) -> User:
    return User(
        id=row.id,
        team_id=row.team_id,
        team=row.team,
        email=row.email,
        role=Role(row.role),
        created_at=row.created_at,
        updated_at=row.updated_at,
        password_changed_at=row.password_changed_at,
    )


def _session(row: Row) -> Session:
    return Session(
        id=row.session_id,
        user_id=row.id,
        csrf_token=row.csrf_token,
        created_at=row.session_created_at,
        last_seen_at=row.last_seen_at,
        expires_at=row.expires_at,
    )


async def _insert_user(
    tx: Tx, *, team_id: int, team: str, email: str, role: Role, password_hash: str, at: int
) -> User:
    created = User(
        id=rules.new_user_id(),
        team_id=team_id,
        team=team,
        email=email,
        role=role,
        created_at=at,
        updated_at=at,
        password_changed_at=at,
    )
    inserted = await tx.execute(
        _INSERT_USER[tx.dialect],
        {
            "b_id": created.id,
            "b_team_id": team_id,
            "b_email": email,
            "b_role": role.value,
            "b_hash": password_hash,
            "b_at": at,
        },
    )
    if not inserted:
        raise UserExists(f"a user with email {email!r} already exists")
    return created


def _account_key(email: str) -> str:
    """What failures are counted against for an account: the address as typed (known or
    not), normalised and cut to fit the column."""
    return rules.normalize_email(email)[: rules.EMAIL_MAX_CHARS]


def _lock_key(kind: str, value: str) -> int:
    """A signed 64-bit advisory lock id for one address or one account."""
    digest = hashlib.sha256(f"upwatch-login:{kind}:{value}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


async def _recent_failures(reads: Reads, address: str, email: str, at: int) -> RecentFailures:
    since = at - rules.FAILURE_WINDOW_MS
    by_address = await reads.first(_FAILURES_OF_ADDRESS, {"b_key": address, "b_since": since})
    by_email = await reads.first(_FAILURES_OF_EMAIL, {"b_key": email, "b_since": since})
    assert by_address is not None
    assert by_email is not None
    return RecentFailures(
        address=Failures(int(by_address[0]), by_address[1]),
        account=Failures(int(by_email[0]), by_email[1]),
    )


async def _record_failure(tx: Tx, address: str, email: str, at: int) -> int:
    """Record a failure and forget those past the window (any address's: the table stays
    as small as the last quarter hour's failures)."""
    failure_id = await tx.scalar(
        _RECORD_FAILURE, {"b_address": address, "b_email": email, "b_at": at}
    )
    await tx.execute(_FORGET_OLD_FAILURES, {"b_since": at - rules.FAILURE_WINDOW_MS})
    return int(failure_id)


# -- aggregates ---------------------------------------------------------------------------


class Users:
    def __init__(self, db: Connector) -> None:
        self._db = db

    async def create(
        self, *, team: str, email: str, role: Role, password_hash: str, at: int
    ) -> User:
        """A new user of an existing team. ``email`` is stored lower-cased; validating it
        and the password (users.email_problem, users.password_problem) is the caller's.
        Raises TeamNotFound, UserExists."""
        email = rules.normalize_email(email)
        async with self._db.write() as tx:
            team_id = await tx.scalar(_TEAM_ID, {"b_team": team})
            if team_id is None:
                raise TeamNotFound(f"no team named {team!r}")
            return await _insert_user(
                tx,
                team_id=int(team_id),
                team=team,
                email=email,
                role=role,
                password_hash=password_hash,
                at=at,
            )

    async def all(self, team: str | None = None) -> list[User]:
        """Every user, or a team's, by email address."""
        async with self._db.read() as reads:
            if team is None:
                rows = await reads.rows(_ALL)
            else:
                rows = await reads.rows(_OF_TEAM, {"b_team": team})
        return [user(r) for r in rows]

    async def get(self, user_id: str) -> User | None:
        async with self._db.read() as reads:
            row = await reads.first(_BY_ID, {"b_id": user_id})
        return None if row is None else user(row)

    async def get_by_email(self, email: str) -> User | None:
        async with self._db.read() as reads:
            row = await reads.first(_BY_EMAIL, {"b_email": rules.normalize_email(email)})
        return None if row is None else user(row)

    async def count(self) -> int:
        """How many users exist: none means first run (the /setup page)."""
        async with self._db.read() as reads:
            return int(await reads.scalar(_COUNT))

    async def set_password(self, email: str, password_hash: str, *, at: int) -> User:
        """Store a new password hash and end every session of the user, in one
        transaction. Raises UserNotFound."""
        email = rules.normalize_email(email)
        async with self._db.write() as tx:
            changed = await tx.execute(
                _SET_PASSWORD, {"b_email": email, "b_hash": password_hash, "b_at": at}
            )
            row = await tx.first(_BY_EMAIL, {"b_email": email}) if changed else None
            if row is None:
                raise UserNotFound(f"no user with email {email!r}")
            await tx.execute(_END_SESSIONS_OF, {"b_user": row.id})
        return user(row)

    async def delete(self, email: str) -> User:
        """Delete a user and end their sessions. Raises UserNotFound."""
        email = rules.normalize_email(email)
        async with self._db.write() as tx:
            row = await tx.first(_BY_EMAIL, {"b_email": email})
            if row is None:
                raise UserNotFound(f"no user with email {email!r}")
            # The foreign key cascades too; ending them here does not depend on it.
            await tx.execute(_END_SESSIONS_OF, {"b_user": row.id})
            await tx.execute(_DELETE_USER, {"b_id": row.id})
        return user(row)

    async def credentials(self, email: str) -> tuple[User, str] | None:
        """The user and their password hash, for checking a password; None if no user
        has this address. (``Logins.attempt`` does the whole login.)"""
        async with self._db.read() as reads:
            row = await reads.first(_CREDENTIALS, {"b_email": rules.normalize_email(email)})
        return None if row is None else (user(row), row.password_hash)

    async def rehash(self, user_id: str, old_hash: str, new_hash: str) -> bool:
        """Replace a hash made under older Argon2 parameters (same password: sessions
        stay). Does nothing if the password changed since ``old_hash`` was read."""
        async with self._db.write() as tx:
            changed = await tx.execute(
                _REHASH, {"b_id": user_id, "b_old": old_hash, "b_new": new_hash}
            )
        return changed > 0


class Sessions:
    def __init__(self, db: Connector) -> None:
        self._db = db
        self._touching: dict[str, asyncio.Task[None]] = {}  # session id -> last-seen write

    async def close(self) -> None:
        for task in list(self._touching.values()):
            task.cancel()
        await asyncio.gather(*self._touching.values(), return_exceptions=True)

    async def start(self, user_: User, *, at: int) -> tuple[str, Session]:
        """A new session for ``user_``: the token for the cookie (returned here only; the
        database keeps its hash) and the session, with its CSRF token and expiry. Also
        deletes every expired session (logins are rare; this keeps the table small)."""
        token = security.new_session_token()
        started = Session(
            id=security.hash_token(token),
            user_id=user_.id,
            csrf_token=security.new_csrf_token(),
            created_at=at,
            last_seen_at=at,
            expires_at=rules.session_expiry(at, at),
        )
        async with self._db.write() as tx:
            await tx.execute(_PURGE_SESSIONS, {"b_at": at})
            await tx.execute(
                _INSERT_SESSION,
                {
                    "id": started.id,
                    "user_id": started.user_id,
                    "csrf_token": started.csrf_token,
                    "created_at": at,
                    "last_seen_at": at,
                    "expires_at": started.expires_at,
                },
            )
        return token, started

    async def resolve(self, token: str, *, at: int) -> tuple[User, Session] | None:
        """The user and session a cookie's token stands for, or None (unknown, ended or
        expired). Read every time, so a logout, a password change or a deletion takes
        effect at once, on every process. Marks the session used at most once a minute
        (users.SESSION_TOUCH_MS), which moves its idle expiry on."""
        if not token or len(token) > TOKEN_MAX_CHARS:
            return None
        async with self._db.read() as reads:
            row = await reads.first(_RESOLVE, {"b_id": security.hash_token(token), "b_at": at})
        if row is None:
            return None
        found = _session(row)
        if rules.session_needs_touch(found.last_seen_at, at):
            expires = rules.session_expiry(found.created_at, at)
            await self._touch(found.id, at, expires)
            found = Session(
                found.id, found.user_id, found.csrf_token, found.created_at, at, expires
            )
        return user(row), found

    async def of_user(self, user_id: str, *, at: int) -> list[Session]:
        """A user's live sessions, oldest first (a "where you are logged in" page)."""
        async with self._db.read() as reads:
            rows = await reads.rows(_SESSIONS_OF, {"b_user": user_id, "b_at": at})
        return [
            Session(r.id, r.user_id, r.csrf_token, r.created_at, r.last_seen_at, r.expires_at)
            for r in rows
        ]

    async def end(self, token: str) -> bool:
        """Log out: True if there was such a session."""
        if not token or len(token) > TOKEN_MAX_CHARS:
            return False
        async with self._db.write() as tx:
            return await tx.execute(_END_SESSION, {"b_id": security.hash_token(token)}) > 0

    async def end_all(self, user_id: str) -> int:
        """End every session of a user ("log out everywhere"); how many there were."""
        async with self._db.write() as tx:
            return await tx.execute(_END_SESSIONS_OF, {"b_user": user_id})

    async def _touch(self, session_id: str, at: int, expires: int) -> None:
        """As store/keys.py's last use: the page waits briefly, never for a busy database."""
        task = self._touching.get(session_id)
        if task is None:
            task = asyncio.create_task(self._write_last_seen(session_id, at, expires))
            self._touching[session_id] = task
            task.add_done_callback(lambda _: self._touching.pop(session_id, None))
        await asyncio.wait([task], timeout=TOUCH_WAIT_S)

    async def _write_last_seen(self, session_id: str, at: int, expires: int) -> None:
        try:
            async with self._db.write() as tx:
                await tx.execute(
                    _TOUCH_SESSION,
                    {
                        "b_id": session_id,
                        "b_at": at,
                        "b_expires": expires,
                        "b_stale": at - rules.SESSION_TOUCH_MS,
                    },
                )
        except DatabaseUnavailable as exc:
            log.warning("could not record the use of a session: %s", exc)


class Logins:
    def __init__(self, db: Connector) -> None:
        self._db = db

    async def attempt(
        self, *, address: str | None, email: str, password: str, at: int
    ) -> LoginResult:
        """One login attempt from the form, throttled (users.login_delay_ms).

        While a wait is on, the attempt is refused without a look at the password and
        is not counted. Otherwise it is counted as a failure *before* the password is
        checked (in the transaction that counted the earlier ones), so that parallel
        attempts cannot all slip through one gap; a right password takes it back. The
        password is checked off the event loop, against a made-up hash when no user has
        this address, so that the answer takes as long. A hash made under older Argon2
        parameters is replaced. Starting the session is the caller's (``Sessions.start``).
        """
        key = rules.address_key(address)
        email = _account_key(email)
        async with self._db.write() as tx:
            if tx.dialect == "postgresql":
                for lock in sorted({_lock_key("address", key), _lock_key("email", email)}):
                    await tx.execute(_PG_LOCK, {"b_key": lock})
            recent = await _recent_failures(tx, key, email, at)
            wait = rules.login_delay_ms(recent, at)
            if wait:
                return LoginResult(user=None, throttled=True, retry_after_ms=wait)
            failure_id = await _record_failure(tx, key, email, at)
            found = await tx.first(_CREDENTIALS, {"b_email": email})
        stored_hash = None if found is None else str(found.password_hash)
        verified = await security.verify_password_async(stored_hash, password)
        if found is None or stored_hash is None or not verified:
            counted = RecentFailures(
                address=Failures(recent.address.count + 1, at),
                account=Failures(recent.account.count + 1, at),
            )
            return LoginResult(
                user=None, throttled=False, retry_after_ms=rules.login_delay_ms(counted, at)
            )
        async with self._db.write() as tx:
            await tx.execute(_FORGET_FAILURE, {"b_id": failure_id})
        if security.password_needs_rehash(stored_hash):
            new_hash = await security.hash_password_async(password)
            async with self._db.write() as tx:
                await tx.execute(
                    _REHASH, {"b_id": found.id, "b_old": stored_hash, "b_new": new_hash}
                )
        return LoginResult(user=user(found), throttled=False, retry_after_ms=0)

    async def record(self, *, address: str | None, email: str, at: int) -> None:
        """Count one failed login of this address and account (``attempt`` does this
        itself; for a login checked elsewhere)."""
        async with self._db.write() as tx:
            await _record_failure(tx, rules.address_key(address), _account_key(email), at)

    async def recent(self, *, address: str | None, email: str, at: int) -> RecentFailures:
        """The failures the throttle counts now for this address and account."""
        async with self._db.read() as reads:
            return await _recent_failures(
                reads, rules.address_key(address), _account_key(email), at
            )


class _Refused(Exception):
    """Rolls a setup transaction back: the tokens it took are put back."""


class Setup:
    def __init__(self, db: Connector) -> None:
        self._db = db

    async def issue(self, *, at: int) -> str | None:
        """A new one-time setup token (to print in the log), or None once a user exists.
        Each call adds one, so that every process started while nobody has set up prints
        a token that works; each works for users.SETUP_TOKEN_TTL_MS, and all of them
        stop working once one has created the first admin."""
        token = security.new_setup_token()
        async with self._db.write() as tx:
            if await tx.scalar(_COUNT):
                return None
            await tx.execute(_PURGE_SETUP_TOKENS, {"b_at": at})
            await tx.execute(
                _INSERT_SETUP_TOKEN,
                {
                    "token_hash": security.hash_token(token),
                    "created_at": at,
                    "expires_at": at + rules.SETUP_TOKEN_TTL_MS,
                },
            )
        return token

    async def consume(
        self, token: str, *, email: str, password_hash: str, team: str, at: int
    ) -> User | None:
        """Create the first admin (in ``team``, created if need be) with a setup token,
        in one transaction that also deletes every setup token. None, and nothing
        changed, when the token is unknown, used or expired, or a user exists already:
        of two consumes at once, exactly one creates a user."""
        email = rules.normalize_email(email)
        if not token or len(token) > TOKEN_MAX_CHARS:
            return None
        try:
            async with self._db.write() as tx:
                taken = await tx.rows(_TAKE_SETUP_TOKENS, {"b_at": at})
                if security.hash_token(token) not in {r.token_hash for r in taken}:
                    raise _Refused
                if await tx.scalar(_COUNT):
                    raise _Refused
                team_id = await team_rows.ensure(tx, team, at=at)
                return await _insert_user(
                    tx,
                    team_id=team_id,
                    team=team,
                    email=email,
                    role=Role.ADMIN,
                    password_hash=password_hash,
                    at=at,
                )
        except _Refused:
            return None
