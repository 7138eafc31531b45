"""Names and other stored text a person types: control and invisible formatting characters
are refused with a clear error on both databases (issue 10 item 15); ordinary text,
emoji sequences included, is kept as typed."""

from __future__ import annotations

import pytest

from ledger.accounts import AccountSettings, configure_account, create_account, get_account
from ledger.agents import add_agent, list_agents, update_agent
from ledger.api_keys import create_key, list_keys
from ledger.db import transaction
from ledger.errors import InvalidInput
from ledger.names import without_refused
from ledger.slack_workspaces import account_for_install, link_team
from ledger.wallet import credit_wallet
from tests.support.factories import story
from tests.support.hostile_input import NOT_NAMES


def _refused(sessions, work):
    with pytest.raises(InvalidInput, match="control or invisible formatting characters"):
        transaction(sessions, work, retries=0)


def test_names_with_control_characters_are_refused_everywhere_they_enter(sessions):
    ids = story(sessions)
    acc = ids["account"]
    for bad in NOT_NAMES:
        _refused(sessions, lambda s, bad=bad: add_agent(s, acc, bad))
        _refused(sessions, lambda s, bad=bad: update_agent(s, acc, ids["a"], name=bad))
        _refused(sessions, lambda s, bad=bad: create_account(s, AccountSettings(name=bad)))
        _refused(sessions, lambda s, bad=bad: configure_account(s, acc, name=bad))
        _refused(sessions, lambda s, bad=bad: create_key(s, acc, bad))
        _refused(
            sessions,
            lambda s, bad=bad: credit_wallet(s, acc, 1000, key="k", kind="adjustment", memo=bad),
        )
    names = transaction(sessions, lambda s: sorted(a.name for a in list_agents(s, acc)))
    assert names == ["A", "B"]
    assert transaction(sessions, lambda s: get_account(s, acc).name) == "Acme"
    assert transaction(sessions, lambda s: list_keys(s, acc)) == []


def test_team_ids_are_slack_ids(sessions):
    acc = story(sessions, team=None)["account"]
    for bad in ("T0\x00", "t0123", "X0123", "T 0123", "T" + "0" * 40):
        with pytest.raises(InvalidInput, match="not a Slack team id"):
            transaction(sessions, lambda s, bad=bad: link_team(s, acc, bad), retries=0)
    assert transaction(sessions, lambda s: link_team(s, acc, " T0123ABCD ")).slack_team_id == (
        "T0123ABCD"
    )


def test_ordinary_names_emoji_and_scripts_are_kept(sessions):
    acc = story(sessions)["account"]
    for name in ("👩‍💻 support", "🏴󠁧󠁢󠁳󠁣󠁴󠁿 bot", "Ünïcödé", "दस्तावेज़", "客服 2"):
        agent = transaction(sessions, lambda s, name=name: add_agent(s, acc, name))
        assert agent.name == name


def test_a_workspace_name_from_slack_is_cleaned_not_refused(sessions):
    account, created = transaction(
        sessions, lambda s: account_for_install(s, "T0NEW", "Acme\x00 \u202eInc")
    )
    assert created and account.name == "Acme Inc" == without_refused("Acme\x00 \u202eInc")
