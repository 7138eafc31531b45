"""Alerts beyond Slack: signed webhooks (Standard Webhooks) to each account's endpoints, and
email over SMTP to each account's addresses, delivered from the outbox's delivery rows
(ledger/deliveries.py) by the scheduler's `webhook_delivery` and `email_delivery` jobs.

- `delivering`: the round every deliverer runs: claim, send in order, settle, back off;
- `events`: what an alert says as a webhook event (JSON) and as an email (plain text);
- `webhooks`: signing and posting one event;
- `email`: composing and sending one email.
"""
