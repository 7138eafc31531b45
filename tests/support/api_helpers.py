"""Shared set-up for the agent API tests: an app over a test database, keys, a client."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from bot.config import Settings
from bot.context import AppContext
from bot.http.app import create_app
from ledger.accounts import AccountSettings, create_account
from ledger.api_keys import create_key
from ledger.db import make_engine, transaction
from ledger.models import Account, Agent, Call, Entry, Transfer
from ledger.units import credits


@dataclass
class Api:
    app: FastAPI
    client: TestClient
    context: AppContext
    secret: str

    @property
    def sessions(self) -> sessionmaker[Session]:
        return self.context.sessions

    def auth(self, secret: str | None = None, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {secret or self.secret}", **extra}

    def post(self, path: str, json: object, key: str | None = None, **kw: object):
        headers = self.auth(**({"Idempotency-Key": key} if key else {}))
        headers.update(kw.pop("headers", {}) or {})  # type: ignore[arg-type]
        return self.client.post(path, json=json, headers=headers, **kw)

    def get(self, path: str, **kw: object):
        return self.client.get(path, headers=self.auth(), **kw)


def make_api(url: str, account_id: int) -> Api:
    context = AppContext(
        settings=Settings(database_url=url, run_scheduler=False), engine=make_engine(url)
    )
    secret = transaction(context.sessions, lambda s: create_key(s, account_id, "tests")).secret
    app = create_app(context)
    return Api(app, TestClient(app), context, secret)


def other_account(sessions: sessionmaker[Session]) -> dict[str, object]:
    """A second account with its own agent and key."""

    def work(s: Session) -> dict[str, object]:
        from ledger.agents import add_agent

        account = create_account(s, AccountSettings(name="Globex", plan_credits=credits(100)))
        agent = add_agent(s, account.id, "G")
        return {
            "account": account.id,
            "agent": agent.id,
            "secret": create_key(s, account.id, "g").secret,
        }

    return transaction(sessions, work)


def snapshot(sessions: sessionmaker[Session]) -> tuple:
    """Everything a request could change: balances, agents, the journal, calls."""

    def work(s: Session) -> tuple:
        return (
            tuple(s.execute(select(Account.id, Account.plan_balance, Account.wallet_balance))),
            tuple(
                s.execute(
                    select(
                        Agent.id,
                        Agent.name,
                        Agent.status,
                        Agent.stop_reason,
                        Agent.behaviour,
                        Agent.monthly_limit,
                        Agent.month_spend,
                    ).order_by(Agent.id)
                )
            ),
            s.execute(select(func.count()).select_from(Entry)).scalar_one(),
            s.execute(select(func.count()).select_from(Transfer)).scalar_one(),
            tuple(s.execute(select(Call.id, Call.status, Call.minutes_charged).order_by(Call.id))),
        )

    return transaction(sessions, work)
