"""The notification channels pages (SPEC §10), in process on both databases: the list and
a channel's page never show a secret, but a webhook's signing secret is shown once, on the
page that made it and on the one that rotated it; the forms give the API's messages by the
field with what was typed kept (but never a secret URL); "Send test" reaches a real
webhook receiver on loopback, signed with the secret shown, and its delivery is shown;
viewers only look; other teams' channels are 404; a form without its CSRF token changes
nothing."""

import re
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.support.receivers import receiving, verified
from tests.support.seeding import make_key, team_id
from tests.support.web import logged_in, site
from upwatch.clock import FakeClock
from upwatch.domain import rfc3339
from upwatch.notifications import Channel, ChannelType
from upwatch.store import Store
from upwatch.users import Role

SLACK_URL = "https://hooks.slack.example.invalid/services/T0/B0/xoxb-very-secret"
SLACK_SHOWN = "https://hooks.slack.example.invalid/…"
HOOK = {"name": "ops", "type": "webhook", "webhookUrl": "https://hooks.example.invalid/x"}
SLACK = {"name": "chat", "type": "slack", "slackUrl": SLACK_URL}


@pytest.fixture
async def app_client(store: Store) -> AsyncIterator[httpx.AsyncClient]:
    async with site(store) as client:
        yield client


async def _made(
    store: Store,
    team: str = "acme",
    *,
    name: str = "ops",
    type_: ChannelType = ChannelType.WEBHOOK,
    config: dict[str, object] | None = None,
) -> Channel:
    await make_key(store, team)
    return await store.channels.create(
        await team_id(store, team),
        name=name,
        type=type_,
        config=config or {"url": "https://hooks.example.invalid/x"},
        is_enabled=True,
        at=0,
    )


def _secret(html: str) -> str:
    """The signing secret a page shows, once."""
    found = re.findall(r'<code class="secret">(whsec_[A-Za-z0-9+/=]+)</code>', html)
    assert len(found) == 1, html
    return str(found[0])


def _channel_path(html: str) -> str:
    """The page's own channel, as its "Send test" form names it."""
    found = re.search(r'action="(/channels/nch_[A-Za-z0-9]+)/test"', html)
    assert found is not None, html
    return found.group(1)


def _error(html: str, field: str) -> str:
    found = re.search(rf'id="{field}-error">([^<]+)<', html)
    assert found is not None, html
    return found.group(1)


async def test_the_list_shows_each_channel_and_none_of_its_secrets(
    app_client: httpx.AsyncClient, store: Store
) -> None:
    csrf = await logged_in(app_client, store, "ada@example.com")
    for form, status in ((HOOK, 201), (SLACK, 303)):  # a webhook's page shows its secret
        r = await app_client.post("/channels/new", data={**form, "isEnabled": "on", "csrf": csrf})
        assert r.status_code == status, r.text
    mail = await _made(
        store, name="oncall", type_=ChannelType.EMAIL, config={"to": ["oncall@corp.internal"]}
    )
    await store.channels.update(
        mail.team_id, mail.id, name=None, config=None, is_enabled=False, at=1
    )
    listing = await app_client.get("/channels")
    assert listing.status_code == 200
    assert listing.headers["cache-control"] == "private, no-store"
    assert 'href="/channels/new"' in listing.text
    made = {c.type: c for c in await store.channels.all(mail.team_id)}
    hook, slack = made[ChannelType.WEBHOOK], made[ChannelType.SLACK]
    for c in (hook, slack, mail):
        assert f'href="/channels/{c.id}"' in listing.text
    assert "https://hooks.example.invalid/x" in listing.text  # a webhook's URL is no secret
    assert SLACK_SHOWN in listing.text
    assert "oncall@corp.internal" in listing.text
    assert "disabled" in listing.text
    pages = [listing.text]
    for c in (hook, slack):
        pages += [
            (await app_client.get(f"/channels/{c.id}")).text,
            (await app_client.get(f"/channels/{c.id}/edit")).text,
        ]
    assert hook.secret is not None
    assert hook.secret.startswith("whsec_")
    for html in pages:
        assert hook.secret not in html
        assert "whsec_" not in html
        assert "xoxb-very-secret" not in html
        assert "services/T0" not in html


