"""/v1/audit: the account's settings changes, newest first (keys of the `admin` scope)."""

from __future__ import annotations

from fastapi import APIRouter, Query
from sqlalchemy.orm import Session

from bot.http.api.admin_schemas import AuditEventOut, AuditList
from bot.http.api.authentication import ApiKeyRoute
from bot.http.api.dependencies import CurrentAccount
from bot.http.api.errors import error_responses
from bot.http.api.schemas import MAX_ID
from ledger.audit import MAX_LIMIT, Actor, list_events

router = APIRouter(route_class=ApiKeyRoute)


def read_audit(
    session: Session, account_id: int, limit: int, before_id: int | None, *, actor: Actor
) -> AuditList:
    events = list_events(session, account_id, limit=limit, before_id=before_id)
    return AuditList(events=[AuditEventOut.of(e) for e in events])


@router.get(
    "/audit", response_model=AuditList, responses=error_responses(401, 403, 422),
    summary="Who changed which setting, from where, when, before and after (admin)",
)  # fmt: skip
async def get_audit(
    account: CurrentAccount,
    limit: int = Query(50, ge=1, le=MAX_LIMIT, description="How many, newest first."),
    before_id: int | None = Query(None, ge=1, le=MAX_ID, description="Page back past this id."),
) -> AuditList:
    return await account.admin(read_audit, limit, before_id)
