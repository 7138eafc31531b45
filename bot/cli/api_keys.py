"""`creditbot api-keys create | list | revoke`: keys for the HTTP API, of agent runtimes
(scope `runtime`) or of platforms that automate what billing admins do (scope `admin`)."""

from __future__ import annotations

import click
from rich.markup import escape

from bot.cli.environment import console, operator, run
from bot.cli.options import account_option
from bot.cli.output import emit_json, json_option, local_time, table
from ledger import api_keys as service
from ledger.accounts import get_account


def register(cli: click.Group) -> None:
    """Add this part's commands to `cli`."""
    cli.add_command(api_keys)


@click.group("api-keys")
def api_keys() -> None:
    """API keys of agent runtimes (sent as `Authorization: Bearer ...`)."""


@api_keys.command("create")
@account_option
@click.option("--name", default="", help="What the key is for (e.g. the runtime's name).")
@click.option(
    "--scope",
    type=click.Choice(service.SCOPES),
    default="runtime",
    show_default=True,
    help="runtime: charges, calls, balance, agents. admin: also settings, budget, alert"
    " levels, top-ups and the audit trail.",
)
def create(account_ref: str, name: str, scope: str) -> None:
    """Create a key. Its secret is printed once: store it now, it cannot be shown again."""
    new = run(
        lambda s: service.create_key(
            s, get_account(s, account_ref).id, name, scope=scope, actor=operator()
        )
    )
    click.echo(
        f"API key {new.key.id} ({new.key.name}, prefix {new.key.prefix}, scope {new.key.scope})"
        f" created for account {new.key.account_id}. Store the secret now: it is not shown again.",
        err=True,
    )
    # The secret alone on stdout, so scripts can capture it.
    click.echo(new.secret)


@api_keys.command("list")
@account_option
@json_option
def list_(account_ref: str, as_json: bool) -> None:
    """Every key of the account (prefix only; secrets are never stored)."""

    def read(session):  # noqa: ANN001, ANN202
        account = get_account(session, account_ref)
        return account.timezone, service.list_keys(session, account.id)

    tz, keys = run(read)
    if as_json:
        emit_json(
            [
                {"id": k.id, "name": k.name, "prefix": k.prefix, "scope": k.scope,
                 "active": k.active, "created_at": k.created_at, "revoked_at": k.revoked_at}
                for k in keys
            ]
        )  # fmt: skip
        return
    out = table("id", "name", "prefix", "scope", "created", "status")
    for k in keys:
        status = "active" if k.active else f"revoked {local_time(k.revoked_at, tz)}"
        out.add_row(
            str(k.id), escape(k.name), k.prefix, k.scope, local_time(k.created_at, tz), status
        )
    console.print(out)


@api_keys.command("revoke")
@account_option
@click.argument("key_ref")
def revoke(account_ref: str, key_ref: str) -> None:
    """Revoke KEY_REF (id or prefix): requests with it get 401 from now on."""
    key = run(
        lambda s: service.revoke_key(s, get_account(s, account_ref).id, key_ref, actor=operator())
    )
    console.print(
        f"API key {key.id} ({key.prefix}) revoked at {key.revoked_at:%Y-%m-%d %H:%M:%S} UTC"
    )
