"""store.users, store.sessions, store.logins and store.setup, on SQLite and PostgreSQL."""

import asyncio

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select

from upwatch import security
from upwatch.errors import TeamNotFound, UserExists, UserNotFound
from upwatch.store import Store
from upwatch.store.tables import login_failures, sessions, setup_tokens, users
from upwatch.users import (
    ACCOUNT_FREE_FAILURES,
    FAILURE_WINDOW_MS,
    SESSION_IDLE_MS,
    SESSION_MAX_MS,
    SESSION_TOUCH_MS,
    SETUP_TOKEN_TTL_MS,
    Role,
    User,
)

T0 = 1_771_070_400_000
DAY_MS = 86_400_000
PASSWORD = "correct horse battery"
HASH = security.hash_password(PASSWORD)
ADDRESS = "203.0.113.7"


async def a_user(
    store: Store, email: str = "ann@example.com", role: Role = Role.ADMIN, team: str = "acme"
) -> User:
    if team not in {t.name for t in await store.teams.all()}:
        await store.teams.create(team, None, at=T0)
    return await store.users.create(team=team, email=email, role=role, password_hash=HASH, at=T0)


# -- users --------------------------------------------------------------------------------


async def test_users_are_created_and_listed(store: Store) -> None:
    ann = await a_user(store, "Ann@Example.com")
    bob = await a_user(store, "bob@example.com", Role.VIEWER, team="beta")
    assert ann.email == "ann@example.com"
    assert (ann.team, ann.role, ann.created_at, ann.password_changed_at) == (
        "acme",
        Role.ADMIN,
        T0,
        T0,
    )
    assert ann.id.startswith("usr_")
    assert await store.users.all() == [ann, bob]
    assert await store.users.all("beta") == [bob]
    assert await store.users.get_by_email("ANN@example.com ") == ann
    assert await store.users.get(bob.id) == bob
    assert await store.users.get_by_email("nobody@example.com") is None
    assert await store.users.count() == 2
    assert HASH not in repr(await store.users.all())


async def test_an_email_address_is_taken_whatever_its_case(store: Store) -> None:
    await a_user(store, "ann@example.com")
    with pytest.raises(UserExists):
        await a_user(store, "ANN@EXAMPLE.COM")
    assert await store.users.count() == 1


async def test_a_user_needs_an_existing_team(store: Store) -> None:
    with pytest.raises(TeamNotFound):
        await store.users.create(
            team="nobody", email="ann@example.com", role=Role.ADMIN, password_hash=HASH, at=T0
        )
    assert await store.users.count() == 0


async def test_the_database_refuses_an_unknown_role(store: Store) -> None:
    await store.teams.create("acme", None, at=T0)
    with pytest.raises(Exception, match=r"(?i)check"):
        async with store.db.write() as tx:
            await tx.execute(
                users.insert(),
                {
                    "id": "usr_x",
                    "team_id": 1,
                    "email": "x@example.com",
                    "role": "owner",
                    "password_hash": HASH,
                    "created_at": T0,
                    "updated_at": T0,
                    "password_changed_at": T0,
                },
            )


async def test_credentials_give_the_hash_to_check(store: Store) -> None:
    ann = await a_user(store)
    assert await store.users.credentials("Ann@example.com") == (ann, HASH)
    assert await store.users.credentials("bob@example.com") is None


# -- sessions -----------------------------------------------------------------------------


async def test_a_session_resolves_to_its_user_until_it_ends(store: Store) -> None:
    ann = await a_user(store)
    token, session = await store.sessions.start(ann, at=T0)
    assert (session.user_id, session.created_at, session.expires_at) == (
        ann.id,
        T0,
        T0 + SESSION_IDLE_MS,
    )
    assert len(session.csrf_token) >= 43
    resolved = await store.sessions.resolve(token, at=T0 + 1)
    assert resolved == (ann, session)
    assert await store.sessions.resolve(token + "x", at=T0 + 1) is None
    assert await store.sessions.resolve("", at=T0 + 1) is None
    assert await store.sessions.resolve("x" * 10_000, at=T0 + 1) is None
    assert await store.sessions.end(token)
    assert await store.sessions.resolve(token, at=T0 + 2) is None
    assert not await store.sessions.end(token)


