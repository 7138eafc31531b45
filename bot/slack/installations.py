"""Where OAuth installs keep their tokens: slack_sdk's SQLAlchemy installation store on
creditbot's database, with every token encrypted at rest (CREDITBOT_ENCRYPTION_KEYS,
ledger/slack_tokens.py). A workspace installing the app for the first time gets its own
account."""

from __future__ import annotations

import logging

from slack_sdk.oauth.installation_store.models.installation import Installation
from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore
from sqlalchemy.orm import Session

from bot.context import AppContext, secrets_cipher
from ledger.db import transaction
from ledger.models import Account
from ledger.slack_tokens import (
    ENV,
    TOKEN_COLUMNS,
    EncryptedToken,
    EncryptionKeyError,
    TokenCipher,
    key_problem,
)
from ledger.slack_workspaces import account_for_install, forget_uninstall

log = logging.getLogger(__name__)


def token_cipher(context: AppContext) -> TokenCipher | None:
    """The cipher for CREDITBOT_ENCRYPTION_KEYS (None when it is not set)."""
    return secrets_cipher(context)


class CreditbotInstallationStore(SQLAlchemyInstallationStore):
    """slack_sdk's store, its token columns encrypted, and an account for each newly
    installed workspace. The store's own queries run unchanged: its table objects read
    and write the token columns through `EncryptedToken`."""

    def __init__(self, client_id: str, context: AppContext, cipher: TokenCipher) -> None:
        super().__init__(client_id=client_id, engine=context.engine, logger=log)
        self._context = context
        for table in (self.installations, self.bots):
            for name in TOKEN_COLUMNS[table.name]:
                table.c[name].type = EncryptedToken(cipher)

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
    cipher = token_cipher(context)
    if cipher is None:
        raise EncryptionKeyError(f"OAuth installs keep their Slack tokens encrypted: set {ENV}.")
    return CreditbotInstallationStore(context.settings.slack_client_id, context, cipher)


def encryption_key_problem(context: AppContext) -> str | None:
    """Why the stored Slack tokens cannot be used (no key, or not the key that encrypted
    them), in one line; None when all is well. `creditbot serve` checks it first."""
    try:
        cipher = token_cipher(context)
    except EncryptionKeyError as exc:
        return str(exc)
    with context.engine.connect() as connection:
        return key_problem(connection, cipher)
