"""Property-based fuzzing of the whole API from its own OpenAPI document (schemathesis),
against a live `upwatch serve`: no 5xx, every response as documented. Then with no key,
a read-only key and another team's key: only 401 / 403 / 404 (and 400 for bad input),
never another team's data. Bounded: a fixed number of examples per operation."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import positive_data_acceptance

from tests.support.servers import Env
from upwatch.api import create_app
from upwatch.config import Settings
from upwatch.store import Store, open_engine

pytestmark = pytest.mark.slow

EXAMPLES = 40  # per operation and key


def _document() -> dict[str, Any]:
    # The document the server serves, built without a database.
    store = Store(open_engine("sqlite:///:memory:"), default_max_monitors=1)
    return create_app(Settings(), store).openapi()


schema = schemathesis.openapi.from_dict(_document())
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
# The API document's schema says only "1-255 characters" for `host`; the hostname rule
# (no scheme, path, port or spaces) cannot be written in it, so schema-valid bodies may
# rightly be refused. tests/integration/test_api.py covers that rule case by case.
NOT_EXPRESSIBLE = [positive_data_acceptance]


class Live:
    def __init__(self, env: Env) -> None:
        self.env = env
        self.keys = {
            "rw": env.key(),
            "ro": env.key("tcp-monitors:read"),
            "other": env.key(team="other"),
        }


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    env = Env(Path(tmp_path_factory.mktemp("fuzz")))
    env.vars["UPWATCH_RATE_LIMIT_PER_MINUTE"] = "0"
    # Fuzzed monitors and channels may name any address: the server checks and sends to
    # loopback only (the others are refused before any packet leaves).
    env.vars["UPWATCH_TARGET_DENY"] = "0.0.0.0/0,::/0"
    env.vars["UPWATCH_TARGET_ALLOW"] = "127.0.0.0/8,::1/128"
    proc = env.start()
    try:
        yield Live(env)
    finally:
        proc.terminate()
        proc.communicate(timeout=15)


def auth(key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"} if key else {}


@schema.parametrize()
@FUZZ
def test_the_api_keeps_its_documented_promises(case: Any, live: Live) -> None:
    case.call_and_validate(
        base_url=live.env.base, headers=auth(live.keys["rw"]), excluded_checks=NOT_EXPRESSIBLE
    )


@schema.parametrize()
@FUZZ
@pytest.mark.parametrize("who", ["nobody", "ro", "other"])
def test_other_callers_get_no_data_and_no_errors(case: Any, live: Live, who: str) -> None:
    # Whatever Authorization the generator made up is replaced by the caller's own.
    case.headers = {k: v for k, v in (case.headers or {}).items() if k.lower() != "authorization"}
    response = case.call(base_url=live.env.base, headers=auth(live.keys.get(who)))
    status = response.status_code
    assert status < 500, response.text
    # Judge by the key actually sent: some generated cases drop or mangle the header.
    sent = response.request.headers.get("Authorization")
    caller = next((w for w, k in live.keys.items() if sent == f"Bearer {k}"), None)
    if case.method.upper() != case.operation.method.upper():
        assert status == 405  # routing answers before anything else
    elif case.path in ("/healthz", "/openapi.json"):
        assert status == 200
    elif caller is None:
        assert status == 401
    elif caller == "ro" and (
        case.method.upper() in ("POST", "PUT", "DELETE")
        or case.path.startswith("/v1/notification-channels")  # not its scope at all
    ):
        assert status == 403
    else:
        # The other team sees only its own monitors and channels (it may create some:
        # 201) and 404 for every other id (400 where a body or page is bad and no
        # monitor or channel is named, 413 for huge bodies).
        creates = case.method.upper() == "POST" and case.path in (
            "/v1/tcp-monitors",
            "/v1/notification-channels",
        )
        assert status in (200, 400, 404, 413, *((201,) if creates else ())), response.text
        if status == 200 and case.path == "/v1/tcp-monitors" and caller == "other":
            theirs = {m["id"] for m in response.json()["data"]}
            ours = httpx.get(
                f"{live.env.base}/v1/tcp-monitors", headers=auth(live.keys["rw"]), timeout=10
            ).json()["data"]
            assert theirs.isdisjoint(m["id"] for m in ours)