async def test_a_webhooks_signing_secret_is_shown_once_when_made_and_when_rotated(
    app_client: httpx.AsyncClient, store: Store
) -> None:
    csrf = await logged_in(app_client, store, "ada@example.com")
    r = await app_client.post("/channels/new", data={**HOOK, "isEnabled": "on", "csrf": csrf})
    assert r.status_code == 201  # the page itself, not a redirect to a page without it
    assert r.headers["cache-control"] == "private, no-store"
    assert "shown this once and never again" in r.text
    first = _secret(r.text)
    path = _channel_path(r.text)
    [c] = await store.channels.all(1)
    assert (path, c.secret) == (f"/channels/{c.id}", first)
    assert 'action="/channels/' + c.id + '/rotate-secret"' in r.text
    later = await app_client.get(path)
    assert later.status_code == 200
    assert "whsec_" not in later.text
    assert "Rotate signing secret" in later.text
    r = await app_client.post(f"{path}/rotate-secret", data={"csrf": csrf})
    assert r.status_code == 200
    assert r.headers["cache-control"] == "private, no-store"
    second = _secret(r.text)
    assert second != first
    assert "The old one no longer signs" in r.text
    [c] = await store.channels.all(1)
    assert c.secret == second
    for html in (
        (await app_client.get(path)).text,
        (await app_client.get(f"{path}/edit")).text,
        (await app_client.get("/channels")).text,
    ):
        assert "whsec_" not in html
    # Other channels have no secret to rotate, and nothing changes.
    r = await app_client.post("/channels/new", data={**SLACK, "isEnabled": "on", "csrf": csrf})
    assert r.status_code == 303
    slack = await app_client.get(r.headers["location"])
    assert "Rotate signing secret" not in slack.text
    r = await app_client.post(f"{r.headers['location']}/rotate-secret", data={"csrf": csrf})
    assert r.status_code == 400
    assert "Only webhook channels have a signing secret" in r.text
    assert "whsec_" not in r.text
    assert {ch.type: ch.secret for ch in await store.channels.all(1)} == {
        ChannelType.WEBHOOK: second,
        ChannelType.SLACK: None,
    }


async def test_a_bad_channel_is_shown_by_its_field_and_what_was_typed_is_kept(
    app_client: httpx.AsyncClient, store: Store
) -> None:
    csrf = await logged_in(app_client, store, "ada@example.com")
    r = await app_client.post(
        "/channels/new", data={**HOOK, "webhookUrl": "ftp://files.example.invalid/", "csrf": csrf}
    )
    assert r.status_code == 400
    assert "http or https URL" in _error(r.text, "webhookUrl")
    assert 'aria-invalid="true"' in r.text
    assert 'value="ops"' in r.text
    assert 'value="ftp://files.example.invalid/"' in r.text
    # Both bad at once: both messages, each by its field.
    r = await app_client.post(
        "/channels/new", data={**HOOK, "name": "", "webhookUrl": "", "csrf": csrf}
    )
    assert r.status_code == 400
    assert "at least 1 character" in _error(r.text, "name")
    assert "required" in _error(r.text, "webhookUrl")
    # A secret URL typed into a form that comes back is not in it: it is typed again.
    r = await app_client.post("/channels/new", data={**SLACK, "name": "x" * 256, "csrf": csrf})
    assert r.status_code == 400
    assert "at most 255 characters" in _error(r.text, "name")
    assert "xoxb-very-secret" not in r.text
    assert "Type it again" in r.text
    assert '<option value="slack" selected>' in r.text
    r = await app_client.post(
        "/channels/new",
        data={"name": "mail", "type": "email", "emailTo": "a@example.com", "csrf": csrf},
    )
    assert r.status_code == 400
    assert "UPWATCH_SMTP_URL" in _error(r.text, "type")
    assert 'value="a@example.com"' in r.text
    r = await app_client.post("/channels/new", data={**HOOK, "type": "pager", "csrf": csrf})
    assert r.status_code == 400
    assert "webhook" in _error(r.text, "type")
    r = await app_client.post(
        "/channels/new",
        data={"name": "n", "type": "apprise", "appriseUrl": "nope://x.example", "csrf": csrf},
    )
    assert r.status_code == 400
    assert "Apprise" in _error(r.text, "appriseUrl")
    assert await store.channels.all(1) == []


