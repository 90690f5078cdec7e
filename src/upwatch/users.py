"""Users of the web dashboard and their sessions (SPEC §10): who they are, what a good
email address and password are, how long a session lasts, and how much failed logins
are slowed. Pure: store/users.py keeps them, security.py hashes passwords, the web
package shows the pages.

Decisions (README "Users and sessions"):

- Passwords: 12 to 1,024 characters after NFKC normalisation (OWASP ASVS 4.0 2.1.1 asks
  for 12; NIST SP 800-63B for no composition rules). Any character may be used. Refused:
  the user's own email address and a few well-known passwords, so that the shortest
  allowed password is not "123456789012".
- Sessions end after 7 days unused or 30 days after login, whichever comes first (as
  Grafana's defaults: a dashboard on a wall screen stays logged in, a stolen cookie does
  not last forever), and at once on logout, password change and user deletion.
- Failed logins are slowed, never locked: see ``login_delay_ms``.
"""

from __future__ import annotations

import enum
import ipaddress
import re
import unicodedata
from dataclasses import dataclass

from upwatch.domain import random_base62

USER_ID_PREFIX = "usr_"

EMAIL_MAX_CHARS = 254  # RFC 5321's path limit, less the angle brackets
EMAIL_LOCAL_MAX_CHARS = 64
PASSWORD_MIN_CHARS = 12
PASSWORD_MAX_CHARS = 1024  # Argon2 takes any length in the same time; this bounds the request

# A session: up to 30 days after login, and not past 7 days without use.
SESSION_MAX_MS = 30 * 86_400_000
SESSION_IDLE_MS = 7 * 86_400_000
# last_seen_at (and so the idle limit) moves at most this often: a write per page view
# would serialise the dashboard's reads behind SQLite's one writer.
SESSION_TOUCH_MS = 60_000

# The login throttle. Failures are counted over a sliding window, per client address
# and per account (the email address typed, whether or not such a user exists).
FAILURE_WINDOW_MS = 15 * 60_000
ACCOUNT_FREE_FAILURES = 5
ADDRESS_FREE_FAILURES = 20  # higher: several people may share one address (an office NAT)
FIRST_DELAY_MS = 1_000  # then doubling with each further failure ...
MAX_DELAY_MS = 60_000  # ... up to a minute: an attacker can slow the admin, never lock them out
IPV6_PREFIX = 64  # one IPv6 client usually holds a whole /64: counted as one address

# First run: a setup token printed in the log works this long, once.
SETUP_TOKEN_TTL_MS = 24 * 3_600_000

# Passwords too well-known to be allowed even at full length (from public lists of the
# most used ones, those of 12 characters or more).
COMMON_PASSWORDS = frozenset(
    {
        "123456789012",
        "1234567890123",
        "12345678901234",
        "123456789123",
        "1q2w3e4r5t6y",
        "1qaz2wsx3edc",
        "abcdefghijkl",
        "administrator",
        "password1234",
        "password12345",
        "password123456",
        "passwordpassword",
        "qwerty123456",
        "qwertyuiopasdf",
        "qwertyuiop123",
        "iloveyou1234",
        "letmein12345",
        "changeme1234",
        "welcome12345",
        "upwatchupwatch",
    }
)


class Role(enum.StrEnum):
    """Admins change things; viewers only look."""

    ADMIN = "admin"
    VIEWER = "viewer"


@dataclass(frozen=True, slots=True)
class User:
    """A user as everyone but the login sees them: no password hash here, so none can
    reach a page, a listing or a log line by accident."""

    id: str
    team_id: int
    team: str
    email: str  # lower-cased
    role: Role
    created_at: int
    updated_at: int
    password_changed_at: int

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN


@dataclass(frozen=True, slots=True)
class Session:
    """A logged-in browser. ``id`` is the hash of the cookie's token, never the token."""

    id: str
    user_id: str
    csrf_token: str  # the synchronizer token every form of this session carries
    created_at: int
    last_seen_at: int
    expires_at: int  # the cookie's Max-Age is what is left of this


@dataclass(frozen=True, slots=True)
class Failures:
    """Failed logins of one address or one account within the throttle's window."""

    count: int = 0
    last_at: int | None = None


@dataclass(frozen=True, slots=True)
class RecentFailures:
    address: Failures
    account: Failures


@dataclass(frozen=True, slots=True)
class LoginResult:
    """What a login attempt came to. ``user`` is who logged in, or None. ``throttled``:
    refused without a look at the password, because of earlier failures. In either
    refusal ``retry_after_ms`` is how long the next attempt must wait (0: none), for a
    page to say "try again in N seconds"."""

    user: User | None
    throttled: bool = False
    retry_after_ms: int = 0


