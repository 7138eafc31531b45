"""The charge policy: the brief's rules 3-7 and 10 as pure functions, with no session and no
I/O. Given what an agent and its account hold, `decide` says where a charge's credits come
from or why it is refused, whether the agent stops or resumes, which alerts fire and
whether to ask for a recharge. The other rules about agents (what an agent may still spend,
why it stops, when it resumes, its month spend), the account's monthly budget, and when an
alert level is crossed or a low balance recovers live here too, so each rule has one place.

Amounts are milli-credits. Writers read a `Snapshot`, call these, and apply the outcome.

The account budget (docs/api.md "Account budget") caps what all agents together spend in
a calendar month, plan credits and wallet alike: a charge it cannot cover is refused with
`account_budget`, and the charge that uses it up stops every agent.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, NamedTuple

from ledger.outbox import RECHARGE_REQUESTED, Alert
from ledger.units import money_to_credits

#: An outbox message: its kind (an `Alert`, or the recharge request) and its payload.
Message = tuple[str, dict[str, Any]]


class Snapshot(NamedTuple):
    """What a charge decides on: the agent and its account, read under the account lock.

    The field order is the order of the journal's locked read (ledger/journal/_sql.py).
    """

    agent_id: int
    agent_name: str
    status: str
    stop_reason: str | None
    behaviour: str
    monthly_limit: int | None
    month: str
    month_spend: int
    plan_balance: int
    wallet_balance: int
    plan_grant: int
    message_rate: int
    call_minute_rate: int
    timezone: str
    plan_alert_levels: str
    wallet_alert_levels: str
    limit_alert_levels: str
    budget_alert_levels: str
    plan_exhausted_alerted: bool
    plan_low_alerted: bool
    wallet_low_alerted: bool
    auto_recharge_enabled: bool
    auto_recharge_paused: bool
    auto_recharge_threshold_minor: int
    recharge_requested: bool
    currency: str
    credits_per_unit: int
    monthly_budget: int | None
    account_month: str
    account_month_spend: int


class StatusChange(NamedTuple):
    """An agent's new status: `stopped` with its reason, or `active` (reason None)."""

    status: str
    reason: str | None


RESUMED = StatusChange("active", None)


class Decision(NamedTuple):
    """What a charge does. Nothing in it has happened yet: the caller posts and applies it."""

    price: int
    from_plan: int
    from_wallet: int
    #: Why the charge is refused (a stop reason), or None when it is taken.
    refused: str | None
    #: The calendar month the charge falls in, and the agent's month spend to record for it
    #: (None: leave it as it is).
    month: str
    month_spend: int | None
    #: The agent's status change, or None.
    change: StatusChange | None
    #: The agent's status once the charge is done.
    status: str
    #: Outbox messages in the order they fire: alerts, and the recharge request.
    messages: tuple[Message, ...]
    #: Account flags to set: "plan exhausted" was alerted; a recharge was asked for.
    flag_plan_exhausted: bool
    request_recharge: bool
    #: The account's month spend to record (None: leave it as it is).
    account_spend: int | None = None
    #: The charge used up the account's budget: every agent stops with `account_budget`.
    stop_all: bool = False
    #: A plan-low or wallet-low alert fired (a later lift above every level "recovers").
    flag_plan_low: bool = False
    flag_wallet_low: bool = False

    @property
    def allowed(self) -> bool:
        return self.refused is None


def spend_in(month: str, agent_month: str, month_spend: int) -> int:
    """The agent's spend that counts in `month`: a new calendar month starts at zero (rule 7)."""
    return month_spend if agent_month == month else 0


def limit_room(monthly_limit: int | None, month_spend: int) -> int | None:
    """What the agent's monthly limit still lets it spend, or None without a limit."""
    return None if monthly_limit is None else max(0, monthly_limit - month_spend)


def plan_room(plan: int, monthly_limit: int | None, spend: int) -> int:
    """Plan credits the agent may still take: all of them, or what its limit leaves (rule 7)."""
    under_limit = limit_room(monthly_limit, spend)
    return plan if under_limit is None else min(plan, under_limit)


def room(plan: int, wallet: int, behaviour: str, monthly_limit: int | None, spend: int) -> int:
    """What the agent may still spend from the sources its settings allow (rules 3 and 7):
    plan credits up to its limit, then the wallet only for a `use_balance` agent."""
    return plan_room(plan, monthly_limit, spend) + (wallet if behaviour == "use_balance" else 0)


def short_reason(behaviour: str, under_limit: int | None, need: int) -> str:
    """Why an agent cannot pay `need` (rule 5). A `use_balance` agent stops only when the
    wallet is short too; a `stop` agent stops at its limit first, else at the plan."""
    if behaviour == "use_balance":
        return "wallet_empty"
    return "monthly_limit" if under_limit is not None and under_limit < need else "plan_exhausted"