async def test_create_edit_and_delete_through_the_forms(
    app_client: httpx.AsyncClient, store: Store
) -> None:
    csrf = await logged_in(app_client, store, "ada@example.com")
    assert (await app_client.get("/channels/new")).status_code == 200
    r = await app_client.post("/channels/new", data={**SLACK, "isEnabled": "on", "csrf": csrf})
    assert r.status_code == 303
    path = r.headers["location"]
    page = await app_client.get(path)
    assert page.status_code == 200
    assert ">chat <" in page.text
    assert SLACK_SHOWN in page.text
    assert "Nothing sent yet" in page.text
    form = await app_client.get(f"{path}/edit")
    assert 'value="chat"' in form.text
    assert "Leave empty to keep the current one" in form.text
    assert 'name="type"' not in form.text  # a channel's type cannot change
    # An empty secret URL keeps the current one; the name and the switch change.
    r = await app_client.post(f"{path}/edit", data={"name": "alerts", "slackUrl": "", "csrf": csrf})
    assert (r.status_code, r.headers["location"]) == (303, path)
    [c] = await store.channels.all(1)
    assert (c.name, c.config, c.is_enabled) == ("alerts", {"url": SLACK_URL}, False)
    new_url = "https://chat.example.invalid/hooks/abc"
    r = await app_client.post(
        f"{path}/edit",
        data={"name": "alerts", "slackUrl": new_url, "isEnabled": "on", "csrf": csrf},
    )
    assert r.status_code == 303
    [c] = await store.channels.all(1)
    assert (c.config, c.is_enabled) == ({"url": new_url}, True)
    r = await app_client.post(
        f"{path}/edit", data={"name": "alerts", "slackUrl": "not a url", "csrf": csrf}
    )
    assert r.status_code == 400
    assert "http or https URL" in _error(r.text, "slackUrl")
    assert "not a url" not in r.text
    assert (await store.channels.all(1))[0].config == {"url": new_url}
    r = await app_client.post(f"{path}/delete", data={"csrf": csrf})
    assert (r.status_code, r.headers["location"]) == (303, "/channels")
    assert await store.channels.all(1) == []
    assert (await app_client.get(path)).status_code == 404


async def test_send_test_reaches_a_real_webhook_and_the_delivery_is_shown(
    store: Store, clock: FakeClock
) -> None:
    async with site(store, clock) as client, receiving() as rx:
        csrf = await logged_in(client, store, "ada@example.com")
        r = await client.post(
            "/channels/new", data={**HOOK, "webhookUrl": rx.url(), "isEnabled": "on", "csrf": csrf}
        )
        assert r.status_code == 201
        path, secret = _channel_path(r.text), _secret(r.text)
        r = await client.post(f"{path}/test", data={"csrf": csrf})
        assert r.status_code == 303
        assert r.headers["location"].startswith(f"{path}?tested=ndl_")
        [received] = await rx.wait_for(1)
        shown = await client.get(r.headers["location"])
        clock.advance(60)
        rx.responses.append((503, {}))
        failed = await client.post(f"{path}/test", data={"csrf": csrf}, follow_redirects=True)
    [c] = await store.channels.all(1)
    [last, first], total = await store.deliveries.of_channel(1, c.id, limit=10, offset=0)
    assert total == 2
    assert received.headers["webhook-id"] == first.id
    assert verified(received, secret)["data"]["channel"]["id"] == c.id  # the secret shown
    assert (first.status.value, last.status.value, last.last_error) == (
        "delivered",
        "pending",
        "HTTP 503",
    )
    assert "Test delivered." in shown.text
    assert "delivered</span>" in shown.text
    assert f'<time datetime="{rfc3339(first.created_at)}">' in shown.text
    assert "Test not delivered yet</strong> (HTTP 503): it will be tried again" in failed.text
    assert "(2 of 2)" in failed.text
    assert failed.text.index("pending</span>") < failed.text.index("delivered</span>")
    assert c.secret is not None
    assert c.secret not in shown.text + failed.text


