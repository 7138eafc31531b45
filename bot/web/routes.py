"""The billing page's handlers: sign in with a link from Slack, the page, its chart and
statements, and the forms (top up, auto-recharge, agent settings) for billing admins.

A form answers like the Slack modal it mirrors: the same ledger function, the same rule,
the same message beside the same field (the page comes back with the error and what was
typed, status 422); a saved form redirects back to the page (303), so reloading it does
not submit again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from bot import stripe as stripe_gateway
from bot.charts import usage_chart_png
from bot.context import AppContext
from bot.forms import AUTO_RECHARGE_FIELDS, auto_recharge_fields, recharge_target_field
from bot.http.usage_routes import MONTH, statement_response
from bot.slack.blocks.base import BEHAVIOURS, failure_reason
from bot.usage_summary import load_usage_summary
from bot.web.page import HERE, Form, render_message, render_page
from bot.web.session import (
    clear_session_cookie,
    current_session,
    session_token,
    set_session_cookie,
)
from ledger.accounts import get_account
from ledger.agents import parse_limit, update_agent
from ledger.audit import Actor
from ledger.auto_recharge import update_auto_recharge
from ledger.budget import parse_budget, set_budget
from ledger.db import transaction
from ledger.errors import FieldError, InvalidInput, LedgerError, NoSavedCard, NotFound
from ledger.topups import parse_topup
from ledger.web_access import SignedIn, SignInRefused, csrf_ok, redeem_sign_in_link, sign_out

router = APIRouter(prefix="/billing", include_in_schema=False)

#: Largest form body read (the page's forms are a few hundred bytes).
MAX_FORM_BYTES = 16 * 1024
SAVED = {
    "auto-recharge": "Auto-recharge settings saved.",
    "agent": "Agent settings saved.",
}
NOT_SIGNED_IN = (
    "Open the billing page from Slack: type /balance or /usage and press Open billing page. "
    "Each link works once, for a few minutes."
)
ADMINS_ONLY = (
    "Only billing admins can do this: workspace admins and owners, and the billing admins "
    "the account names. Ask one of them, or to make you a billing admin."
)
HEADERS = {"Cache-Control": "no-store", "X-Frame-Options": "DENY"}


def _context(request: Request) -> AppContext:
    return request.app.state.context


Context = Annotated[AppContext, Depends(_context)]


def page(html: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(html, status_code=status, headers=HEADERS)


def message(
    title: str, text: str, status: int, link: tuple[str, str] | None = None
) -> HTMLResponse:
    return page(render_message(title, text, link=link), status)


def signed_for(context: AppContext, request: Request, account_id: int) -> SignedIn | Response:
    """The browser's session for this account's page, or the answer that refuses it."""
    signed = current_session(context, request)
    if signed is None:
        return message("Sign in from Slack", NOT_SIGNED_IN, 401)
    if signed.account_id != account_id:
        return message(
            "Another account",
            "You are signed in to another account's billing page. Open this one from its "
            "own Slack workspace.",
            403,
        )
    return signed


@router.get("/static/billing.css")
def stylesheet() -> FileResponse:
    return FileResponse(
        HERE / "static" / "billing.css",
        media_type="text/css",
        headers={"Cache-Control": "public, max-age=3600"},
    )


@router.get("/{account_id}/sign-in/{token}")
def sign_in(account_id: int, token: str, context: Context) -> Response:
    if len(token) > 100:
        return message("Sign-in refused", "This sign-in link is not valid.", 403)
    try:
        session_token_, _ = transaction(
            context.sessions, lambda s: redeem_sign_in_link(s, account_id, token)
        )
    except SignInRefused as exc:
        return message("Sign-in refused", str(exc), 403)
    response = RedirectResponse(f"/billing/{account_id}", status_code=303, headers=HEADERS)
    set_session_cookie(response, session_token_)
    return response


@router.get("/{account_id}")
def billing_page(account_id: int, request: Request, context: Context, saved: str = "") -> Response:
    signed = signed_for(context, request, account_id)
    if isinstance(signed, Response):
        return signed
    return page(render_page(context, signed, notice=SAVED.get(saved)))


@router.get("/{account_id}/chart.png")
def chart(account_id: int, request: Request, context: Context) -> Response:
    signed = signed_for(context, request, account_id)
    if isinstance(signed, Response):
        return signed
    png = usage_chart_png(load_usage_summary(context, account_id))
    return Response(png, media_type="image/png", headers={"Cache-Control": "private, no-store"})


@router.get("/{account_id}/statement.csv")
def statement(account_id: int, request: Request, context: Context, month: str = "") -> Response:
    signed = signed_for(context, request, account_id)
    if isinstance(signed, Response):
        return signed
    if not MONTH.match(month):
        return message("No such month", "Choose a month for the statement.", 422)
    return statement_response(context, account_id, month)


async def _form(request: Request) -> dict[str, str] | None:
    """The submitted fields, or None for a body too large to be one of our forms."""
    declared = request.headers.get("content-length", "")
    if not declared.isdigit() or int(declared) > MAX_FORM_BYTES:
        return None
    form = await request.form(max_files=0, max_fields=20)
    return {k: v for k, v in form.items() if isinstance(v, str)}


Action = Callable[[AppContext, SignedIn, dict[str, str]], Response]


async def _submit(
    request: Request, context: AppContext, account_id: int, action: Action, *, edits: bool = True
) -> Response:
    """Who may submit (a signed-in billing admin of this account), with the page's own
    CSRF token, then `action` on the fields."""
    fields = await _form(request)
    if fields is None:
        return message("Not accepted", "That form is too large.", 413)
    signed = await run_in_threadpool(signed_for, context, request, account_id)
    if isinstance(signed, Response):
        return signed
    if not csrf_ok(signed, fields.get("csrf")):
        back = ("Back to the billing page", f"/billing/{account_id}")
        return message("Form expired", "This form has expired: open the page again.", 403, back)
    if edits and not signed.can_edit:
        return message("Not allowed", ADMINS_ONLY, 403, ("Back", f"/billing/{account_id}"))
    return await run_in_threadpool(action, context, signed, fields)


def _refused(context: AppContext, signed: SignedIn, form: Form) -> Response:
    return page(render_page(context, signed, form=form), 422)


def _saved(signed: SignedIn, what: str) -> Response:
    return RedirectResponse(
        f"/billing/{signed.account_id}?saved={what}", status_code=303, headers=HEADERS
    )


def top_up(context: AppContext, signed: SignedIn, fields: dict[str, str]) -> Response:
    """Amount -> a Stripe Checkout page, checked like /topup (rule 8)."""
    text = fields.get("amount", "").strip()
    form = Form("topup", {"amount": text})
    try:
        amount = transaction(
            context.sessions, lambda s: parse_topup(get_account(s, signed.account_id), text)
        )
        url = stripe_gateway.create_topup_checkout(
            context, signed.account_id, amount, signed.slack_user_id
        )
    except LedgerError as exc:
        form.errors["amount"] = str(exc)
        return _refused(context, signed, form)
    except Exception as exc:  # noqa: BLE001 - any Stripe failure is told, not swallowed
        form.errors["amount"] = f"Could not open the payment page: {failure_reason(exc)}"
        return _refused(context, signed, form)
    return RedirectResponse(url, status_code=303, headers=HEADERS)


#: Auto-recharge needs a card to charge; on this page a top-up is how one is saved.
SAVE_A_CARD_FIRST = "Save a card first: a top-up below saves the card it is paid with."


def save_auto_recharge(context: AppContext, signed: SignedIn, fields: dict[str, str]) -> Response:
    """The auto-recharge form, with the auto-recharge modal's rules and messages."""
    texts = {name: fields.get(name, "") for name in (*AUTO_RECHARGE_FIELDS, "target")}
    enabled = fields.get("enabled") == "on"
    mode = fields.get("mode") or "add"
    form = Form("auto-recharge", {**texts, "enabled": "on" if enabled else "", "mode": mode})
    account = transaction(context.sessions, lambda s: get_account(s, signed.account_id))
    values, form.errors = auto_recharge_fields(texts, account.currency)
    target, target_error = recharge_target_field(texts["target"], account.currency)
    if target_error:
        form.errors["target"] = target_error
    if form.errors:
        return _refused(context, signed, form)
    try:
        transaction(
            context.sessions,
            lambda s: update_auto_recharge(
                s,
                signed.account_id,
                enabled=enabled,
                threshold_minor=values["threshold"] or 0,
                amount_minor=values["amount"] or 0,
                monthly_cap_minor=values["monthly_cap"],
                mode=mode,
                target_minor=target or 0,
                actor=Actor.web(signed.slack_user_id),
            ),
        )
    except NoSavedCard:
        form.errors["enabled"] = SAVE_A_CARD_FIRST
        return _refused(context, signed, form)
    except FieldError as exc:
        form.errors[exc.field] = str(exc)
        return _refused(context, signed, form)
    return _saved(signed, "auto-recharge")


