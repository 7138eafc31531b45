"""Slack OAuth tokens encrypted at rest

Revision ID: 0007
Revises: 0005
The token columns of slack_installations and slack_bots become TEXT (a Fernet token is
longer than the 200 characters they held), and the tokens already stored are encrypted
with the first of CREDITBOT_ENCRYPTION_KEYS (ledger/slack_tokens.py). With tokens stored
and no key, the migration stops before changing anything and says what to set.
"""

from __future__ import annotations

import os

import sqlalchemy as sa
from alembic import context, op

from ledger.slack_tokens import (
    ENV,
    TOKEN_COLUMNS,
    EncryptionKeyError,
    TokenCipher,
    decrypt_tokens,
    rotate_tokens,
    stored_tokens,
)

revision = "0007"
down_revision = "0005"
branch_labels = None
depends_on = None


def _cipher(doing: str) -> TokenCipher | None:
    """The keys `creditbot db upgrade` handed over, else the environment's; None when the
    database holds no token (nothing to do), an error when it does but there is no key."""
    if next(stored_tokens(op.get_bind()), None) is None:
        return None
    keys = context.config.attributes.get("encryption_keys") or os.environ.get(ENV, "")
    cipher = TokenCipher.from_setting(keys)
    if cipher is None:
        raise EncryptionKeyError(
            f"Slack installations hold tokens, and {doing} needs {ENV}: generate a key with"
            " `creditbot slack new-key`, set it, and run `creditbot db upgrade` again."
        )
    return cipher


def upgrade() -> None:
    cipher = _cipher("encrypting them")  # before any change: a refusal leaves all as it was
    for table, columns in TOKEN_COLUMNS.items():
        with op.batch_alter_table(table) as batch:
            for column in columns:
                batch.alter_column(
                    column, type_=sa.Text(), existing_type=sa.String(200), existing_nullable=True
                )
    if cipher is not None:
        rotate_tokens(op.get_bind(), cipher)


def downgrade() -> None:
    """Tokens back in plain text. The columns stay TEXT: a token longer than the old 200
    characters may be stored by now, and the wider column harms nothing."""
    cipher = _cipher("decrypting them")
    if cipher is not None:
        decrypt_tokens(op.get_bind(), cipher)
