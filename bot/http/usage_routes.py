"""The signed links of the usage surfaces: the chart image Slack fetches and a month's
statement as CSV (bot/usage_links.py makes them). A link that was altered or is past its
expiry is refused with 403 `link_refused`, in the one error shape, and nothing else."""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from bot.charts import usage_chart_png
from bot.context import AppContext
from bot.http.errors import error_response
from bot.signed_links import valid
from bot.usage_links import chart_path, statement_path
from bot.usage_summary import load_usage_summary
from ledger.db import transaction
from ledger.errors import LedgerError
from ledger.statement import month_statement

router = APIRouter(include_in_schema=False)
MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")

Signature = Annotated[str, Query(max_length=64)]
Expires = Annotated[str, Query(max_length=12)]


def _context(request: Request) -> AppContext:
    return request.app.state.context


Context = Annotated[AppContext, Depends(_context)]


def register(app: FastAPI, context: AppContext) -> None:
    app.state.context = context
    app.include_router(router)


def refused() -> Response:
    return error_response(403, "link_refused", "This link is not valid or has expired.")


@router.get("/usage/{account_id}/chart.png")
async def usage_chart(
    account_id: int,
    context: Context,
    to: str = "",
    expires: Expires = "",
    signature: Signature = "",
) -> Response:
    if not valid(context, chart_path(account_id), {"to": to}, expires, signature):
        return refused()
    try:
        end = date.fromisoformat(to)
        summary = await run_in_threadpool(load_usage_summary, context, account_id, end=end)
    except (ValueError, LedgerError):
        return refused()
    png = await run_in_threadpool(usage_chart_png, summary)
    return Response(png, media_type="image/png", headers={"Cache-Control": "private, max-age=600"})


@router.get("/usage/{account_id}/statement-{month}.csv")
async def statement_download(
    account_id: int, month: str, context: Context, expires: Expires = "", signature: Signature = ""
) -> Response:
    if not MONTH.match(month) or not valid(
        context, statement_path(account_id, month), {}, expires, signature
    ):
        return refused()
    return await run_in_threadpool(statement_response, context, account_id, month)


def statement_response(context: AppContext, account_id: int, month: str) -> Response:
    """A month's statement as a CSV download (the billing page serves it the same way)."""
    text = transaction(context.sessions, lambda s: month_statement(s, account_id, month))
    return Response(
        text,
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="statement-{account_id}-{month}.csv"',
            "Cache-Control": "private, no-store",
        },
    )
