"""`creditbot webhooks` and `creditbot emails` from the command line: the signing secret is
printed once and never listed, a removed destination is gone, and each change is on the
audit trail under the operator who made it (the secret never is)."""

from __future__ import annotations

import getpass

import pytest

from tests.support.cli import creditbot  # noqa: F401  (fixture)
from tests.support.encryption import ENCRYPTION_KEY


@pytest.fixture
def cli(creditbot, sqlite_url):  # noqa: F811
    creditbot.env(DATABASE_URL=sqlite_url, CREDITBOT_ENCRYPTION_KEYS=ENCRYPTION_KEY)
    creditbot("accounts", "create", "--name", "Acme", "--plan-credits", "100")
    return creditbot


def test_a_webhook_endpoint_is_added_listed_and_removed(cli):
    added = cli(
        "webhooks", "add", "--account", "Acme", "https://hooks.example.com/creditbot",
        "--events", "alert.*,agent.stopped", "--description", "platform",
    )  # fmt: skip
    secret = added.stdout.strip()
    assert secret.startswith("whsec_") and len(secret) > 40, "stdout is the secret alone"
    assert "store it now" in added.stderr
    [endpoint] = cli.json("webhooks", "list", "--account", "Acme")
    assert endpoint["url"] == "https://hooks.example.com/creditbot"
    assert endpoint["event_types"] == ["alert.*", "agent.stopped"]
    assert (endpoint["delivered"], endpoint["waiting"]) == (0, 0)
    assert secret not in cli("webhooks", "list", "--account", "Acme", "--json").stdout

    refused = cli("webhooks", "add", "--account", "Acme", "http://example.com/x", code=1)
    assert "must use https" in refused.output
    unknown = cli("webhooks", "add", "--account", "Acme", "https://x.example.com",
                  "--events", "alert.nope", code=1)  # fmt: skip
    assert "is not an event type" in unknown.output

    cli("webhooks", "remove", "--account", "Acme", str(endpoint["id"]))
    assert cli.json("webhooks", "list") == []
    gone = cli("webhooks", "remove", "--account", "Acme", str(endpoint["id"]), code=1)
    assert f"No webhook endpoint {endpoint['id']}" in gone.output


def test_alert_emails_are_added_once_listed_and_removed(cli):
    cli("emails", "add", "--account", "Acme", "finance@example.com")
    again = cli("emails", "add", "--account", "Acme", "finance@example.com").output
    assert "finance@example.com receives the alerts" in again
    assert [e["address"] for e in cli.json("emails", "list")] == ["finance@example.com"]
    bad = cli("emails", "add", "--account", "Acme", "x@example.com\r\nBcc: y@example.com", code=1)
    assert "is not an email address" in bad.output
    cli("emails", "remove", "--account", "Acme", "finance@example.com")
    assert cli.json("emails", "list", "--account", "Acme") == []
    cli("emails", "remove", "--account", "Acme", "finance@example.com", code=1)


def test_destination_changes_are_on_the_audit_trail_under_the_operator(cli):
    secret = cli("webhooks", "add", "--account", "Acme", "https://hooks.example.com/a").stdout
    [endpoint] = cli.json("webhooks", "list")
    cli("webhooks", "remove", "--account", "Acme", str(endpoint["id"]))
    cli("emails", "add", "--account", "Acme", "ops@example.com")
    cli("emails", "add", "--account", "Acme", "ops@example.com")  # already there: no change
    cli("emails", "remove", "--account", "Acme", "ops@example.com")

    trail = cli.json("audit", "--account", "Acme")
    assert [e["action"] for e in trail] == [
        "alert_email.removed",
        "alert_email.added",
        "webhook.removed",
        "webhook.added",
    ]
    me = getpass.getuser()
    assert {(e["actor_kind"], e["actor"], e["source"]) for e in trail} == {
        ("cli_operator", me, "cli")
    }
    added = trail[3]
    assert added["subject"] == str(endpoint["id"])
    # No description: the trail keeps only what is set.
    assert added["after"] == {"url": "https://hooks.example.com/a", "event_types": []}
    assert trail[2]["before"] == {"url": "https://hooks.example.com/a", "event_types": []}
    assert trail[2]["after"] == {"url": None, "event_types": None}
    assert trail[0]["before"] == {"address": "ops@example.com"}
    assert trail[1]["after"] == {"address": "ops@example.com"}
    assert secret.strip() not in cli("audit", "--account", "Acme", "--json").stdout