async def test_only_a_hash_of_the_session_token_is_stored(store: Store) -> None:
    token, session = await store.sessions.start(await a_user(store), at=T0)
    async with store.db.read() as reads:
        rows = await reads.rows(select(sessions))
    assert [r.id for r in rows] == [security.hash_token(token)] == [session.id]
    assert token not in repr(rows)


async def test_an_unused_session_expires_and_a_used_one_goes_on(store: Store) -> None:
    ann = await a_user(store)
    idle, _ = await store.sessions.start(ann, at=T0)
    used, _ = await store.sessions.start(ann, at=T0)
    for day in range(1, 10):
        assert await store.sessions.resolve(used, at=T0 + day * DAY_MS) is not None
    assert await store.sessions.resolve(idle, at=T0 + SESSION_IDLE_MS) is None


async def test_a_session_ends_at_its_absolute_limit_however_used(store: Store) -> None:
    token, _ = await store.sessions.start(await a_user(store), at=T0)
    at = T0
    while at < T0 + SESSION_MAX_MS - DAY_MS:
        at += DAY_MS
        assert await store.sessions.resolve(token, at=at) is not None
    assert await store.sessions.resolve(token, at=T0 + SESSION_MAX_MS) is None


async def test_last_seen_is_written_at_most_once_a_minute(store: Store) -> None:
    ann = await a_user(store)
    token, _ = await store.sessions.start(ann, at=T0)
    found = await store.sessions.resolve(token, at=T0 + SESSION_TOUCH_MS - 1)
    assert found is not None
    assert found[1].last_seen_at == T0
    found = await store.sessions.resolve(token, at=T0 + SESSION_TOUCH_MS)
    assert found is not None
    assert found[1].last_seen_at == T0 + SESSION_TOUCH_MS
    assert found[1].expires_at == T0 + SESSION_TOUCH_MS + SESSION_IDLE_MS
    [kept] = await store.sessions.of_user(ann.id, at=T0 + SESSION_TOUCH_MS)
    assert kept == found[1]


async def test_starting_a_session_deletes_expired_ones(store: Store) -> None:
    ann = await a_user(store)
    await store.sessions.start(ann, at=T0)
    later = T0 + SESSION_IDLE_MS + 1
    await store.sessions.start(ann, at=later)
    async with store.db.read() as reads:
        assert len(await reads.rows(select(sessions))) == 1


async def test_ending_all_sessions_of_a_user_leaves_others(store: Store) -> None:
    ann, bob = await a_user(store), await a_user(store, "bob@example.com")
    tokens = [(await store.sessions.start(ann, at=T0))[0] for _ in range(3)]
    bobs, _ = await store.sessions.start(bob, at=T0)
    assert await store.sessions.end_all(ann.id) == 3
    for token in tokens:
        assert await store.sessions.resolve(token, at=T0 + 1) is None
    assert await store.sessions.resolve(bobs, at=T0 + 1) is not None


async def test_a_new_password_ends_every_session(store: Store) -> None:
    ann, bob = await a_user(store), await a_user(store, "bob@example.com")
    token, _ = await store.sessions.start(ann, at=T0)
    bobs, _ = await store.sessions.start(bob, at=T0)
    new_hash = security.hash_password("a brand new password")
    changed = await store.users.set_password("ANN@example.com", new_hash, at=T0 + 5)
    assert (changed.password_changed_at, changed.updated_at) == (T0 + 5, T0 + 5)
    assert await store.sessions.resolve(token, at=T0 + 6) is None
    assert await store.sessions.resolve(bobs, at=T0 + 6) is not None
    assert await store.users.credentials("ann@example.com") == (changed, new_hash)
    with pytest.raises(UserNotFound):
        await store.users.set_password("nobody@example.com", new_hash, at=T0)


async def test_deleting_a_user_ends_their_sessions(store: Store) -> None:
    ann = await a_user(store)
    token, _ = await store.sessions.start(ann, at=T0)
    assert await store.users.delete("Ann@example.com") == ann
    assert await store.sessions.resolve(token, at=T0 + 1) is None
    assert await store.users.count() == 0
    async with store.db.read() as reads:
        assert await reads.rows(select(sessions)) == []
    with pytest.raises(UserNotFound):
        await store.users.delete("ann@example.com")


# -- logins -------------------------------------------------------------------------------


