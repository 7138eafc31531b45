"""The shape of a Slack request, as far as Bolt reads it before any listener runs.

Bolt assumes Slack's types: it calls `.get` on `view`, `event` and each of `actions` and
`authorizations`, and `in` on `user`, `team` and `enterprise`. A signed request with other
types there (Slack never sends one) would raise deep inside its dispatch and be answered
500 with a traceback; `envelope_problem` says what is wrong with it instead, and the
route refuses it with 400. Fields not named here are left to the listeners.
"""

from __future__ import annotations

from typing import Any

_NONE = type(None)
_Types = tuple[type, ...]

#: Top-level fields, when present, and the types Slack sends them as.
FIELDS: dict[str, _Types] = {
    **dict.fromkeys(
        (
            "type",
            "token",
            "team_id",
            "user_id",
            "channel_id",
            "api_app_id",
            "command",
            "text",
            "trigger_id",
            "response_url",
            "callback_id",
            "action_id",
            "block_id",
            "value",
            "challenge",
            "event_id",
        ),
        (str,),
    ),  # fmt: skip
    **dict.fromkeys(("event", "view", "container", "message", "state"), (dict,)),
    **dict.fromkeys(("actions", "authorizations"), (list,)),
    **dict.fromkeys(("user", "channel"), (str, dict)),
    **dict.fromkeys(("team", "enterprise"), (str, dict, _NONE)),
    "enterprise_id": (str, _NONE),
    "is_enterprise_install": (bool, str),
}

#: Fields of the objects above (and of each item of the lists), when present.
INNER: dict[str, dict[str, _Types]] = {
    "event": {
        **dict.fromkeys(("type", "subtype", "bot_id", "tab", "ts", "team"), (str, _NONE)),
        **dict.fromkeys(("user", "channel"), (str, dict, _NONE)),
    },
    "view": {
        **dict.fromkeys(("type", "callback_id", "id", "hash", "private_metadata"), (str, _NONE)),
        "state": (dict, _NONE),
        "blocks": (list, _NONE),
    },
    "container": dict.fromkeys(("type", "view_id", "message_ts", "channel_id"), (str, _NONE)),
    "actions": dict.fromkeys(("type", "action_id", "block_id", "value"), (str, _NONE)),
    "authorizations": {
        **dict.fromkeys(("team_id", "user_id", "enterprise_id"), (str, _NONE)),
        **dict.fromkeys(("is_bot", "is_enterprise_install"), (bool, _NONE)),
    },
    **dict.fromkeys(("user", "team", "enterprise", "channel"), {"id": (str, _NONE)}),
}


def envelope_problem(body: Any) -> str | None:
    """What in `body` (a parsed Slack request) is not of the type Slack sends, or None."""
    if not isinstance(body, dict):
        return "the body is not a JSON object"
    for field, types in FIELDS.items():
        if field in body and not isinstance(body[field], types):
            return f"'{field}' is not of the type Slack sends"
    for field, inner in INNER.items():
        value = body.get(field)
        items = value if isinstance(value, list) else [value]
        for item in items:
            if isinstance(value, list) and not isinstance(item, dict):
                return f"'{field}' holds something other than objects"
            if not isinstance(item, dict):
                continue
            for key, types in inner.items():
                if key in item and not isinstance(item[key], types):
                    return f"'{field}.{key}' is not of the type Slack sends"
    return None
