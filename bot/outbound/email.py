"""Alert emails over SMTP (SMTP_HOST, SMTP_PORT, SMTP_USER, SMTP_PASSWORD, SMTP_FROM,
SMTP_SECURITY), one email per alert and address, with a plain-text body and an HTML one.

One SMTP connection serves a delivery round. While SMTP_HOST or SMTP_FROM is empty every
due email fails with that reason (they wait in the outbox, listed by `creditbot emails
list`, until it is set). User text: the `email` package encodes the headers (a name in any
script; no line breaks reach a header), and the HTML part escapes every value.
"""

from __future__ import annotations

import html
import smtplib
import ssl
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import datetime
from email.message import EmailMessage
from email.utils import formatdate

from bot.config import Settings
from bot.context import AppContext
from bot.outbound.delivering import DeliveryFailed, Send, deliver_due
from bot.outbound.events import alert_text, subject
from ledger.deliveries import Due

#: Seconds an SMTP server has to answer each command.
TIMEOUT = 20


def configured(settings: Settings) -> bool:
    return bool(settings.smtp_host and settings.smtp_from)


def compose(row: Due, sender: str) -> EmailMessage:
    """The email of one delivery: the alert's words, in plain text and in HTML."""
    text = alert_text(row)
    message = EmailMessage()
    message["Subject"] = subject(row)
    message["From"] = sender
    message["To"] = row.address or ""
    message["Date"] = formatdate(usegmt=True)
    domain = sender.rpartition("@")[2].strip("> ") or "creditbot.invalid"
    # The same id on every retry: a mail system that got it twice can tell.
    message["Message-ID"] = f"<creditbot.alert.{row.message_id}.{row.id}@{domain}>"
    if row.request_id:
        message["X-Request-Id"] = row.request_id
    footer = f"creditbot · {row.account_name}"
    message.set_content(f"{text}\n\n-- \n{footer}\n")
    message.add_alternative(
        "<!doctype html><html><body style='font-family: sans-serif'>"
        f"<p>{html.escape(text)}</p>"
        f"<p style='color: #666; font-size: small'>{html.escape(footer)}</p>"
        "</body></html>",
        subtype="html",
    )
    return message


def connect(settings: Settings) -> smtplib.SMTP:
    """A logged-in SMTP connection, encrypted as SMTP_SECURITY asks."""
    security, port = settings.smtp_security, settings.smtp_port
    tls = ssl.create_default_context()
    smtp: smtplib.SMTP
    if security == "ssl" or (security == "auto" and port == 465):
        smtp = smtplib.SMTP_SSL(settings.smtp_host, port, timeout=TIMEOUT, context=tls)
    else:
        smtp = smtplib.SMTP(settings.smtp_host, port, timeout=TIMEOUT)
        smtp.ehlo()
        if security == "starttls" or (security == "auto" and smtp.has_extn("starttls")):
            smtp.starttls(context=tls)
            smtp.ehlo()
    if settings.smtp_user:
        smtp.login(settings.smtp_user, settings.smtp_password)
    return smtp


@contextmanager
def _smtp(settings: Settings) -> Iterator[Send]:
    connection: smtplib.SMTP | None = None

    def send(row: Due) -> None:
        nonlocal connection
        if not configured(settings):
            raise DeliveryFailed("email is off: set SMTP_HOST and SMTP_FROM")
        message = compose(row, settings.smtp_from)
        try:
            if connection is None:
                connection = connect(settings)
            connection.send_message(message)
        except smtplib.SMTPRecipientsRefused as exc:
            raise DeliveryFailed(
                f"the SMTP server refused {row.address}: {exc.recipients}"
            ) from exc
        except (smtplib.SMTPException, OSError) as exc:
            broken, connection = connection, None  # the next email opens a new connection
            if broken is not None:
                with suppress(Exception):
                    broken.close()
            raise DeliveryFailed(f"SMTP {settings.smtp_host}:{settings.smtp_port}: {exc}") from exc

    try:
        yield send
    finally:
        if connection is not None:
            with suppress(Exception):
                connection.quit()


def deliver_due_emails(context: AppContext, *, now: datetime | None = None) -> int:
    """Send every due alert email; returns how many the SMTP server took."""
    return deliver_due(context, "email", lambda: _smtp(context.settings), now=now)