def resumes(
    plan: int,
    wallet: int,
    behaviour: str,
    monthly_limit: int | None,
    spend: int,
    budget_left: int | None = None,
) -> bool:
    """A stopped agent whose reason cleared resumes when it can pay for work again (rule 6)
    and the account's budget has room left."""
    if budget_left is not None and budget_left <= 0:
        return False
    return room(plan, wallet, behaviour, monthly_limit, spend) > 0


def spend_after_refund(
    agent_month: str, month_spend: int, charge_month: str, amount: int
) -> int | None:
    """The agent's month spend once `amount` of a charge made in `charge_month` comes back,
    or None: a refund of an earlier month's charge leaves this month's spend alone."""
    return max(0, month_spend - amount) if agent_month == charge_month else None


def agent_stopped(agent_id: int, agent_name: str, reason: str) -> Message:
    return Alert.AGENT_STOPPED, {"agent_id": agent_id, "agent_name": agent_name, "reason": reason}


def agent_resumed(agent_id: int, agent_name: str, previous: str | None, cause: str) -> Message:
    """`cause` says what cleared the reason: 'renewal', 'wallet_credit', 'new_month',
    'settings' or 'refund'."""
    payload = {
        "agent_id": agent_id,
        "agent_name": agent_name,
        "previous_reason": previous,
        "cause": cause,
    }
    return Alert.AGENT_RESUMED, payload


def budget_left(s: Snapshot, month: str) -> int | None:
    """What the account's budget still lets all agents spend in `month`, or None."""
    return limit_room(s.monthly_budget, spend_in(month, s.account_month, s.account_month_spend))


def decide(s: Snapshot, price: int, month: str) -> Decision:
    """Decide a charge of `price` milli-credits in calendar month `month` (pay before work).

    Within the account's budget; plan credits first; the rest from the wallet only for a
    `use_balance` agent; all or nothing. A refused charge stops the agent with its reason; a
    stopped agent stays refused until its reason clears (a new month clears a monthly
    limit or `account_budget`). Each alert fires when one of its
    levels is crossed, so it fires once and re-arms when the condition clears.
    """
    new_month = s.month != month
    spend = spend_in(month, s.month, s.month_spend)
    account_spend = spend_in(month, s.account_month, s.account_month_spend)
    budget_room = limit_room(s.monthly_budget, account_spend)
    plan, wallet = s.plan_balance, s.wallet_balance
    messages: list[Message] = []
    flag_exhausted = False

    reason = s.stop_reason if s.status == "stopped" else None
    if reason == "monthly_limit" and new_month:
        reason = None
    fresh_budget = new_month or s.account_month != month or s.monthly_budget is None
    if reason == "account_budget" and fresh_budget:
        reason = None  # raising the budget or a refund resumes agents then and there
    from_plan = from_wallet = 0
    if reason is None:
        may_take = plan_room(plan, s.monthly_limit, spend)
        if budget_room is not None and price > budget_room:
            reason = "account_budget"
        elif s.behaviour == "use_balance":
            from_plan = min(price, may_take)
            from_wallet = price - from_plan
            if from_wallet > wallet:
                reason, from_plan, from_wallet = "wallet_empty", 0, 0
        elif price <= may_take:
            from_plan = price
        else:
            reason = short_reason(s.behaviour, limit_room(s.monthly_limit, spend), price)
        if plan < price and not s.plan_exhausted_alerted:
            flag_exhausted = True
            messages.append((Alert.PLAN_EXHAUSTED, {"plan_balance": plan}))

    if reason is not None:
        change = None
        if s.status != "stopped" or s.stop_reason != reason:
            change = StatusChange("stopped", reason)
            messages.append(agent_stopped(s.agent_id, s.agent_name, reason))
        return Decision(
            price, 0, 0, reason, month, 0 if new_month else None, change, "stopped",
            tuple(messages), flag_exhausted, request_recharge=False,
        )  # fmt: skip

    new_plan, new_wallet, new_spend = plan - from_plan, wallet - from_wallet, spend + price
    new_account_spend = account_spend + price
    change = None
    if s.status == "stopped":  # a new month, or room in the budget, cleared its reason
        change = RESUMED
        cause = "new_month" if s.stop_reason == "monthly_limit" or new_month else "budget"
        messages.append(agent_resumed(s.agent_id, s.agent_name, s.stop_reason, cause))

    plan_low = plan_low_crossed(s.plan_alert_levels, s.plan_grant, plan, new_plan)
    if from_plan and plan_low is not None:
        messages.append((Alert.PLAN_LOW, {"plan_balance": new_plan, "plan_grant": s.plan_grant}))
    if from_plan and new_plan == 0 and not flag_exhausted and not s.plan_exhausted_alerted:
        flag_exhausted = True
        messages.append((Alert.PLAN_EXHAUSTED, {"plan_balance": 0}))
    wallet_low = wallet_low_crossed(s.wallet_alert_levels, wallet, new_wallet)
    if from_wallet and wallet_low is not None:
        messages.append((Alert.WALLET_LOW, {"wallet_balance": new_wallet, "threshold": wallet_low}))
    limit = s.monthly_limit
    if limit is not None:
        messages += limit_alerts(s, limit, spend, new_spend)
    budget = s.monthly_budget
    reached = budget is not None and account_spend < budget <= new_account_spend
    if budget is not None:
        level = spend_level_crossed(s.budget_alert_levels, budget, account_spend, new_account_spend)
        if level is not None and level < 100:
            messages.append(
                (Alert.BUDGET_LEVEL,
                 {"month_spend": new_account_spend, "budget": budget, "level": level})
            )  # fmt: skip
        if reached:
            messages.append(
                (Alert.BUDGET_REACHED, {"month_spend": new_account_spend, "budget": budget})
            )
    recharge = (
        from_wallet > 0
        and s.auto_recharge_enabled
        and not s.auto_recharge_paused
        and not s.recharge_requested
        and new_wallet < recharge_threshold(s)
    )
    if recharge:
        messages.append((RECHARGE_REQUESTED, {"wallet_balance": new_wallet}))

    # Pay before work, and nothing past what the agent may spend: once nothing is left for
    # it, it stops now rather than on its next request. A used-up budget stops everyone
    # (the budget alert says so; the caller stops the other agents).
    status = "active"
    if reached:
        status, change = "stopped", StatusChange("stopped", "account_budget")
    elif room(new_plan, new_wallet, s.behaviour, limit, new_spend) == 0:
        stop = short_reason(s.behaviour, limit_room(limit, new_spend), 1)
        status, change = "stopped", StatusChange("stopped", stop)
        messages.append(agent_stopped(s.agent_id, s.agent_name, stop))
    return Decision(
        price, from_plan, from_wallet, None, month, new_spend, change, status,
        tuple(messages), flag_exhausted, recharge, account_spend=new_account_spend,
        stop_all=reached, flag_plan_low=from_plan > 0 and plan_low is not None,
        flag_wallet_low=from_wallet > 0 and wallet_low is not None,
    )  # fmt: skip


