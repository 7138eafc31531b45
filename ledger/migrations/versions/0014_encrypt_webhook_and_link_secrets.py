"""webhook signing secrets and the signed-link key encrypted at rest

Revision ID: 0014
Revises: 0013
`webhook_endpoints.secret` and `server_secrets.value` become TEXT (a Fernet token is longer
than the 100 and 128 characters they held), and what they already hold is encrypted with
the first of CREDITBOT_ENCRYPTION_KEYS (ledger/secrets_at_rest.py). With webhook secrets
stored and no key, the migration stops before changing anything and says what to set. The
link key alone does not stop it: without keys it stays as it was, and `creditbot doctor`
warns about it (docs/security.md).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op

from ledger.secrets_at_rest import (
    ENV,
    LINK_KEYS,
    WEBHOOK_SECRETS,
    EncryptionKeyError,
    decrypt_secrets,
    is_plain,
    migration_cipher,
    rotate_secrets,
    stored_secrets,
)

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

#: Each secret column, its type before this migration.
_COLUMNS = (
    ("webhook_endpoints", "secret", sa.String(100)),
    ("server_secrets", "value", sa.String(128)),
)


def upgrade() -> None:
    bind = op.get_bind()
    cipher = migration_cipher(context.config.attributes)
    plain = [s for s in stored_secrets(bind, WEBHOOK_SECRETS) if is_plain(s.value)]
    if plain and cipher is None:  # before any change: a refusal leaves all as it was
        raise EncryptionKeyError(
            f"Webhook endpoints hold {len(plain)} signing secret(s), and encrypting them needs"
            f" {ENV}: generate a key with `creditbot slack new-key`, set it, and run"
            " `creditbot db upgrade` again."
        )
    for table, column, old in _COLUMNS:
        with op.batch_alter_table(table) as batch:
            batch.alter_column(column, type_=sa.Text(), existing_type=old, existing_nullable=False)
    if cipher is not None:
        rotate_secrets(bind, cipher, WEBHOOK_SECRETS + LINK_KEYS)


def downgrade() -> None:
    """The secrets back in plain text, in their old columns (each fits again)."""
    bind = op.get_bind()
    encrypted = [
        s for s in stored_secrets(bind, WEBHOOK_SECRETS + LINK_KEYS) if not is_plain(s.value)
    ]
    cipher = migration_cipher(context.config.attributes)
    if encrypted and cipher is None:
        raise EncryptionKeyError(
            f"{len(encrypted)} secret(s) of webhook endpoints or signed links are encrypted,"
            f" and decrypting them needs {ENV}: set the key that encrypted them."
        )
    if cipher is not None:
        decrypt_secrets(bind, cipher, WEBHOOK_SECRETS + LINK_KEYS)
    for table, column, old in _COLUMNS:
        with op.batch_alter_table(table) as batch:
            batch.alter_column(column, type_=old, existing_type=sa.Text(), existing_nullable=False)
