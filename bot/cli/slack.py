"""`creditbot` commands of the slack part: link workspaces to accounts, name billing
admins and the alert channel, run Socket Mode, deliver alerts by hand, and the keys that
encrypt the tokens of OAuth installs."""

from __future__ import annotations

import click

from bot.cli.accounts import accounts
from bot.cli.environment import console, context, operator, run
from bot.cli.options import account_option
from bot.cli.output import emit_json
from ledger.accounts import get_account, set_alert_channel, set_billing_admins
from ledger.slack_workspaces import link_team, release_alerts, unlink_team


def register(cli: click.Group) -> None:
    """Add this part's commands to `cli` (and to `creditbot accounts`)."""
    accounts.add_command(link)
    accounts.add_command(unlink)
    accounts.add_command(billing_admins)
    accounts.add_command(alert_channel)
    cli.add_command(slack)


@click.command("link")
@account_option
@click.option("--team", "team_id", required=True, help="Slack team id (T...).")
def link(account_ref: str, team_id: str) -> None:
    """Link a Slack workspace to an existing account (instead of the account an OAuth
    install would create)."""
    account = run(lambda s: link_team(s, account_ref, team_id))
    console.print(f"Slack team {team_id} is linked to account {account.id} ({account.name})")


@click.command("unlink")
@account_option
def unlink(account_ref: str) -> None:
    """Forget the account's Slack workspace."""
    account = run(lambda s: unlink_team(s, account_ref))
    console.print(f"account {account.id} ({account.name}) has no Slack workspace now")


@click.command("billing-admins")
@account_option
@click.argument("user_ids", nargs=-1)
def billing_admins(account_ref: str, user_ids: tuple[str, ...]) -> None:
    """Name the Slack users (U...) who may top up and change settings, besides workspace
    admins and owners. No USER_IDS clears the list."""

    def work(session):  # noqa: ANN001, ANN202
        account = get_account(session, account_ref)
        set_billing_admins(session, account.id, list(user_ids), actor=operator())
        return account.id, list(account.billing_admins)

    account_id, names = run(work)
    console.print(f"account {account_id} billing admins: {', '.join(names) or 'none named'}")


@click.command("alert-channel")
@account_option
@click.argument("channel_id", required=False)
def alert_channel(account_ref: str, channel_id: str | None) -> None:
    """Post the account's alerts to CHANNEL_ID (C...); without it, to SLACK_ALERT_CHANNEL."""

    def work(session):  # noqa: ANN001, ANN202
        account = get_account(session, account_ref)
        set_alert_channel(session, account.id, channel_id, actor=operator())
        release_alerts(session, account.id)
        return account.id

    account_id = run(work)
    console.print(f"account {account_id} alerts go to {channel_id or 'SLACK_ALERT_CHANNEL'}")


@click.group()
def slack() -> None:
    """The Slack app: Socket Mode, alert delivery, previews of what it shows."""


@slack.command("socket")
def socket() -> None:
    """Run the Slack app in Socket Mode (SLACK_APP_TOKEN, xapp-...): no public URL needed.

    Run it beside `creditbot serve`, which still serves the agent API, the Stripe webhook
    and the scheduler.
    """
    # Imported here: other commands start without loading the Slack app.
    from bot.slack.answering import AnsweringSocketModeHandler
    from bot.slack.app import configured, create_slack_app
    from bot.slack.installations import encryption_key_problem

    ctx = context()
    missing = configured(ctx.settings, socket_mode=True)
    if missing:
        raise click.ClickException(f"Slack is not configured for Socket Mode: {missing}.")
    problem = encryption_key_problem(ctx)
    if problem:
        raise click.ClickException(problem)
    app = create_slack_app(ctx, socket_mode=True)
    console.print("creditbot Slack app connecting in Socket Mode")
    AnsweringSocketModeHandler(app, ctx.settings.slack_app_token).start()


@slack.command("preview")
@click.argument("surface")
@account_option
def preview_cmd(surface: str, account_ref: str) -> None:
    """Print a Slack surface's Block Kit JSON for the account, and a Block Kit Builder link
    (on stderr) to see it without a workspace.

    SURFACE: balance, home, topup-modal, auto-recharge-modal, agent-modal, an alert kind
    (plan_low, plan_exhausted, wallet_low, limit_80, limit_100, agent_stopped,
    agent_resumed, topup_received, recharge_succeeded, recharge_failed,
    auto_recharge_paused, refund_shortfall, cycle_renewed), or all.
    """
    # Imported here: other commands start without loading the Slack app.
    from bot.slack.preview import SURFACES, preview

    names = SURFACES if surface == "all" else (surface.removeprefix("alert."),)
    if names[0] not in SURFACES:
        raise click.BadParameter(
            f"choose one of {', '.join(SURFACES)} or all", param_hint="SURFACE"
        )
    account_id = run(lambda s: get_account(s, account_ref).id)
    made = preview(context(), account_id, names)
    if surface == "all":
        emit_json({s.name: s.payload for s in made})
        return
    emit_json(made[0].payload)
    click.echo(f"Block Kit Builder: {made[0].builder_link()}", err=True)


@slack.command("deliver-alerts")
def deliver_alerts() -> None:
    """Post the due alerts now (the scheduler does this on its own)."""
    from bot.slack.alerts import deliver_due_alerts

    delivered = deliver_due_alerts(context())
    console.print(f"{delivered} alert(s) delivered")


@slack.command("new-key")
def new_key_command() -> None:
    """Print a new key for CREDITBOT_ENCRYPTION_KEYS (it encrypts the secrets kept in the
    database: Slack tokens of OAuth installs, webhook signing secrets, the signed-link
    key). To rotate: put it first in the list, run `creditbot slack rotate-key`, then drop
    the old key."""
    from ledger.secrets_at_rest import new_key

    click.echo(new_key())


@slack.command("rotate-key")
def rotate_key() -> None:
    """Re-encrypt every secret kept in the database (Slack tokens, webhook signing secrets,
    the signed-link key) with the first key of CREDITBOT_ENCRYPTION_KEYS, encrypting any
    still in plain text (the other keys only need to decrypt them; drop them afterwards)."""
    from bot.context import secrets_cipher
    from ledger.secrets_at_rest import ENV, EncryptionKeyError, rotate_secrets

    ctx = context()
    try:
        cipher = secrets_cipher(ctx)
        if cipher is None:
            raise EncryptionKeyError(f"{ENV} is not set: there is no key to encrypt with.")
        with ctx.engine.begin() as connection:
            rotated = rotate_secrets(connection, cipher)
    except EncryptionKeyError as exc:
        raise click.ClickException(str(exc)) from exc
    for what, count in rotated.items():
        console.print(f"{count} {what}(s) encrypted with the first key of {ENV}")
