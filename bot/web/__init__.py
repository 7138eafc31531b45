"""The billing page: what the customer document calls "Billing and usage", served by
creditbot itself (server-rendered, no script, no CDN) under /billing/<account>.

People reach it from Slack ("Open billing page" in /balance, /usage and the App Home) with
a single-use sign-in link; the session then lives in an HttpOnly, Secure, SameSite cookie
and every form carries a CSRF token. Members read; billing admins top up and change
auto-recharge and agent settings through the same ledger functions and rules as Slack's
modals. routes.py holds the handlers, page.py what the page shows, session.py the cookie.
"""

from __future__ import annotations

from fastapi import FastAPI

from bot.context import AppContext
from bot.web.routes import router


def register(app: FastAPI, context: AppContext) -> None:
    app.state.context = context
    app.include_router(router)
