"""Checking a surface the way Slack would: slack_sdk's own Block Kit models (which know
every block and element and their documented limits) must read it back unchanged, and
the limits of the surface itself hold."""

from __future__ import annotations

from typing import Any

from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

#: Slack's documented limits: blocks per message and per view (modal or Home tab), and
#: the characters of a message's `text` Slack keeps whole.
MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
MAX_MESSAGE_TEXT = 4000


def _without_empty(value: Any) -> Any:
    """slack_sdk leaves out empty optional strings (`private_metadata: ""`)."""
    if isinstance(value, dict):
        return {k: _without_empty(v) for k, v in value.items() if v != ""}
    if isinstance(value, list):
        return [_without_empty(v) for v in value]
    return value


def assert_valid_message(message: dict[str, Any]) -> None:
    assert 0 < len(message["text"]) <= MAX_MESSAGE_TEXT, "a message needs a text fallback"
    assert 0 < len(message["blocks"]) <= MAX_MESSAGE_BLOCKS
    parsed = [Block.parse(b) for b in message["blocks"]]
    for block in parsed:
        assert block is not None
        block.validate_json()  # raises SlackObjectFormationError past a limit
    assert [b.to_dict() for b in parsed] == _without_empty(message["blocks"])
    _unique_ids(message["blocks"])


def assert_valid_view(view: dict[str, Any], kind: str) -> None:
    assert view["type"] == kind
    assert 0 < len(view["blocks"]) <= MAX_VIEW_BLOCKS
    parsed = View(**view)
    parsed.validate_json()
    assert parsed.to_dict() == _without_empty(view)
    _unique_ids(view["blocks"])


def _unique_ids(blocks: list[dict[str, Any]]) -> None:
    block_ids = [b["block_id"] for b in blocks if "block_id" in b]
    assert len(block_ids) == len(set(block_ids)), "block ids must be unique"
    for block in blocks:
        elements = block.get("elements") or []
        action_ids = [e["action_id"] for e in elements if isinstance(e, dict) and "action_id" in e]
        assert len(action_ids) == len(set(action_ids)), "action ids must be unique in a block"
