"""What writers read before they post: the account locked, the entry a key already made,
and a charge's whole state in one locked read."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger.errors import UnknownAccount
from ledger.journal import _sql, batch
from ledger.journal._driver import connection
from ledger.models import Account, Entry
from ledger.policy import Snapshot


def lock_account(session: Session, account_id: int) -> Account:
    """The account, locked until the transaction ends. Every balance change takes this lock
    first, so concurrent changes to one account queue instead of overwriting each other."""
    account = session.execute(
        select(Account)
        .where(Account.id == account_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if account is None:
        raise UnknownAccount(f"No account {account_id}.")
    return account


def find_entry(session: Session, account_id: int, idempotency_key: str) -> Entry | None:
    return session.execute(
        select(Entry).where(
            Entry.account_id == account_id, Entry.idempotency_key == idempotency_key
        )
    ).scalar_one_or_none()


def read_for_charge(
    session: Session, account_id: int, agent_id: int, idempotency_key: str
) -> tuple[Snapshot, int | None] | None:
    """The agent and its account as a charge decides on them, with the account locked until
    the transaction ends (like `lock_account`), and the id of the entry that already holds
    `idempotency_key`. None when the account has no such agent.

    In a writer's batch (ledger/journal/batch.py) the batch's first charge reads and holds
    all its accounts at once (`Batch.read_ahead`; on PostgreSQL with the batch's
    idempotency keys): the next charges decide on the snapshot the ones before left,
    without a read. A key the batch looked up is answered from memory; any other is checked
    when the gate writes its entry (`KeyTaken`).
    """
    conn = connection(session)
    held = batch.current(conn)
    if held is not None and not held.holds:
        held = None
    if held is not None:
        snapshot = held.snapshot(account_id, agent_id)
        if snapshot is None and not held.read:
            held.read_ahead(conn, account_id)
            snapshot = held.snapshot(account_id, agent_id)
        if snapshot is not None:
            state, entry_id = held.key_state(conn, account_id, idempotency_key)
            if state != "claimed":
                return snapshot, entry_id
            held.flush(conn)  # claimed by a charge before: write its entry, then read it
        account = held.accounts.get(account_id)
        if account is not None:
            if account.complete:  # every agent of the account was read: not one of them
                return None
            held.flush(conn)  # held for another agent: read it as written
    row = _sql.READ_FOR_CHARGE.one_or_none(
        conn, {"account_id": account_id, "agent_id": agent_id, "key": idempotency_key}
    )
    if row is None:
        return None
    snapshot = Snapshot._make(row[:-1])
    if held is not None and row[-1] is None:
        held.hold(account_id, snapshot)
    return snapshot, row[-1]
