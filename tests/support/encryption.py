"""CREDITBOT_ENCRYPTION_KEYS of the tests: the key that encrypts the secrets a test's
database keeps (Slack tokens of OAuth installs, webhook signing secrets, the link key)."""

from __future__ import annotations

from ledger.secrets_at_rest import SecretCipher

ENCRYPTION_KEY = "VNwolPM7V8E_tSaTWC_cifLeR_Rg_BUIW6E6hzFw_ME="


def cipher() -> SecretCipher:
    """The cipher of ENCRYPTION_KEY (what a context built with it uses)."""
    keys = SecretCipher.from_setting(ENCRYPTION_KEY)
    assert keys is not None
    return keys
