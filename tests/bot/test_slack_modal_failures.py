"""A modal submission whose handling fails is still answered, with the error on a field
(issue 10 item 17): never left to Slack's generic "trouble connecting" error."""

from __future__ import annotations

import logging

import bot.slack.listeners.views.agent_settings as agent_view
import bot.slack.listeners.views.auto_recharge as auto_recharge_view
import bot.slack.listeners.views.topup as topup_view
import bot.slack.middleware as middleware
from bot.slack.errors import APOLOGY, modal_error_answer
from tests.support.slack_harness import *  # noqa: F403


def _opened(slack, fake_slack, action_id):
    before = len(fake_slack.of("views.open"))
    slack.click(action_id)
    return fake_slack.wait_for("views.open", count=before + 1)[-1].args["view"]


def _boom(*args, **kwargs):
    raise RuntimeError("the database went away")


def test_a_view_handler_that_raises_answers_with_an_error_on_the_first_field(
    slack, fake_slack, monkeypatch, caplog
):
    monkeypatch.setattr(auto_recharge_view, "update_auto_recharge", _boom)
    view = _opened(slack, fake_slack, "open_auto_recharge")
    with caplog.at_level(logging.ERROR):
        answer = slack.submit(view, {"enabled": "off", "threshold": "10"})
    assert answer.status_code == 200
    assert answer.json() == {"response_action": "errors", "errors": {"enabled": APOLOGY}}
    assert "the database went away" in caplog.text  # logged with its traceback


def test_every_modal_is_answered_when_its_handler_raises(slack, fake_slack, monkeypatch):
    monkeypatch.setattr(agent_view, "update_agent", _boom)
    monkeypatch.setattr(topup_view, "parse_topup", _boom)
    agents = _opened(slack, fake_slack, "open_agent_settings")
    answer = slack.submit(agents, {"behaviour": "use_balance", "limit": "100"}).json()
    assert answer["response_action"] == "errors" and list(answer["errors"].values()) == [APOLOGY]
    before = len(fake_slack.of("views.open"))
    slack.command("/topup", "")
    topup = fake_slack.wait_for("views.open", count=before + 1)[-1].args["view"]
    answer = slack.submit(topup, {"amount": "50"}).json()
    assert answer == {"response_action": "errors", "errors": {"preset": APOLOGY}}  # 1st field


def test_the_error_goes_on_the_field_it_names_or_replaces_a_modal_without_fields():
    view = {"blocks": [{"type": "section", "block_id": "card"},
                       {"type": "input", "block_id": "threshold"},
                       {"type": "input", "block_id": "monthly_cap"}]}  # fmt: skip
    assert modal_error_answer(view, "No.", "monthly_cap") == {
        "response_action": "errors",
        "errors": {"monthly_cap": "No."},
    }
    assert modal_error_answer(view, "No.", "not_there")["errors"] == {"threshold": "No."}
    replaced = modal_error_answer({"blocks": [{"type": "section"}]}, "No.")
    assert replaced["response_action"] == "update" and replaced["view"]["type"] == "modal"


def test_a_middleware_that_raises_still_answers_the_modal(slack, fake_slack, monkeypatch):
    view = _opened(slack, fake_slack, "open_auto_recharge")
    monkeypatch.setattr(middleware, "account_for_team", _boom)
    answer = slack.submit(view, {"enabled": "off"})
    assert answer.status_code == 200
    assert answer.json() == {"response_action": "errors", "errors": {"enabled": APOLOGY}}
