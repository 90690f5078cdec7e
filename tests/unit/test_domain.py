import random
import re
import time

import pytest

from upwatch.domain import (
    IpFamily,
    Monitor,
    MonitorChanges,
    host_problem,
    new_monitor_id,
    new_result_id,
    reschedule,
    rfc3339,
)

T0 = 1_771_070_400_000  # 2026-02-14T12:00:00Z


@pytest.mark.parametrize(
    "host",
    [
        "db.example.com",
        "localhost",
        "a",
        "my_db",
        "example.com.",
        "xn--bcher-kva.example",
        "127.0.0.1",
        "::1",
        "2001:db8::5",
        "fe80::1%eth0",
        "a" * 63 + ".com",
    ],
)
def test_it_accepts_hostnames_and_ip_literals(host: str) -> None:
    assert host_problem(host) is None


@pytest.mark.parametrize(
    ("host", "why"),
    [
        ("http://db.example.com", "scheme"),
        ("db.example.com/path", "path"),
        ("db.example.com:5432", "port"),
        ("127.0.0.1:5432", "port"),
        ("db example.com", "spaces"),
        (" db.example.com", "spaces"),
        ("db.example.com\n", "spaces"),
        ("-db.example.com", "valid"),
        ("db-.example.com", "valid"),
        ("db..example.com", "valid"),
        ("999.1.1.1", "valid"),
        ("1.2.3", "valid"),
        ("a" * 64 + ".com", "valid"),
        ("exa*mple.com", "valid"),
        ("[::1]", "port"),
        (".", "valid"),
    ],
)
def test_it_rejects_what_is_not_a_host(host: str, why: str) -> None:
    problem = host_problem(host)
    assert problem is not None
    assert why in problem


def test_ids_have_their_prefix_and_do_not_repeat() -> None:
    monitor_ids = {new_monitor_id() for _ in range(1000)}
    assert len(monitor_ids) == 1000
    assert all(re.fullmatch(r"tcpm_[a-zA-Z0-9]{22}", i) for i in monitor_ids)
    result_ids = [new_result_id(T0) for _ in range(1000)]
    assert len(set(result_ids)) == 1000
    assert all(re.fullmatch(r"tcpr_[a-zA-Z0-9]{22}", i) for i in result_ids)


def test_result_ids_sort_by_time() -> None:
    assert new_result_id(T0)[:13] < new_result_id(T0 + 1)[:13] < new_result_id(T0 + 10**9)[:13]


def test_timestamps_are_rfc3339_utc_with_milliseconds() -> None:
    assert rfc3339(T0) == "2026-02-14T12:00:00.000Z"
    assert rfc3339(T0 + 123) == "2026-02-14T12:00:00.123Z"
    assert rfc3339(T0 + 59_999) == "2026-02-14T12:00:59.999Z"


def test_timestamps_from_tables_equal_strftime_across_days_and_years() -> None:
    rng = random.Random(3)
    for ms in [
        0,
        86_399_999,
        86_400_000,
        951_782_400_000,
        *(rng.randrange(4 * 10**12) for _ in range(20_000)),
    ]:
        seconds, millis = divmod(ms, 1000)
        expected = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"
        assert rfc3339(ms) == expected, ms


def monitor(**over: object) -> Monitor:
    base = {
        "id": "tcpm_x",
        "team_id": 1,
        "name": "db",
        "host": "db.example.com",
        "port": 5432,
        "timeout_ms": 5000,
        "interval_s": 60,
        "is_enabled": True,
        "created_at": T0,
        "updated_at": T0,
        "last_checked_at": T0,
        "last_status": None,
        "last_response_time_ms": None,
    }
    base.update(over)
    return Monitor(**base)  # type: ignore[arg-type]


def test_a_retargeted_monitor_is_due_at_once_under_a_new_generation() -> None:
    at = T0 + 5_000
    for changes in (
        MonitorChanges(host="other.example.com"),
        MonitorChanges(port=5433),
        MonitorChanges(ip_family=IpFamily.IPV6),  # other addresses are probed
    ):
        plan = reschedule(monitor(), changes, at)
        assert plan.next_due_at == at
        assert plan.new_generation


def test_a_re_enabled_monitor_is_due_at_once() -> None:
    plan = reschedule(monitor(is_enabled=False), MonitorChanges(is_enabled=True), T0 + 1)
    assert plan == plan.__class__(T0 + 1, True)


def test_disabling_discards_in_flight_checks_without_rescheduling() -> None:
    plan = reschedule(monitor(), MonitorChanges(is_enabled=False), T0 + 1)
    assert plan.next_due_at is None
    assert plan.new_generation


def test_a_new_interval_applies_from_the_last_check() -> None:
    plan = reschedule(monitor(), MonitorChanges(interval_s=30), T0 + 5_000)
    assert plan.next_due_at == T0 + 30_000
    assert not plan.new_generation


def test_a_new_interval_already_past_applies_at_once() -> None:
    plan = reschedule(monitor(), MonitorChanges(interval_s=10), T0 + 25_000)
    assert plan.next_due_at == T0 + 25_000


def test_a_new_timeout_or_name_leaves_the_schedule_alone() -> None:
    plan = reschedule(monitor(), MonitorChanges(timeout_ms=100, name="x"), T0 + 1)
    assert plan.next_due_at is None
    assert not plan.new_generation


def test_setting_the_same_host_is_not_a_retarget() -> None:
    plan = reschedule(monitor(), MonitorChanges(host="db.example.com", port=5432), T0 + 1)
    assert plan.next_due_at is None
    assert not plan.new_generation


def test_the_default_policy_denies_link_local_only() -> None:
    from upwatch.domain import DEFAULT_TARGET_DENY, TargetPolicy, parse_networks

    policy = TargetPolicy(parse_networks(DEFAULT_TARGET_DENY))
    for denied in (
        "169.254.169.254",
        "169.254.0.1",
        "fe80::1",
        "fe80::1%eth0",
        "::ffff:169.254.169.254",
    ):
        assert not policy.permits(denied), denied
    for allowed in ("127.0.0.1", "10.0.0.1", "::1", "2001:db8::1", "db.example.com"):
        assert policy.permits(allowed), allowed


def test_allow_overrides_deny() -> None:
    from upwatch.domain import TargetPolicy, parse_networks

    policy = TargetPolicy(parse_networks("10.0.0.0/8"), parse_networks("10.1.2.0/24"))
    assert not policy.permits("10.9.9.9")
    assert policy.permits("10.1.2.3")


def test_bad_networks_are_named() -> None:
    from upwatch.domain import parse_networks

    with pytest.raises(ValueError, match=r"'10\.0\.0\.0/33'"):
        parse_networks("127.0.0.0/8, 10.0.0.0/33")