async def test_a_right_password_logs_in_and_is_not_counted(store: Store) -> None:
    ann = await a_user(store)
    result = await store.logins.attempt(
        address=ADDRESS, email="ANN@example.com", password=PASSWORD, at=T0
    )
    assert (result.user, result.throttled, result.retry_after_ms) == (ann, False, 0)
    recent = await store.logins.recent(address=ADDRESS, email="ann@example.com", at=T0)
    assert (recent.address.count, recent.account.count) == (0, 0)


async def test_failures_are_counted_per_address_and_account_then_slowed(store: Store) -> None:
    await a_user(store)
    for i in range(ACCOUNT_FREE_FAILURES):
        result = await store.logins.attempt(
            address=ADDRESS, email="ann@example.com", password="wrong password!", at=T0 + i
        )
        assert result.user is None
        assert not result.throttled
    assert result.retry_after_ms == 1_000  # the next one waits a second
    recent = await store.logins.recent(address=ADDRESS, email="ann@example.com", at=T0 + 10)
    assert (recent.address.count, recent.account.count) == (ACCOUNT_FREE_FAILURES,) * 2
    last = T0 + ACCOUNT_FREE_FAILURES - 1
    # Within the wait even the right password is refused unread, and not counted.
    refused = await store.logins.attempt(
        address="198.51.100.1", email="ann@example.com", password=PASSWORD, at=last + 500
    )
    assert (refused.user, refused.throttled, refused.retry_after_ms) == (None, True, 500)
    after = await store.logins.recent(address=ADDRESS, email="ann@example.com", at=last + 500)
    assert after == recent
    # Once it is over, the right password gets in.
    welcome = await store.logins.attempt(
        address="198.51.100.1", email="ann@example.com", password=PASSWORD, at=last + 1_000
    )
    assert welcome.user is not None


async def test_unknown_accounts_are_counted_like_known_ones(store: Store) -> None:
    for i in range(ACCOUNT_FREE_FAILURES):
        result = await store.logins.attempt(
            address=ADDRESS, email="ghost@example.com", password=PASSWORD, at=T0 + i
        )
        assert result.user is None
    again = await store.logins.attempt(
        address=ADDRESS, email="ghost@example.com", password=PASSWORD, at=T0 + 10
    )
    assert again.throttled


async def test_failures_older_than_the_window_are_forgotten(store: Store) -> None:
    for i in range(3):
        await store.logins.record(address=ADDRESS, email="ann@example.com", at=T0 + i)
    recent = await store.logins.recent(address=ADDRESS, email="Ann@example.com", at=T0 + 10)
    assert (recent.account.count, recent.account.last_at) == (3, T0 + 2)
    later = T0 + FAILURE_WINDOW_MS + 5
    gone = await store.logins.recent(address=ADDRESS, email="ann@example.com", at=later)
    assert (gone.address.count, gone.account.count) == (0, 0)
    await store.logins.record(address="198.51.100.1", email="bob@example.com", at=later)
    async with store.db.read() as reads:
        assert len(await reads.rows(select(login_failures))) == 1  # deleted, not just ignored


async def test_a_burst_of_parallel_attempts_gets_one_try(store: Store) -> None:
    """Counted before the password is checked, in turns: a burst at the end of a wait
    does not get a guess per request."""
    await a_user(store)
    for i in range(ACCOUNT_FREE_FAILURES - 1):
        await store.logins.record(address=f"198.51.100.{i}", email="ann@example.com", at=T0)
    await asyncio.gather(*(store.users.count() for _ in range(6)))  # PostgreSQL: connections
    results = await asyncio.gather(
        *(
            store.logins.attempt(
                address=f"203.0.113.{i}", email="ann@example.com", password=f"guess {i:08}", at=T0
            )
            for i in range(6)
        )
    )
    assert sorted(r.throttled for r in results) == [False] + [True] * 5


