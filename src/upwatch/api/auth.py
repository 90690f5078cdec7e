"""Bearer API keys and scopes."""

from __future__ import annotations

from upwatch import security
from upwatch.api.errors import ApiError
from upwatch.api.ratelimit import RateLimiter
from upwatch.clock import Clock
from upwatch.domain import Principal
from upwatch.store import Store

_CHALLENGE = {"WWW-Authenticate": "Bearer"}
RATE_LIMIT_STATE = "upwatch_rate_limit"


def unauthorized() -> ApiError:
    return ApiError(401, "UNAUTHORIZED", "Missing or invalid API key", headers=_CHALLENGE)


def bearer_token(header: str | None) -> str | None:
    """The key from ``Bearer <key>`` (the scheme word in any case), or None."""
    if not header:
        return None
    scheme, _, key = header.strip().partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not security.looks_like_key(key):
        return None
    return key


async def authorize(
    store: Store,
    clock: Clock,
    header: str | None,
    scope: str,
    limiter: RateLimiter | None = None,
    state: dict[str, object] | None = None,
) -> Principal:
    """401 for a missing, malformed, unknown or revoked key; then 429 when the key is over
    its rate limit; then 403 for a missing scope. The rate-limit decision is left in
    ``state`` for the headers of whatever response follows."""
    key = bearer_token(header)
    if key is None:
        raise unauthorized()
    principal = await store.keys.authenticate(security.hash_key(key), at=clock.now_ms())
    if principal is None:
        raise unauthorized()
    if limiter is not None:
        decision = limiter.take(principal.key_id)
        if state is not None:
            state[RATE_LIMIT_STATE] = decision
        if not decision.allowed:
            raise ApiError(
                429,
                "RATE_LIMITED",
                f"Rate limit of {decision.limit} requests per minute exceeded; "
                f"retry in {decision.retry_after_s} s",
            )
    if scope not in principal.scopes:
        raise ApiError(403, "FORBIDDEN", f"API key missing {scope} scope")
    return principal
