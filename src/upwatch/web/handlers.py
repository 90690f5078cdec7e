"""What every handler of a team's pages starts with: who is asking (or the login page
for a stranger), the app's services, and whether a form may change anything (its CSRF
token, then the visitor's role). Refusals change nothing."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from upwatch.api.deps import Services
from upwatch.web import session
from upwatch.web.pages import form_expired, viewers_only_look


def services(request: Request) -> Services:
    found: Services = request.app.state.services
    return found


async def visitor_or_login(request: Request) -> session.Visitor | Response:
    """The logged-in visitor, or a redirect to the login page (and back here after)."""
    who = await session.visitor(request)
    if who is None:
        return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
    return who


def refused_change(request: Request, who: session.Visitor, csrf: object) -> Response | None:
    """None when a form that changes something may: its CSRF token (``csrf``, as the
    form sent it) is the session's and the visitor is an admin; else the page that
    says why nothing was changed."""
    if not session.session_token_ok(who, csrf if isinstance(csrf, str) else None):
        return form_expired(request, who)
    if not who.user.is_admin:
        return viewers_only_look(request, who)
    return None
