import re

from upwatch import security


def test_keys_are_uptime_and_at_least_32_base62_characters() -> None:
    key = security.new_key()
    assert re.fullmatch(r"uptime_[0-9A-Za-z]{32,}", key)
    assert security.looks_like_key(key)


def test_only_a_hash_and_a_short_prefix_leave_the_key() -> None:
    key = security.new_key()
    digest = security.hash_key(key)
    assert key not in digest
    assert len(digest) == 64
    prefix = security.visible_prefix(key)
    assert key.startswith(prefix)
    assert len(prefix) < 16


def test_each_key_has_its_own_hash() -> None:
    key, other = security.new_key(), security.new_key()
    assert security.hash_key(key) == security.hash_key(key)
    assert security.hash_key(key) != security.hash_key(other)


def test_malformed_keys_are_not_keys() -> None:
    for bad in ("", "uptime_", "uptime_short", "token_" + "a" * 40, "uptime_" + "a" * 39 + "!"):
        assert not security.looks_like_key(bad)
