"""Reading the fields of a submitted modal (its `view.state.values`)."""

from __future__ import annotations

from typing import Any


def field(view: dict[str, Any], block_id: str, action_id: str) -> dict[str, Any]:
    return ((view.get("state") or {}).get("values") or {}).get(block_id, {}).get(action_id) or {}


def text_value(view: dict[str, Any], block_id: str, action_id: str) -> str:
    return (field(view, block_id, action_id).get("value") or "").strip()


def selected(view: dict[str, Any], block_id: str, action_id: str) -> str | None:
    return (field(view, block_id, action_id).get("selected_option") or {}).get("value")


def block_with_prefix(view: dict[str, Any], prefix: str) -> str | None:
    for block_id in (view.get("state") or {}).get("values") or {}:
        if block_id.startswith(prefix):
            return block_id
    return None
