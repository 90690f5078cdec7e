"""Who is looking: the session cookie, and the CSRF tokens every form carries.

- The session cookie (``upwatch_session``) is HttpOnly, SameSite=Lax, ``Secure`` under
  https, and holds a random token whose hash is the session's row (store/users.py). It
  never authenticates ``/v1/``: the API reads Bearer keys only.
- A logged-in form carries its session's synchronizer token; the login and setup forms,
  before any session exists, a double-submit token: a random cookie of their own
  (SameSite=Strict) that the form must repeat.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

from upwatch.api.deps import Services
from upwatch.security import new_csrf_token, tokens_match
from upwatch.users import Session, User

SESSION_COOKIE = "upwatch_session"
FORM_COOKIE = "upwatch_form"


@dataclass(frozen=True, slots=True)
class Visitor:
    """A logged-in user and their session."""

    user: User
    session: Session


def _services(request: Request) -> Services:
    found: Services = request.app.state.services
    return found


def secure(request: Request) -> bool:
    """Cookies get ``Secure`` when the page was served over https (directly, or as the
    operator's public URL says)."""
    return request.url.scheme == "https" or _services(request).public_url.startswith("https:")


async def visitor(request: Request) -> Visitor | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    s = _services(request)
    found = await s.store.sessions.resolve(token, at=s.clock.now_ms())
    return None if found is None else Visitor(*found)


def set_session(request: Request, response: Response, token: str, session: Session) -> None:
    now = _services(request).clock.now_ms()
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=max(1, (session.expires_at - now) // 1000),
        path="/",
        httponly=True,
        samesite="lax",
        secure=secure(request),
    )


def clear_session(request: Request, response: Response) -> None:
    response.delete_cookie(
        SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=secure(request)
    )


def form_token(request: Request) -> str:
    """The double-submit token for a form shown before login (kept if already set)."""
    return request.cookies.get(FORM_COOKIE) or new_csrf_token()


def set_form_token(request: Request, response: Response, token: str) -> None:
    response.set_cookie(
        FORM_COOKIE,
        token,
        max_age=3600,
        path="/",
        httponly=True,
        samesite="strict",
        secure=secure(request),
    )


def form_token_ok(request: Request, given: str | None) -> bool:
    expected = request.cookies.get(FORM_COOKIE)
    return bool(expected) and tokens_match(given, expected or "")


def session_token_ok(who: Visitor, given: str | None) -> bool:
    return tokens_match(given, who.session.csrf_token)
