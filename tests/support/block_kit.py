"""What Slack accepts and what it reads as markup, for tests of anything the bot posts.

- `check_message` / `check_view`: Block Kit's documented limits (blocks, text, options,
  unique ids, initial options among the options) and slack_sdk.models' own validators.
- `markup_in`: every piece of Slack markup (`<...>` tokens) in the mrkdwn texts of a
  payload, and `unescaped_in`: raw `&`, `<`, `>` that were not escaped. Plain-text objects
  are shown as typed, so they are skipped there and read by `plain_texts`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from slack_sdk.models.basic_objects import JsonObject
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

#: The markup creditbot itself writes: a user mention and a channel.
OWN_MARKUP = re.compile(r"<@[UW][A-Z0-9]+>|<#[CGD][A-Z0-9]+>")
_TOKEN = re.compile(r"<[^<>]*>")
_ENTITY = re.compile(r"&(amp|lt|gt);")
#: Payload keys Slack reads as mrkdwn when they hold a string.
_MRKDWN_KEYS = ("text",)


def _validate_tree(obj: Any) -> None:
    if isinstance(obj, JsonObject):
        obj.validate_json()
        for value in vars(obj).values():
            _validate_tree(value)
    elif isinstance(obj, list | tuple):
        for item in obj:
            _validate_tree(item)


def validate_with_slack_sdk(payload: dict[str, Any]) -> None:
    """slack_sdk.models' validators over every block and element (nested ones too)."""
    if payload.get("type") in ("modal", "home"):
        view = View(**{k: v for k, v in payload.items() if k not in ("id", "hash", "state")})
        _validate_tree(view)
    else:
        _validate_tree(Block.parse_all(payload["blocks"]))


def check_text(obj: dict[str, Any], limit: int, where: str) -> None:
    assert obj["type"] in ("plain_text", "mrkdwn"), where
    assert 0 < len(obj["text"]) <= limit, (where, len(obj["text"]))


def check_element(el: dict[str, Any], where: str) -> None:
    assert 0 < len(el.get("action_id", "x")) <= 255, where
    kind = el["type"]
    if kind == "button":
        check_text(el["text"], 75, where)
        if "value" in el:  # optional, but never empty
            assert 0 < len(el["value"]) <= 2000, f"{where}: an empty button value"
        assert len(el.get("url", "")) <= 3000
        assert el.get("style") in (None, "primary", "danger")
        if "confirm" in el:
            c = el["confirm"]
            check_text(c["title"], 100, where)
            check_text(c["text"], 300, where)
            check_text(c["confirm"], 30, where)
            check_text(c["deny"], 30, where)
    elif kind in ("radio_buttons", "static_select"):
        options = el["options"]
        assert 0 < len(options) <= (10 if kind == "radio_buttons" else 100), where
        for o in options:
            check_text(o["text"], 75, where)
            assert 0 < len(o["value"]) <= 150
        if "initial_option" in el:
            assert el["initial_option"] in options, f"{where}: initial option not among the options"
    elif kind == "external_select":
        check_text(el["placeholder"], 150, where)
        if "initial_option" in el:
            check_text(el["initial_option"]["text"], 75, where)
            assert 0 < len(el["initial_option"]["value"]) <= 150
    elif kind == "plain_text_input":
        assert len(el.get("initial_value", "")) <= 3000
    elif kind == "conversations_select":
        check_text(el["placeholder"], 150, where)
    else:
        raise AssertionError(f"{where}: unexpected element {kind}")


