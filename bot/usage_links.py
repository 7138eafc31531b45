"""The links the usage surfaces hand out: the chart image and a month's statement (signed,
short-lived, served by bot/http/usage_routes.py) and the billing page's sign-in link."""

from __future__ import annotations

from datetime import date, datetime
from urllib.parse import urlsplit

from bot.context import AppContext
from bot.signed_links import signed_url

_LOOPBACK = ("localhost", "127.0.0.1", "::1", "0.0.0.0")


def reachable_by_slack(context: AppContext) -> bool:
    """Whether Slack's servers could fetch an image under PUBLIC_URL. Slack refuses a
    message whose image it cannot download, so on a loopback address the chart is left
    out and its words stay."""
    host = urlsplit(context.settings.public_url).hostname or ""
    return host not in _LOOPBACK and not host.startswith("127.")


def chart_path(account_id: int) -> str:
    return f"/usage/{account_id}/chart.png"


def statement_path(account_id: int, month: str) -> str:
    return f"/usage/{account_id}/statement-{month}.csv"


def chart_url(
    context: AppContext, account_id: int, end: date, *, now: datetime | None = None
) -> str | None:
    """The signed link of the chart of the 30 days ending `end`, or None when Slack could
    not fetch it."""
    if not reachable_by_slack(context):
        return None
    return signed_url(context, chart_path(account_id), {"to": end.isoformat()}, now=now)


def statement_url(
    context: AppContext, account_id: int, month: str, *, now: datetime | None = None
) -> str:
    return signed_url(context, statement_path(account_id, month), {}, now=now)


def sign_in_url(context: AppContext, account_id: int, token: str) -> str:
    return f"{context.settings.public_url.rstrip('/')}/billing/{account_id}/sign-in/{token}"
