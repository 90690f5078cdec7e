"""API keys: make, hash, verify. Only the hash is ever stored."""

from __future__ import annotations

import hashlib
import re

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
