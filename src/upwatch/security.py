"""Secrets: API keys, passwords, session and setup tokens. Only hashes are stored."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import re
import secrets
import unicodedata
from concurrent.futures import ThreadPoolExecutor

import argon2

from upwatch.domain import random_base62

KEY_PREFIX = "uptime_"
KEY_RANDOM_CHARS = 40  # ~238 bits
VISIBLE_PREFIX_CHARS = len(KEY_PREFIX) + 6
KEY_ID_PREFIX = "key_"

_KEY_SHAPE = re.compile(r"^uptime_[0-9A-Za-z]{32,128}$")


def new_key() -> str:
    return KEY_PREFIX + random_base62(KEY_RANDOM_CHARS)


def new_key_id() -> str:
    return KEY_ID_PREFIX + random_base62(16)


def looks_like_key(candidate: str) -> bool:
    return bool(_KEY_SHAPE.match(candidate))


def hash_key(key: str) -> str:
    """SHA-256: keys carry 238 random bits, so a slow password hash buys nothing."""
    return hashlib.sha256(key.encode()).hexdigest()


def visible_prefix(key: str) -> str:
    return key[:VISIBLE_PREFIX_CHARS]


# -- passwords ------------------------------------------------------------------------------

# Argon2id with argon2-cffi's defaults: RFC 9106's second recommended option (t=3,
# 64 MiB, p=4), about 50-150 ms of CPU. Hashes made under other parameters still
# verify, and ``password_needs_rehash`` says when to store a new one.
_PASSWORDS = argon2.PasswordHasher()
# Hashing takes 64 MiB and a core for a while: at most this many at once, on threads of
# their own, so that a burst of logins neither exhausts memory nor holds up the default
# executor (the checker's name lookups run there).
HASHING_THREADS = 2
_HASHING = ThreadPoolExecutor(max_workers=HASHING_THREADS, thread_name_prefix="upwatch-argon2")


def _normal(password: str) -> str:
    """NFKC (NIST SP 800-63B): the same password typed on another keyboard or system,
    composed or decomposed, is the same password."""
    return unicodedata.normalize("NFKC", password)


def hash_password(password: str) -> str:
    """An Argon2id PHC string (``$argon2id$v=19$m=65536,t=3,p=4$…``). Blocks: from async
    code, use ``hash_password_async``."""
    return _PASSWORDS.hash(_normal(password))


def verify_password(password_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches. Without a hash (no such user) a made-up hash is
    checked instead, so that the answer takes as long either way and does not tell which
    email addresses have an account."""
    try:
        matches = _PASSWORDS.verify(password_hash or _decoy_hash(), _normal(password))
    except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
        return False
    return matches and password_hash is not None


def password_needs_rehash(password_hash: str) -> bool:
    """True when the hash was made with other parameters than today's: store a new one
    at the next successful login."""
    try:
        return _PASSWORDS.check_needs_rehash(password_hash)
    except argon2.exceptions.InvalidHashError:
        return True


@functools.cache
def _decoy_hash() -> str:
    return _PASSWORDS.hash(secrets.token_urlsafe(16))


async def hash_password_async(password: str) -> str:
    """``hash_password`` off the event loop."""
    return await asyncio.get_running_loop().run_in_executor(_HASHING, hash_password, password)


async def verify_password_async(password_hash: str | None, password: str) -> bool:
    """``verify_password`` off the event loop."""
    return await asyncio.get_running_loop().run_in_executor(
        _HASHING, verify_password, password_hash, password
    )


# -- sessions, forms, first run -------------------------------------------------------------

TOKEN_BYTES = 32  # 256 bits: session, CSRF and setup tokens


def new_session_token() -> str:
    """What the session cookie carries (43 URL-safe characters); the store keeps its
    ``hash_token``."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def new_csrf_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def new_setup_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def hash_token(token: str) -> str:
    """SHA-256, hex: tokens carry 256 random bits, so a slow hash buys nothing."""
    return hashlib.sha256(token.encode()).hexdigest()


def tokens_match(given: str | None, expected: str) -> bool:
    """Constant-time comparison (a form's CSRF token against the session's)."""
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())
