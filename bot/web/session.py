"""The billing page's cookie: which session a browser holds, and what it may do here."""

from __future__ import annotations

from datetime import datetime

from fastapi import Request, Response

from bot.context import AppContext
from ledger.db import transaction
from ledger.web_access import SESSION_TTL, SignedIn, signed_in

COOKIE = "creditbot_billing"
PATH = "/billing"


def set_session_cookie(response: Response, token: str) -> None:
    # Lax, not Strict: the browser arrives from Slack (another site) through the sign-in
    # link's redirect, and a Strict cookie would not be sent on it. Forms need the CSRF
    # token besides the cookie.
    response.set_cookie(
        COOKIE,
        token,
        max_age=int(SESSION_TTL.total_seconds()),
        path=PATH,
        httponly=True,
        secure=True,
        samesite="lax",
    )


def clear_session_cookie(response: Response) -> None:
    response.delete_cookie(COOKIE, path=PATH, httponly=True, secure=True, samesite="lax")


def session_token(request: Request) -> str | None:
    token = request.cookies.get(COOKIE)
    return token if token and len(token) <= 100 else None


def current_session(
    context: AppContext, request: Request, *, now: datetime | None = None
) -> SignedIn | None:
    """The browser's live session, or None."""
    token = session_token(request)
    if token is None:
        return None
    return transaction(context.sessions, lambda s: signed_in(s, token, now=now))
