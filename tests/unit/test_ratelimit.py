from upwatch.api.ratelimit import RateLimiter


class Ticks:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_key_gets_its_limit_at_once_then_a_steady_rate() -> None:
    ticks = Ticks()
    limiter = RateLimiter(600, now=ticks)
    decisions = [limiter.take("key_a") for _ in range(600)]
    assert all(d.allowed for d in decisions)
    assert [d.remaining for d in decisions[:3]] == [599, 598, 597]
    denied = limiter.take("key_a")
    assert not denied.allowed
    assert denied.remaining == 0
    assert denied.retry_after_s == 1  # 10 tokens a second: the next in 0.1 s, rounded up
    assert denied.headers()["Retry-After"] == "1"
    assert denied.reset_s == 60
    ticks.now += 0.1
    assert limiter.take("key_a").allowed
    assert not limiter.take("key_a").allowed


def test_keys_are_limited_separately() -> None:
    limiter = RateLimiter(2, now=Ticks())
    assert [limiter.take("a").allowed for _ in range(3)] == [True, True, False]
    assert limiter.take("b").allowed


def test_headers_say_limit_remaining_and_reset() -> None:
    ticks = Ticks()
    limiter = RateLimiter(60, now=ticks)
    headers = limiter.take("a").headers()
    assert headers == {"RateLimit-Limit": "60", "RateLimit-Remaining": "59", "RateLimit-Reset": "1"}
    ticks.now += 1000
    assert limiter.take("a").remaining == 59  # a full bucket holds no more than the limit