def check_blocks(items: list[dict[str, Any]], max_blocks: int) -> None:
    assert 0 < len(items) <= max_blocks, f"{len(items)} blocks, Slack takes {max_blocks}"
    block_ids = [b["block_id"] for b in items if "block_id" in b]
    assert len(block_ids) == len(set(block_ids)), "block ids must be unique"
    for i, b in enumerate(items):
        where = f"block {i} ({b['type']})"
        if b["type"] == "section":
            assert "text" in b or "fields" in b
            if "text" in b:
                check_text(b["text"], 3000, where)
            for f in b.get("fields", []):
                check_text(f, 2000, where)
            assert len(b.get("fields", [])) <= 10
            if "accessory" in b:
                check_element(b["accessory"], where)
        elif b["type"] == "actions":
            assert 0 < len(b["elements"]) <= 25
            ids = [e["action_id"] for e in b["elements"]]
            assert len(ids) == len(set(ids)), f"{where}: action ids must be unique in a block"
            for e in b["elements"]:
                check_element(e, where)
        elif b["type"] == "context":
            assert 0 < len(b["elements"]) <= 10
            for e in b["elements"]:
                check_text(e, 3000, where)
        elif b["type"] == "header":
            check_text(b["text"], 150, where)
        elif b["type"] == "input":
            check_text(b["label"], 2000, where)
            if "hint" in b:
                check_text(b["hint"], 2000, where)
            check_element(b["element"], where)
        elif b["type"] == "image":
            assert 0 < len(b["image_url"]) <= 3000 and 0 < len(b["alt_text"]) <= 2000, where
            if "title" in b:
                check_text(b["title"], 2000, where)
        else:
            assert b["type"] == "divider", where
        assert len(b.get("block_id", "")) <= 255


def check_message(message: dict[str, Any]) -> None:
    assert message["text"].strip(), "every message has a text fallback"
    assert len(message["text"]) <= 40_000
    check_blocks(message["blocks"], 50)
    validate_with_slack_sdk(message)


def check_view(view: dict[str, Any]) -> None:
    check_blocks(view["blocks"], 100)
    if view["type"] == "modal":
        check_text(view["title"], 24, "title")
        for key in ("submit", "close"):
            if key in view:
                check_text(view[key], 24, key)
        assert len(view.get("private_metadata", "")) <= 3000
        assert len(view.get("callback_id", "")) <= 255
    else:
        assert view["type"] == "home"
    validate_with_slack_sdk(view)


def check_options(options: list[dict[str, Any]]) -> None:
    """An options answer to a block_suggestion: at most 100, each within its limits."""
    assert len(options) <= 100
    for o in options:
        check_text(o["text"], 75, "option")
        assert o["text"]["type"] == "plain_text"
        assert 0 < len(o["value"]) <= 150


# -- what Slack reads as markup -------------------------------------------------------------


def mrkdwn_texts(node: Any) -> Iterator[str]:
    """Every string Slack reads as mrkdwn in a payload: mrkdwn text objects, and a message's
    (or an API call's) top-level `text`. Plain-text objects are left out."""
    if isinstance(node, dict):
        kind = node.get("type")
        if kind == "plain_text":
            return
        for key, value in node.items():
            if key in _MRKDWN_KEYS and isinstance(value, str) and kind != "plain_text":
                yield value
            else:
                yield from mrkdwn_texts(value)
    elif isinstance(node, list):
        for item in node:
            yield from mrkdwn_texts(item)


def plain_texts(node: Any) -> Iterator[str]:
    """Every plain_text object's text (shown as typed)."""
    if isinstance(node, dict):
        if node.get("type") == "plain_text" and isinstance(node.get("text"), str):
            yield node["text"]
            return
        for value in node.values():
            yield from plain_texts(value)
    elif isinstance(node, list):
        for item in node:
            yield from plain_texts(item)


def markup_in(node: Any) -> list[str]:
    """The `<...>` tokens Slack would act on (mention, @channel, link) that creditbot did
    not write itself."""
    found = []
    for text in mrkdwn_texts(node):
        found += [t for t in _TOKEN.findall(text) if not OWN_MARKUP.fullmatch(t)]
    return found


def unescaped_in(node: Any) -> list[str]:
    """Texts with a raw `<`, `>` or `&` left once creditbot's own markup and Slack's three
    entities are taken out."""
    bad = []
    for text in mrkdwn_texts(node):
        rest = _ENTITY.sub("", OWN_MARKUP.sub("", text))
        if any(c in rest for c in "<>&"):
            bad.append(text)
    return bad


def as_shown(text: str) -> str:
    """What Slack shows for escaped mrkdwn (its three entities, read in one pass)."""
    return _ENTITY.sub(lambda m: {"amp": "&", "lt": "<", "gt": ">"}[m.group(1)], text)