async def test_a_hash_of_older_parameters_is_replaced_at_login(store: Store) -> None:
    old = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PASSWORD)
    await store.teams.create("acme", None, at=T0)
    ann = await store.users.create(
        team="acme", email="ann@example.com", role=Role.ADMIN, password_hash=old, at=T0
    )
    token, _ = await store.sessions.start(ann, at=T0)
    result = await store.logins.attempt(
        address=ADDRESS, email="ann@example.com", password=PASSWORD, at=T0 + 1
    )
    assert result.user == ann
    found = await store.users.credentials("ann@example.com")
    assert found is not None
    assert found[1] != old
    assert not security.password_needs_rehash(found[1])
    assert security.verify_password(found[1], PASSWORD)
    assert await store.sessions.resolve(token, at=T0 + 2) is not None  # same password
    assert not await store.users.rehash(ann.id, old, HASH)  # not over a newer hash


# -- first run ----------------------------------------------------------------------------


async def test_a_setup_token_creates_the_first_admin_once(store: Store) -> None:
    token = await store.setup.issue(at=T0)
    assert token is not None
    async with store.db.read() as reads:
        [row] = await reads.rows(select(setup_tokens))
    assert row.token_hash == security.hash_token(token)
    assert (
        await store.setup.consume(
            "wrong", email="eve@example.com", password_hash=HASH, team="ops", at=T0 + 1
        )
        is None
    )
    admin = await store.setup.consume(
        token, email="Ann@example.com", password_hash=HASH, team="ops", at=T0 + 2
    )
    assert admin is not None
    assert (admin.email, admin.role, admin.team) == ("ann@example.com", Role.ADMIN, "ops")
    assert await store.users.all() == [admin]
    assert "ops" in {t.name for t in await store.teams.all()}
    again = await store.setup.consume(
        token, email="eve@example.com", password_hash=HASH, team="ops", at=T0 + 3
    )
    assert again is None
    assert await store.setup.issue(at=T0 + 4) is None  # someone exists: no more tokens
    async with store.db.read() as reads:
        assert await reads.rows(select(setup_tokens)) == []


async def test_every_issued_setup_token_works_until_one_is_used(store: Store) -> None:
    first, second = await store.setup.issue(at=T0), await store.setup.issue(at=T0 + 1)
    assert first is not None
    assert second is not None
    assert first != second
    admin = await store.setup.consume(
        first, email="ann@example.com", password_hash=HASH, team="ops", at=T0 + 2
    )
    assert admin is not None
    assert (
        await store.setup.consume(
            second, email="eve@example.com", password_hash=HASH, team="ops", at=T0 + 3
        )
        is None
    )


async def test_a_setup_token_expires(store: Store) -> None:
    token = await store.setup.issue(at=T0)
    assert token is not None
    late = T0 + SETUP_TOKEN_TTL_MS
    assert (
        await store.setup.consume(
            token, email="ann@example.com", password_hash=HASH, team="ops", at=late
        )
        is None
    )
    assert await store.users.count() == 0


async def test_no_setup_token_once_a_user_exists(store: Store) -> None:
    token = await store.setup.issue(at=T0)
    assert token is not None
    await a_user(store)  # made on the command line meanwhile
    assert (
        await store.setup.consume(
            token, email="eve@example.com", password_hash=HASH, team="acme", at=T0 + 1
        )
        is None
    )
    assert [u.email for u in await store.users.all()] == ["ann@example.com"]


@pytest.mark.parametrize("tokens", ["same", "different"])
async def test_of_two_setups_at_once_exactly_one_wins(store: Store, tokens: str) -> None:
    first = await store.setup.issue(at=T0)
    second = first if tokens == "same" else await store.setup.issue(at=T0)
    assert first is not None
    assert second is not None
    await asyncio.gather(*(store.users.count() for _ in range(2)))  # PostgreSQL: connections
    results = await asyncio.gather(
        store.setup.consume(
            first, email="ann@example.com", password_hash=HASH, team="ops", at=T0 + 1
        ),
        store.setup.consume(
            second, email="eve@example.com", password_hash=HASH, team="ops", at=T0 + 1
        ),
    )
    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    assert await store.users.all() == winners


async def test_a_setup_that_loses_to_a_taken_email_changes_nothing(store: Store) -> None:
    token = await store.setup.issue(at=T0)
    assert token is not None
    await a_user(store, team="acme")
    await store.users.delete("ann@example.com")  # nobody again, but a token still there
    async with store.db.read() as reads:
        assert len(await reads.rows(select(setup_tokens))) == 1
    admin = await store.setup.consume(
        token, email="ann@example.com", password_hash=HASH, team="acme", at=T0 + 1
    )
    assert admin is not None
