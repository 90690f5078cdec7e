"""upwatch/users.py's rules (email addresses, the password policy, session lifetime, the
login throttle) and security.py's password hashing."""

import asyncio

import pytest
from argon2 import PasswordHasher

from upwatch import security
from upwatch.users import (
    ACCOUNT_FREE_FAILURES,
    ADDRESS_FREE_FAILURES,
    FIRST_DELAY_MS,
    MAX_DELAY_MS,
    PASSWORD_MAX_CHARS,
    PASSWORD_MIN_CHARS,
    SESSION_IDLE_MS,
    SESSION_MAX_MS,
    SESSION_TOUCH_MS,
    Failures,
    RecentFailures,
    address_key,
    email_problem,
    failure_delay_ms,
    login_delay_ms,
    new_user_id,
    normalize_email,
    password_problem,
    session_expiry,
    session_needs_touch,
)

T0 = 1_771_070_400_000
GOOD = "correct horse battery"


# -- email addresses ----------------------------------------------------------------------


def test_email_addresses_are_trimmed_and_lower_cased() -> None:
    assert normalize_email("  Ann.Lee+ops@Example.COM ") == "ann.lee+ops@example.com"


@pytest.mark.parametrize(
    "email", ["ann@example.com", "a.b+c_d@mail.example.co.uk", "ops@monitoring", "zoë@bücher.de"]
)
def test_it_accepts_ordinary_and_intranet_addresses(email: str) -> None:
    assert email_problem(email) is None


@pytest.mark.parametrize(
    "email",
    [
        "",
        "ann",
        "@example.com",
        "ann@",
        "ann@@example.com",
        "ann lee@example.com",
        "ann@exa mple.com",
        "ann@-example.com",
        "ann@example..com",
        '"ann"@example.com',
        "ann@[127.0.0.1]",
        "a" * 65 + "@example.com",
        "ann@" + "a" * 250 + ".com",
    ],
)
def test_it_rejects_what_is_not_an_address(email: str) -> None:
    assert email_problem(email) is not None


# -- passwords ----------------------------------------------------------------------------