# --- alert levels ---------------------------------------------------------------------------

#: An agent's limit levels that keep the alert kinds older versions wrote.
_LIMIT_KINDS = {80: Alert.LIMIT_80, 100: Alert.LIMIT_100}


@lru_cache(maxsize=1024)
def levels(text: str) -> tuple[int, ...]:
    """Alert levels as the account stores them ('50,20,5'), in the order given; '' is none.
    (Cached: the charge path reads them with every charge.)"""
    return tuple(int(part) for part in text.split(",") if part.strip())


def plan_low_crossed(text: str, grant: int, before: int, after: int) -> int | None:
    """The lowest plan-low level (% of the grant left) that plan credits going from
    `before` to `after` reached, or None. A level fires at or below its share."""
    crossed = [p for p in levels(text) if before > grant * p // 100 >= after]
    return min(crossed, default=None)


def wallet_low_crossed(text: str, before: int, after: int) -> int | None:
    """The lowest wallet-low level (milli-credits) the wallet fell below, or None."""
    crossed = [c for c in levels(text) if before >= c > after]
    return min(crossed, default=None)


def spend_level_crossed(text: str, cap: int, before: int, after: int) -> int | None:
    """The highest level (% of `cap`) that a spend going from `before` to `after` reached,
    or None: for agents' limits and the account's budget."""
    crossed = [p for p in levels(text) if before * 100 < cap * p <= after * 100]
    return max(crossed, default=None)


def limit_alerts(s: Snapshot, limit: int, before: int, after: int) -> list[Message]:
    """The agent's limit alerts for a spend from `before` to `after`: the highest level it
    reached below 100% (80% keeps its own kind), and reaching the limit (100%). One per kind
    per charge, however many levels one charge passes."""
    reached = {"agent_id": s.agent_id, "agent_name": s.agent_name, "month_spend": after,
               "limit": limit}  # fmt: skip
    found: dict[str, Message] = {}
    crossed = [p for p in levels(s.limit_alert_levels) if before * 100 < limit * p <= after * 100]
    for level in sorted(crossed):
        kind = _LIMIT_KINDS.get(level, Alert.LIMIT_LEVEL)
        payload = dict(reached) if level in _LIMIT_KINDS else {**reached, "level": level}
        found[kind] = (kind, payload)
    order = (Alert.LIMIT_LEVEL, Alert.LIMIT_80, Alert.LIMIT_100)
    return [found[kind] for kind in order if kind in found]


def plan_recovered(text: str, grant: int, plan: int, alerted: bool) -> bool:
    """Plan credits lifted above every plan-low level since one fired."""
    return alerted and all(plan > grant * p // 100 for p in levels(text))


def wallet_recovered(text: str, wallet: int, alerted: bool) -> bool:
    """The wallet lifted to every wallet-low level or above since one fired."""
    return alerted and all(wallet >= c for c in levels(text))


def recharge_threshold(s: Snapshot) -> int:
    """The auto-recharge threshold, in milli-credits of the wallet."""
    return money_to_credits(s.auto_recharge_threshold_minor, s.currency, s.credits_per_unit)
