"""The Stripe webhook, the Checkout success and cancel pages, and the retired fix links of
failed recharges: named handlers on a module-level router."""

from __future__ import annotations

import html
import logging
from typing import Annotated

import stripe
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from bot import metrics
from bot import stripe as stripe_gateway
from bot.context import AppContext
from bot.http.errors import error_response
from bot.stripe import webhooks
from bot.stripe.signed_events import EventRefused, read_event
from ledger.errors import LedgerError

log = logging.getLogger(__name__)

#: Stripe signs `t=<unix time>`; older signatures are refused (replays).
TOLERANCE_SECONDS = 300
_RETRY = {"Retry-After": "60"}


def _page(title: str, text: str, status: int = 200) -> HTMLResponse:
    body = (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title></head>"
        "<body style='font-family: sans-serif; max-width: 32em; margin: 4em auto'>"
        f"<h1>{html.escape(title)}</h1><p>{html.escape(text)}</p></body></html>"
    )
    return HTMLResponse(body, status_code=status)


def _context(request: Request) -> AppContext:
    return request.app.state.context


Context = Annotated[AppContext, Depends(_context)]

router = APIRouter(include_in_schema=False)


def register(app: FastAPI, context: AppContext) -> None:
    """Add /stripe/webhook, the Checkout return pages and the fix links of failed recharges
    (the handlers read `context` from `app.state`, where `create_app` put it)."""
    app.state.context = context
    app.include_router(router)


@router.post("/stripe/webhook")
async def stripe_webhook(request: Request, context: Context) -> Response:
    """A Stripe event: 200 once acted on (or ignored, or a duplicate), 400 when it is not a
    signed Stripe event creditbot can read, 503 when Stripe should send it again."""
    secret = context.settings.stripe_webhook_secret
    if not secret:
        return error_response(
            503, "stripe_not_configured", "Stripe webhooks are off: set STRIPE_WEBHOOK_SECRET."
        )
    payload = await request.body()  # the raw bytes Stripe signed, at most the route's limit
    try:
        event = read_event(
            payload, request.headers.get("stripe-signature", ""), secret, TOLERANCE_SECONDS
        )
    except EventRefused as refused:
        log.warning("refused a Stripe webhook: %s", refused.message)
        metrics.count_stripe_event("unreadable", "refused")
        return error_response(400, refused.code, refused.message)
    try:
        outcome = await run_in_threadpool(
            stripe_gateway.handle_event, context, event.id, event.type, event.object
        )
    except LedgerError as exc:
        log.error("Stripe event %s (%s) refused: %s", event.id, event.type, exc)
        metrics.count_stripe_event(event.type, "refused")
        return error_response(400, exc.code, str(exc))
    except stripe.StripeError as exc:
        if not webhooks.unknown_object(exc):
            # Re-reading the object failed: answer 5xx so Stripe sends the event again.
            log.error("Stripe event %s not processed: %s", event.id, exc)
            metrics.count_stripe_event(event.type, "retry")
            return error_response(
                503, "stripe_unavailable", "Stripe could not be asked: retry.", _RETRY
            )
        outcome = await run_in_threadpool(
            webhooks.give_up_on_unknown_object, context, event.id, event.type, event.created
        )
        if outcome is None:  # a bounded retry: Stripe is asked again for a while
            log.warning("Stripe event %s: Stripe does not know its object (yet)", event.id)
            metrics.count_stripe_event(event.type, "retry")
            return error_response(
                503,
                "unknown_object",
                "Stripe does not know this event's object: send it again. After "
                f"{webhooks.UNKNOWN_OBJECT_RETRY_SECONDS} s it is recorded and acknowledged.",
                _RETRY,
            )
    metrics.count_stripe_event(event.type, outcome)
    log.info("Stripe event %s (%s): %s", event.id, event.type, outcome)
    return JSONResponse({"received": True, "outcome": outcome})


@router.get("/stripe/checkout/success")
def checkout_success() -> HTMLResponse:
    return _page(
        "Thank you",
        "Stripe has your payment details. Your credits appear in Slack as soon as Stripe "
        "confirms the payment; you can close this page.",
    )


@router.get("/stripe/checkout/cancel")
def checkout_cancel() -> HTMLResponse:
    return _page("Payment cancelled", "Nothing was charged. You can close this page.")


@router.get("/stripe/portal/return")
def portal_return() -> HTMLResponse:
    return _page("All set", "Changes made on Stripe's page are saved. You can close this page.")


@router.get("/stripe/fix/{key}")
def fix_link_retired(key: str) -> HTMLResponse:
    """The address failed recharges record. It used to open a Stripe page for anyone who
    had it (it was posted in the alert channel), so it opens nothing now, for any key, and
    says where the fix is."""
    return _page(
        "Fix the payment in Slack",
        "This link no longer opens a payment page. To fix a failed auto-recharge, a billing"
        " admin presses Fix the payment on the alert in Slack, or Replace card in the"
        " auto-recharge settings (from /balance). The Stripe page it opens is theirs alone"
        " and expires within the hour.",
        status=410,
    )