def test_a_password_must_be_long_enough_and_not_endless() -> None:
    assert password_problem("a1b2c3d4e5f") == f"must be at least {PASSWORD_MIN_CHARS} characters"
    assert password_problem("a1b2c3d4e5f6") is None
    assert password_problem("ab" * (PASSWORD_MAX_CHARS // 2)) is None
    assert password_problem("ab" * (PASSWORD_MAX_CHARS // 2) + "c") is not None


def test_any_character_counts_and_no_composition_is_required() -> None:
    assert password_problem("ünïcödé pässwörd") is None
    assert password_problem("all lower case words") is None
    assert password_problem("🔒🔑🔒🔑🔒🔑🔒🔑🔒🔑🔒🔑") is None


def test_length_is_counted_after_normalisation() -> None:
    # Eleven characters composed, twelve code points decomposed: still too short.
    decomposed = "e\u0301" + "abcdefghij"
    assert len(decomposed) == PASSWORD_MIN_CHARS
    assert password_problem(decomposed) is not None


@pytest.mark.parametrize(
    "password", ["            ", "aaaaaaaaaaaaaaa", "Password1234", "123456789012", "QWERTY123456"]
)
def test_blank_repeated_and_well_known_passwords_are_refused(password: str) -> None:
    assert password_problem(password) is not None


def test_the_email_address_is_not_a_password() -> None:
    assert password_problem("ann.lee.ops@example.com", email="ann.lee.ops@example.com")
    assert password_problem("Annabel-Leeds", email="annabel-leeds@example.com")
    assert password_problem("Annabel-Leeds", email="someone@example.com") is None


# -- hashing ------------------------------------------------------------------------------


def test_passwords_are_hashed_with_argon2id_and_verified() -> None:
    digest = security.hash_password(GOOD)
    assert digest.startswith("$argon2id$")
    assert GOOD not in digest
    assert security.hash_password(GOOD) != digest  # salted
    assert security.verify_password(digest, GOOD)
    assert not security.verify_password(digest, GOOD + "!")
    assert not security.verify_password("not a hash", GOOD)
    assert not security.password_needs_rehash(digest)


def test_a_password_verifies_however_its_unicode_is_composed() -> None:
    digest = security.hash_password("caf\u00e9 au lait tous les jours")
    assert security.verify_password(digest, "cafe\u0301 au lait tous les jours")


def test_without_a_hash_nothing_verifies() -> None:
    assert not security.verify_password(None, GOOD)


def test_hashes_of_older_parameters_verify_and_ask_for_a_rehash() -> None:
    old = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(GOOD)
    assert security.verify_password(old, GOOD)
    assert security.password_needs_rehash(old)


async def test_hashing_runs_off_the_event_loop() -> None:
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.005)

    ticker = asyncio.create_task(tick())
    digest = await security.hash_password_async(GOOD)
    assert await security.verify_password_async(digest, GOOD)
    ticker.cancel()
    assert ticks > 3  # the loop went on while Argon2 worked


def test_tokens_are_random_and_only_their_hash_is_kept() -> None:
    token = security.new_session_token()
    assert len(token) >= 43
    assert token != security.new_session_token()
    assert len(security.hash_token(token)) == 64
    assert token not in security.hash_token(token)
    assert security.tokens_match(token, token)
    assert not security.tokens_match(token[:-1], token)
    assert not security.tokens_match(None, token)


def test_user_ids_carry_a_prefix() -> None:
    assert new_user_id().startswith("usr_")
    assert new_user_id() != new_user_id()


# -- sessions -----------------------------------------------------------------------------


def test_a_session_lasts_while_used_up_to_its_absolute_limit() -> None:
    assert session_expiry(T0, T0) == T0 + SESSION_IDLE_MS
    day = 86_400_000
    assert session_expiry(T0, T0 + 3 * day) == T0 + 3 * day + SESSION_IDLE_MS
    assert session_expiry(T0, T0 + 29 * day) == T0 + SESSION_MAX_MS


def test_last_seen_is_written_at_most_once_a_minute() -> None:
    assert not session_needs_touch(T0, T0 + SESSION_TOUCH_MS - 1)
    assert session_needs_touch(T0, T0 + SESSION_TOUCH_MS)


# -- the throttle -------------------------------------------------------------------------


def recent(address: int = 0, account: int = 0, last_at: int = T0) -> RecentFailures:
    return RecentFailures(
        address=Failures(address, last_at if address else None),
        account=Failures(account, last_at if account else None),
    )


def test_the_first_failures_cost_nothing() -> None:
    assert login_delay_ms(recent(), T0) == 0
    assert login_delay_ms(recent(account=ACCOUNT_FREE_FAILURES - 1), T0) == 0
    assert login_delay_ms(recent(address=ADDRESS_FREE_FAILURES - 1), T0) == 0


def test_further_failures_of_an_account_double_the_wait_up_to_a_minute() -> None:
    waits = [login_delay_ms(recent(account=ACCOUNT_FREE_FAILURES + n), T0) for n in range(0, 12)]
    assert waits[:6] == [1000, 2000, 4000, 8000, 16000, 32000]
    assert waits[6:] == [MAX_DELAY_MS] * 6
    assert failure_delay_ms(Failures(10**6, T0), 0) == MAX_DELAY_MS  # no overflow


def test_an_address_gets_more_free_failures_than_an_account() -> None:
    assert login_delay_ms(recent(address=ACCOUNT_FREE_FAILURES), T0) == 0
    assert login_delay_ms(recent(address=ADDRESS_FREE_FAILURES), T0) == FIRST_DELAY_MS


def test_the_longer_of_the_two_waits_applies() -> None:
    both = recent(address=ADDRESS_FREE_FAILURES + 2, account=ACCOUNT_FREE_FAILURES)
    assert login_delay_ms(both, T0) == 4 * FIRST_DELAY_MS


def test_the_wait_runs_from_the_last_failure() -> None:
    slowed = recent(account=ACCOUNT_FREE_FAILURES + 3)  # 8 s
    assert login_delay_ms(slowed, T0 + 5_000) == 3_000
    assert login_delay_ms(slowed, T0 + 8_000) == 0
    assert login_delay_ms(slowed, T0 + 3_600_000) == 0  # slowed, never locked


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff::1", "2001:db8:1:2::/64"),
        ("::ffff:203.0.113.7", "203.0.113.7"),
        ("fe80::1%eth0", "fe80::/64"),
        ("testclient", "testclient"),
        (None, "-"),
        ("", "-"),
    ],
)
def test_an_ipv6_client_counts_as_its_64_block(address: str | None, key: str) -> None:
    assert address_key(address) == key
