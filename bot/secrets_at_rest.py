"""What `creditbot doctor` and `creditbot serve` find of the secrets creditbot keeps in its
database besides Slack tokens (those are the Slack finding's): the signing secrets of
webhook endpoints and the signed-link key the server made for itself when SECRET_KEY is
unset (ledger/secrets_at_rest.py keeps them encrypted with CREDITBOT_ENCRYPTION_KEYS).
"""

from __future__ import annotations

from bot.context import AppContext, secrets_cipher
from bot.doctor import FAIL, OK, WARN, Finding
from ledger.secrets_at_rest import (
    ENV,
    LINK_KEYS,
    WEBHOOK_SECRETS,
    EncryptionKeyError,
    SecretCipher,
    StoredSecret,
    Survey,
    reveal,
    survey,
)

PART = "secrets"
ROTATE = "`creditbot slack rotate-key`"


def _why(secret: StoredSecret, cipher: SecretCipher | None) -> str:
    """Why the keys do not open `secret`, in one line."""
    try:
        reveal(secret.value, cipher, secret.what)
    except EncryptionKeyError as exc:
        return str(exc)
    return ""


def _surveys(context: AppContext, cipher: SecretCipher | None) -> tuple[Survey, Survey]:
    with context.engine.connect() as connection:
        return survey(connection, cipher, WEBHOOK_SECRETS), survey(connection, cipher, LINK_KEYS)


def link_key_problem(context: AppContext) -> str | None:
    """Why the signed-link key kept in the database cannot be used, in one line; None when
    it can, when none is kept yet, or when SECRET_KEY signs the links instead. `creditbot
    serve` refuses to start on it: every chart and statement link would fail."""
    if context.settings.secret_key:
        return None
    try:
        cipher = secrets_cipher(context)
    except EncryptionKeyError as exc:
        return str(exc)
    _, links = _surveys(context, cipher)
    return _why(links.unreadable[0], cipher) if links.unreadable else None


def check_secrets(context: AppContext) -> Finding:
    """Webhook signing secrets and the signed-link key: each can be opened with the keys
    (fail), none is left in plain text (warn)."""
    try:
        cipher = secrets_cipher(context)
    except EncryptionKeyError as exc:
        return Finding(PART, FAIL, str(exc), "make one with `creditbot slack new-key`")
    hooks, links = _surveys(context, cipher)
    signs_links = not context.settings.secret_key  # else the stored key is not used
    missing = (
        f"cannot be decrypted: {ENV} is not set"
        if cipher is None
        else f"cannot be decrypted with {ENV}"
    )
    broken = []
    if hooks.unreadable:
        ids = ", ".join(str(s.row_id) for s in hooks.unreadable)
        broken.append(f"the signing secret of webhook endpoint(s) {ids} {missing}:"
                      " deliveries to them fail")  # fmt: skip
    if signs_links and links.unreadable:
        broken.append(f"the signed-link key {missing}: chart and statement links fail")
    if broken:
        return Finding(
            PART, FAIL, "; ".join(broken),
            f"set {ENV} to the key that encrypted them (after a new one, until {ROTATE} ran);"
            " or remove the endpoint and add it again",
        )  # fmt: skip
    plain = []
    if hooks.plain:
        plain.append(f"{len(hooks.plain)} webhook signing secret(s) are kept in plain text")
    if signs_links and links.plain:
        plain.append("the signed-link key is kept in plain text (SECRET_KEY is unset)")
    if plain:
        hint = (
            f"run {ROTATE} to encrypt them"
            if cipher is not None
            else f"set {ENV} (`creditbot slack new-key`) and run {ROTATE};"
            " or set SECRET_KEY, which signs links without the database"
        )
        return Finding(PART, WARN, "; ".join(plain), hint)
    said = [
        f"{len(hooks.stored)} webhook signing secret(s) encrypted"
        if hooks.stored
        else "no webhook signing secret stored"
    ]
    if not signs_links:
        said.append("SECRET_KEY signs links")
    elif links.stored:
        said.append("the signed-link key encrypted")
    return Finding(PART, OK, "; ".join(said))
