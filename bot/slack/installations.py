"""Where OAuth installs keep their bot tokens: Bolt's SQLAlchemy installation store on
creditbot's database. A workspace installing the app for the first time gets its own
account."""

from __future__ import annotations

import logging

from slack_sdk.oauth.installation_store.models.installation import Installation
from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore
from sqlalchemy.orm import Session

from bot.context import AppContext
from ledger.db import transaction
from ledger.models import Account
from ledger.slack_workspaces import account_for_install, forget_uninstall

log = logging.getLogger(__name__)


class CreditbotInstallationStore(SQLAlchemyInstallationStore):
    """Bolt's store, and an account for each newly installed workspace."""

    def __init__(self, client_id: str, context: AppContext) -> None:
        super().__init__(client_id=client_id, engine=context.engine, logger=log)
        self._context = context

    def save(self, installation: Installation) -> None:
        super().save(installation)
        team_id = installation.team_id
        if team_id:

            def work(session: Session) -> tuple[Account, bool]:
                forget_uninstall(session, team_id)  # installed again: post there again
                return account_for_install(session, team_id, installation.team_name)

            account, created = transaction(self._context.sessions, work)
            if created:
                log.info("workspace %s installed: new account %s", team_id, account.id)


def installation_store(context: AppContext) -> CreditbotInstallationStore:
    return CreditbotInstallationStore(context.settings.slack_client_id, context)