def save_agent(
    context: AppContext, signed: SignedIn, fields: dict[str, str], agent_id: int
) -> Response:
    """An agent's behaviour and monthly limit, with the agent settings modal's rules."""
    behaviour, text = fields.get("behaviour", ""), fields.get("limit", "").strip()
    form = Form(f"agent-{agent_id}", {"behaviour": behaviour, "limit": text})
    if behaviour not in BEHAVIOURS:
        form.errors["behaviour"] = "Choose what the agent does when plan credits run out."
    try:
        limit = parse_limit(text)
    except InvalidInput as exc:
        form.errors["limit"] = str(exc)
    if form.errors:
        return _refused(context, signed, form)
    try:
        transaction(
            context.sessions,
            lambda s: update_agent(
                s,
                signed.account_id,
                agent_id,
                behaviour=behaviour,
                monthly_limit=limit,
                actor=Actor.web(signed.slack_user_id),
            ),  # fmt: skip
        )
    except NotFound as exc:
        return message("No such agent", str(exc), 404, ("Back", f"/billing/{signed.account_id}"))
    except InvalidInput as exc:
        form.errors["limit"] = str(exc)
        return _refused(context, signed, form)
    return _saved(signed, "agent")


def save_budget(context: AppContext, signed: SignedIn, fields: dict[str, str]) -> Response:
    """The monthly budget, with the Budget and alerts modal's rule and message."""
    text = fields.get("budget", "").strip()
    form = Form("budget", {"budget": text})
    try:
        budget = parse_budget(text)
        transaction(
            context.sessions,
            lambda s: set_budget(
                s, signed.account_id, budget, actor=Actor.web(signed.slack_user_id)
            ),
        )
    except FieldError as exc:
        form.errors["budget"] = str(exc)
        return _refused(context, signed, form)
    return _saved(signed, "budget")