async def test_a_viewer_looks_but_changes_nothing(
    app_client: httpx.AsyncClient, store: Store
) -> None:
    c = await _made(store)
    csrf = await logged_in(app_client, store, "vic@example.com", Role.VIEWER)
    listing = await app_client.get("/channels")
    assert listing.status_code == 200
    assert "/channels/new" not in listing.text
    page = await app_client.get(f"/channels/{c.id}")
    assert page.status_code == 200
    assert "Send test" not in page.text
    assert "Rotate signing secret" not in page.text
    assert "rotate-secret" not in page.text
    assert "/edit" not in page.text
    for path in ("/channels/new", f"/channels/{c.id}/edit"):
        assert (await app_client.get(path)).status_code == 403, path
    for path, data in (
        ("/channels/new", HOOK),
        (f"/channels/{c.id}/edit", {"name": "mine now"}),
        (f"/channels/{c.id}/test", {}),
        (f"/channels/{c.id}/rotate-secret", {}),
        (f"/channels/{c.id}/delete", {}),
    ):
        r = await app_client.post(path, data={**data, "csrf": csrf})
        assert r.status_code == 403, path
        assert "whsec_" not in r.text
        assert "Viewers only look" in r.text
    assert await store.channels.all(c.team_id) == [c]
    assert (await store.deliveries.of_channel(c.team_id, c.id, limit=10, offset=0))[1] == 0


async def test_another_teams_channel_is_404_and_a_forged_form_changes_nothing(
    app_client: httpx.AsyncClient, store: Store
) -> None:
    theirs = await _made(store, "beta", name="theirs")
    csrf = await logged_in(app_client, store, "ada@example.com")
    mine = await _made(store, name="mine")
    for path in (
        f"/channels/{theirs.id}",
        f"/channels/{theirs.id}/edit",
        "/channels/nch_nope",
        "/channels/not-an-id",
    ):
        r = await app_client.get(path)
        assert r.status_code == 404, path
        assert "theirs" not in r.text
    for action in ("edit", "test", "rotate-secret", "delete"):
        r = await app_client.post(f"/channels/{theirs.id}/{action}", data={"csrf": csrf})
        assert r.status_code == 404, action
    assert "theirs" not in (await app_client.get("/channels")).text
    for path, data in (
        ("/channels/new", {**HOOK, "csrf": "forged"}),
        (f"/channels/{mine.id}/edit", {"name": "forged", "csrf": "forged"}),
        (f"/channels/{mine.id}/test", {}),
        (f"/channels/{mine.id}/rotate-secret", {"csrf": "forged"}),
        (f"/channels/{mine.id}/rotate-secret", {}),
        (f"/channels/{mine.id}/delete", {"csrf": ""}),
    ):
        r = await app_client.post(path, data=data)
        assert r.status_code == 400, path
        assert "This form has expired" in r.text
        assert "whsec_" not in r.text
    assert await store.channels.all(mine.team_id) == [mine]
    assert await store.channels.all(theirs.team_id) == [theirs]
    for c in (mine, theirs):
        assert (await store.deliveries.of_channel(c.team_id, c.id, limit=10, offset=0))[1] == 0


async def test_a_channel_named_script_is_shown_as_text(
    app_client: httpx.AsyncClient, store: Store
) -> None:
    await logged_in(app_client, store, "ada@example.com")
    c = await _made(store, name="<script>alert(1)</script>")
    for path in ("/channels", f"/channels/{c.id}", f"/channels/{c.id}/edit"):
        html = (await app_client.get(path)).text
        assert "<script>alert(1)" not in html, path
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html, path


async def test_a_stranger_is_sent_to_the_login_page(
    app_client: httpx.AsyncClient, store: Store
) -> None:
    c = await _made(store)
    for method, path in (
        ("GET", "/channels"),
        ("GET", f"/channels/{c.id}"),
        ("POST", "/channels/new"),
        ("POST", f"/channels/{c.id}/test"),
        ("POST", f"/channels/{c.id}/rotate-secret"),
        ("POST", f"/channels/{c.id}/delete"),
    ):
        r = await app_client.request(method, path)
        assert (r.status_code, r.headers["location"]) == (303, f"/login?next={path}"), path
    assert await store.channels.all(c.team_id) == [c]