def new_user_id() -> str:
    return USER_ID_PREFIX + random_base62(16)


# -- email addresses ----------------------------------------------------------------------

_LOCAL = re.compile(r"^[^\s@\"(),:;<>\[\]\\]+$")
_LABEL = re.compile(r"^(?!-)[^\W_](?:[\w-]{0,61}[^\W_])?$")


def normalize_email(email: str) -> str:
    """How an address is stored and looked up: trimmed and lower-cased, so that
    ``Ann@Example.com`` and ``ann@example.com`` are one user."""
    return email.strip().lower()


def email_problem(email: str) -> str | None:
    """Why ``email`` (normalised) cannot be a user's address, or None. Deliberately
    loose: the address is a login name here, never written to, and intranet domains
    (``ann@monitoring``) are fine; quoted local parts and IP literals are not accepted."""
    if not email:
        return "must not be empty"
    if len(email) > EMAIL_MAX_CHARS:
        return f"must be at most {EMAIL_MAX_CHARS} characters"
    local, at, domain = email.rpartition("@")
    if not at or not local or not domain:
        return "must look like name@example.com"
    if len(local) > EMAIL_LOCAL_MAX_CHARS or not _LOCAL.match(local):
        return "must look like name@example.com"
    labels = domain.removesuffix(".").split(".")
    if not all(_LABEL.match(label) for label in labels):
        return "must look like name@example.com"
    return None


# -- passwords ----------------------------------------------------------------------------


def password_problem(password: str, *, email: str | None = None) -> str | None:
    """Why ``password`` is not allowed, or None. Length counts characters after NFKC
    normalisation, as security.py hashes them."""
    normal = unicodedata.normalize("NFKC", password)
    if len(normal) < PASSWORD_MIN_CHARS:
        return f"must be at least {PASSWORD_MIN_CHARS} characters"
    if len(normal) > PASSWORD_MAX_CHARS:
        return f"must be at most {PASSWORD_MAX_CHARS} characters"
    if not normal.strip():
        return "must not be only spaces"
    if len(set(normal)) == 1:
        return "must not be one character repeated"
    folded = normal.casefold()
    if folded in COMMON_PASSWORDS:
        return "is too common: choose another"
    if email is not None and folded in {email.casefold(), email.casefold().partition("@")[0]}:
        return "must not be your email address"
    return None


# -- sessions -----------------------------------------------------------------------------


def session_expiry(created_at: int, last_seen_at: int) -> int:
    """When a session ends unless it is used again."""
    return min(created_at + SESSION_MAX_MS, last_seen_at + SESSION_IDLE_MS)


def session_needs_touch(last_seen_at: int, at: int) -> bool:
    return at - last_seen_at >= SESSION_TOUCH_MS


# -- the login throttle -------------------------------------------------------------------


def address_key(address: str | None) -> str:
    """What failures are counted against for a client address: the address itself, an
    IPv6 address's /64 (one client usually holds all of it), an IPv4-mapped IPv6 address
    as IPv4. Anything that is not an address (a test client's name) counts as itself."""
    if not address:
        return "-"
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return address[:64]
    if ip.version == 6:
        mapped = ip.ipv4_mapped
        if mapped is not None:
            return str(mapped)
        return str(ipaddress.IPv6Network((ip, IPV6_PREFIX), strict=False))
    return str(ip)


def failure_delay_ms(failures: Failures, free: int) -> int:
    """How long after the last of these failures the next attempt must wait: nothing
    for the first ``free`` failures, then 1 s, 2 s, 4 s … up to MAX_DELAY_MS."""
    beyond = failures.count - free
    if beyond < 0:
        return 0
    return min(FIRST_DELAY_MS << min(beyond, 32), MAX_DELAY_MS)


def login_delay_ms(recent: RecentFailures, at: int) -> int:
    """How long (ms from ``at``) a login attempt must wait: 0 means "try it now".

    Failures are counted per address and per account over FAILURE_WINDOW_MS; the longer
    wait of the two applies. Attempts made while a wait is on are refused without
    looking at the password and are not counted, so hammering does not lengthen the wait
    past MAX_DELAY_MS. The CLI (``upwatch users set-password``) is never throttled.
    """
    waits = [
        (recent.address, ADDRESS_FREE_FAILURES),
        (recent.account, ACCOUNT_FREE_FAILURES),
    ]
    until = max(
        (f.last_at + failure_delay_ms(f, free) for f, free in waits if f.last_at is not None),
        default=at,
    )
    return max(0, until - at)