def end_session(context: AppContext, signed: SignedIn, fields: dict[str, str]) -> Response:
    del fields
    response = message("Signed out", "You are signed out of the billing page.", 200)
    clear_session_cookie(response)
    return response


@router.post("/{account_id}/top-up")
async def top_up_form(account_id: int, request: Request, context: Context) -> Response:
    return await _submit(request, context, account_id, top_up)


@router.post("/{account_id}/auto-recharge")
async def auto_recharge_form(account_id: int, request: Request, context: Context) -> Response:
    return await _submit(request, context, account_id, save_auto_recharge)


@router.post("/{account_id}/budget")
async def budget_form(account_id: int, request: Request, context: Context) -> Response:
    return await _submit(request, context, account_id, save_budget)


@router.post("/{account_id}/agents/{agent_id}")
async def agent_form(
    account_id: int, agent_id: int, request: Request, context: Context
) -> Response:
    return await _submit(
        request, context, account_id, lambda c, s, f: save_agent(c, s, f, agent_id)
    )


@router.post("/{account_id}/sign-out")
async def sign_out_form(account_id: int, request: Request, context: Context) -> Response:
    token = session_token(request)
    answer = await _submit(request, context, account_id, end_session, edits=False)
    if token and answer.status_code == 200:
        await run_in_threadpool(transaction, context.sessions, lambda s: sign_out(s, token))
    return answer
