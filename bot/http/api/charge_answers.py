"""The answer to "may the agent do this work?": 200 with what it cost, or 402 with why not
(the runtime must not do the work; for a call, it hangs up).

Built as JSON bytes by orjson: the same bytes Starlette's JSONResponse writes (no spaces,
UTF-8 as it is) at a tenth of the cost, and a charge is the hot path. Its fields are all
integers, booleans and short strings the ledger already checked (orjson would write a NaN
as null where JSONResponse refuses it: there are no floats here).
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

from bot import metrics
from ledger.charges import Charge

_REFUSALS = {
    "plan_exhausted": "Plan credits are used up and this agent is set to stop.",
    "wallet_empty": "Plan credits and the wallet cannot pay for this work.",
    "monthly_limit": "This agent reached its monthly spending limit.",
    "account_budget": "The account reached its monthly budget: every agent is stopped until"
    " a billing admin raises it or the month ends.",
}


_REPLAYED = {"Idempotent-Replayed": "true"}


def _refusal(reason: str | None) -> dict[str, str]:
    reason = reason or "refused"
    return {"code": reason, "message": _REFUSALS.get(reason, "This work is refused.")}


def charge_answer(agent_id: int, result: Charge, **work: Any) -> Response:
    """The answer for `result`, the agent's charge; `work` says what was charged (the
    messages' quantity and direction, or the call and its minute)."""
    payload: dict[str, Any] = {
        "allowed": result.allowed,
        "reason": result.reason,
        "agent_id": agent_id,
        "amount_millicredits": result.amount,
        "from_plan_millicredits": result.from_plan,
        "from_wallet_millicredits": result.from_wallet,
        "plan_balance_millicredits": result.plan_balance,
        "wallet_balance_millicredits": result.wallet_balance,
        "agent_status": result.agent_status,
        "replayed": result.replayed,
        **work,
    }
    if not result.allowed:
        payload["error"] = _refusal(result.reason)
    # A call's answers name its minute; a message charge's do not.
    unit = "call_minute" if "minute" in work else "message"
    metrics.count_charge(unit, result.allowed, result.reason, result.replayed)
    return Response(
        orjson.dumps(payload),
        200 if result.allowed else 402,
        _REPLAYED if result.replayed else None,
        "application/json",
    )
