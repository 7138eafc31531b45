"""Slack mrkdwn that carries no markup from outside creditbot.

Slack reads `<...>` in mrkdwn as a mention, a channel, `<!channel>` or a link, so a name
like `<!channel> <https://evil.example|Pay here>` would make the bot ping everyone and post
a disguised link. Every builder takes plain text; `bot.slack.blocks.base` escapes it when it
becomes a mrkdwn text object or a message's fallback text. `Mrkdwn` marks text that is
already safe: creditbot's own wording with every outside string escaped (`md`), or a
mention of a well-formed id. Nothing else makes one, so markup cannot come in unescaped.
Plain-text objects (headers, buttons, options) are shown as typed and are not escaped.

Hand-written rather than markupsafe's `Markup`: that escapes for HTML (quotes become
numeric entities, which Slack shows as typed); Slack wants exactly `&`, `<` and `>`.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable
from typing import Any, LiteralString

#: Slack user ids (U..., W... on Enterprise Grid) and channel ids (C..., G..., D...).
_USER_ID = re.compile(r"[UW][A-Z0-9]{2,20}")
_CHANNEL_ID = re.compile(r"[CGD][A-Z0-9]{2,20}")
#: What may be cut off at the end of a shortened text: half an entity or a `<@U...` token.
_CUT_MARKUP = re.compile(r"(&[a-z]{0,3}|<[^>]*)$")
ELLIPSIS = "…"


class Mrkdwn(str):
    """Safe mrkdwn. Adding or joining plain strings to it escapes them."""

    __slots__ = ()

    def __add__(self, other: str) -> Mrkdwn:
        return Mrkdwn(str.__add__(self, escape(other)))

    def __radd__(self, other: str) -> Mrkdwn:
        return Mrkdwn(str.__add__(escape(other), self))

    def join(self, parts: Iterable[str]) -> Mrkdwn:  # type: ignore[override]
        return Mrkdwn(str.join(self, (escape(p) for p in parts)))


def escape(text: object) -> Mrkdwn:
    """`text` as mrkdwn that Slack shows as typed (`&`, `<`, `>` escaped); safe mrkdwn is
    returned as it is, so nothing is escaped twice."""
    if isinstance(text, Mrkdwn):
        return text
    raw = str(text)
    return Mrkdwn(raw.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"))


class _EscapingFormatter(string.Formatter):
    def format_field(self, value: Any, format_spec: str) -> str:
        if isinstance(value, Mrkdwn) and not format_spec:
            return value
        return escape(super().format_field(value, format_spec))


_formatter = _EscapingFormatter()


def md(template: LiteralString, /, *args: Any, **kwargs: Any) -> Mrkdwn:
    """creditbot's own mrkdwn `template` (`*bold*`, `:emoji:`) filled in like `str.format`,
    with every value escaped unless it is safe mrkdwn already."""
    return Mrkdwn(_formatter.vformat(template, args, kwargs))


def mention(user_id: str) -> Mrkdwn:
    """`<@U123>`, which Slack shows as the person's name; anything that is not a user id
    is shown as typed."""
    if _USER_ID.fullmatch(user_id or ""):
        return Mrkdwn(f"<@{user_id}>")
    return escape(user_id)


def channel_link(channel_id: str) -> Mrkdwn:
    """`<#C123>`, which Slack shows as the channel's name."""
    if _CHANNEL_ID.fullmatch(channel_id or ""):
        return Mrkdwn(f"<#{channel_id}>")
    return escape(channel_id)


def shorten(text: object, limit: int) -> Mrkdwn:
    """Safe mrkdwn of at most `limit` characters: cut at the end, never inside an entity
    or a mention, and marked with an ellipsis."""
    safe = escape(text)
    if len(safe) <= limit:
        return safe
    return Mrkdwn(_CUT_MARKUP.sub("", safe[: limit - len(ELLIPSIS)]) + ELLIPSIS)


def shorten_plain(text: str, limit: int) -> str:
    """Plain text of at most `limit` characters, marked with an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - len(ELLIPSIS)] + ELLIPSIS
