"""Every surface stays inside Block Kit's limits at any number of agents (issue 10, item 18):
/balance and the Home tab summarise, the agent settings modal offers every agent while one
select holds them and searches them by name beyond that, through the real server."""

from __future__ import annotations

import json

import pytest

from ledger.accounts import AccountSettings, create_account
from ledger.agents import add_agent, get_agent
from ledger.db import transaction
from ledger.units import credits
from tests.support.block_kit import check_message, check_options, check_view
from tests.support.slack_harness import *  # noqa: F403
from tests.support.slack_harness import ADMIN, TEAM, Server, Slack, open_home_tab, response_posts


def _account_with_agents(context, count):
    def setup(s):
        account = create_account(
            s, AccountSettings(name="Fleet", slack_team_id=TEAM, plan_credits=credits(10))
        )
        ids = [add_agent(s, account.id, f"agent-{i:04d}").id for i in range(1, count + 1)]
        return account.id, ids

    return transaction(context.sessions, setup)


def _suggest(slack, view, typed, user=ADMIN):
    """Slack asking for the agent select's options while someone types `typed`."""
    payload = {
        "type": "block_suggestion", "team": {"id": TEAM, "domain": "acme"},
        "user": {"id": user, "team_id": TEAM}, "api_app_id": "A0001", "action_id": "agent_select",
        "block_id": "agent", "value": typed, "container": {"type": "view", "view_id": view["id"]},
        "view": view,
    }  # fmt: skip
    response = slack.interaction(payload)
    assert response.status_code == 200
    return response.json()["options"]


@pytest.mark.parametrize("count", [0, 1, 100, 101, 1000])
def test_every_surface_fits_at_any_number_of_agents(fake_slack, context, count):
    account_id, agent_ids = _account_with_agents(context, count)
    with Server(context) as server:
        slack = Slack(server.url, fake_slack, context)
        _, url = slack.command("/balance")
        [reply] = response_posts(fake_slack, url)
        check_message(reply)
        if count > 20:
            assert f"and {count - 20} more agents" in json.dumps(reply)
        check_view(open_home_tab(slack, fake_slack).args["view"])
        if not count:
            return
        last = agent_ids[-1]
        slack.click("open_agent_settings", str(last))
        view = fake_slack.wait_for("views.open")[-1].args["view"]
        check_view(view)
        select = view["blocks"][0]["element"]
        assert select["initial_option"]["value"] == str(last)  # the agent whose button it was
        if count <= 100:
            assert select["type"] == "static_select" and len(select["options"]) == count
            return
        assert select["type"] == "external_select"
        view = {**view, "id": "V0200", "hash": "h"}
        everyone = _suggest(slack, view, "")
        check_options(everyone)
        assert len(everyone) == 100
        found = _suggest(slack, view, f"AGENT-{count:04d}")  # any case
        assert [o["value"] for o in found] == [str(last)]
        assert _suggest(slack, view, "nobody") == []
        # choosing a found agent shows its settings
        first = agent_ids[0]
        slack.click("agent_select", view=view, block_id="agent",
                    extra={"type": "external_select", "selected_option": {"value": str(first)}})  # fmt: skip
        updated = fake_slack.wait_for("views.update")[-1].args["view"]
        check_view(updated)
        assert updated["blocks"][0]["element"]["initial_option"]["value"] == str(first)
        # and saving it changes that agent
        body = slack.submit(updated, {"behaviour": "use_balance", "limit": "7"}).json()
        assert body["response_action"] == "update"
        agent = transaction(context.sessions, lambda s: get_agent(s, account_id, first))
        assert (agent.behaviour, agent.monthly_limit) == ("use_balance", credits(7))


def test_agent_search_in_a_workspace_without_an_account_finds_nothing(slack, fake_slack):
    view = {"type": "modal", "id": "V0300", "hash": "h", "blocks": []}
    payload = {
        "type": "block_suggestion", "team": {"id": "T0OTHER"}, "user": {"id": ADMIN},
        "api_app_id": "A0001", "action_id": "agent_select", "block_id": "agent", "value": "A",
        "view": view,
    }  # fmt: skip
    response = slack.interaction(payload)
    assert response.status_code == 200 and response.json()["options"] == []
