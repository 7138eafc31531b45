"""The Stripe webhook, the Checkout success and cancel pages, and the fix links of failed
recharges: named handlers on a module-level router."""

from __future__ import annotations

import html
import logging
from typing import Annotated

import stripe
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from bot import stripe as stripe_gateway
from bot.context import AppContext
from ledger.db import transaction
from ledger.errors import LedgerError, NotFound
from ledger.recharges import get_recharge

log = logging.getLogger(__name__)

#: Stripe signs `t=<unix time>`; older signatures are refused (replays).
TOLERANCE_SECONDS = 300


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
    payload = await request.body()  # the raw bytes Stripe signed
    signature = request.headers.get("stripe-signature", "")
    secret = context.settings.stripe_webhook_secret
    if not secret:
        return JSONResponse({"error": "STRIPE_WEBHOOK_SECRET is not set"}, status_code=500)
    try:
        event = stripe.Webhook.construct_event(
            payload, signature, secret, tolerance=TOLERANCE_SECONDS
        )
    except (stripe.SignatureVerificationError, ValueError) as exc:
        log.warning("refused a Stripe webhook: %s", exc)
        return JSONResponse({"error": "invalid signature"}, status_code=400)
    data = event.to_dict()
    obj = (data.get("data") or {}).get("object") or {}
    try:
        outcome = await run_in_threadpool(
            stripe_gateway.handle_event, context, data["id"], data["type"], obj
        )
    except LedgerError as exc:
        log.error("Stripe event %s (%s) refused: %s", data["id"], data["type"], exc)
        return JSONResponse({"error": str(exc)}, status_code=400)
    except stripe.StripeError as exc:
        # Re-reading the object failed: answer 5xx so Stripe sends the event again.
        log.error("Stripe event %s not processed: %s", data["id"], exc)
        return JSONResponse({"error": "stripe unavailable, retry"}, status_code=503)
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


@router.get("/stripe/fix/{key}")
def fix_recharge(key: str, context: Context) -> Response:
    """The link of a failed recharge alert: a fresh Checkout page, made when clicked.
    A card that needs authentication pays the recharge on Checkout (which also saves
    the card again); a declined or missing card is replaced in setup mode."""
    try:
        recharge = transaction(context.sessions, lambda s: get_recharge(s, key))
    except NotFound:
        return _page("Link not found", "This link is not valid.", status=404)
    if recharge.status != "failed":
        return _page("Nothing to fix", "This recharge did not fail; nothing to do.")
    try:
        if recharge.reason == "authentication_required":
            url = stripe_gateway.create_topup_checkout(
                context, recharge.account_id, recharge.amount_minor, "fix-link"
            )
        else:
            url = stripe_gateway.create_card_checkout(context, recharge.account_id, "fix-link")
    except (LedgerError, stripe.StripeError) as exc:
        log.error("fix link %s failed: %s", key, exc)
        return _page("Try again later", "Stripe could not open a page just now.", 503)
    return RedirectResponse(url, status_code=303)
