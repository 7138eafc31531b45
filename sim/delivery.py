"""Alerts reach Slack once each, in order, and none is lost.

Each account has its own alert channel in the fake Slack. Its posts, read in order, must
be its outbox alerts in order, each once: the text of each post is checked against the
alert it should be (rendered by the product's own renderer). The alerts marked delivered
are exactly those posted.

One duplicate is unavoidable and is allowed, and counted: Slack's chat.postMessage has no
idempotency key, so when Slack posted a message but its answer never came back (a read
timeout), or the process died between Slack's answer and the commit that records it,
creditbot cannot know the message is there and posts it again. Only such a post may be
followed by a second copy of the same alert.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from bot.slack.blocks import alert_message
from sim.actors import World
from sim.fake_slack import FakeSlack, Post
from sim.model import Violation
from sim.observe import Look, OutboxRow

_RENEWAL = re.compile(r" Next renewal: [^.]*\.")


def _text(row: OutboxRow, account: dict[str, Any]) -> str:
    rendered = alert_message(
        row.kind, row.payload, account_name=account["name"], currency=account["currency"],
        timezone=account["timezone"], next_renewal_at=None,
    )  # fmt: skip
    return _RENEWAL.sub("", rendered["text"])


class _Channel:
    def __init__(self) -> None:
        self.rows: list[OutboxRow] = []
        #: Rows posted at least once (a prefix of `rows`), and whether the last post of the
        #: last of them may not have been seen by creditbot.
        self.posted = 0
        self.last_uncertain = False
        #: Posted, not yet marked delivered.
        self.unmarked: set[int] = set()


class DeliveryChecker:
    def __init__(self, slack: FakeSlack, world: World) -> None:
        self.slack = slack
        self.world = world
        self._seen = 0
        self.channels: dict[int, _Channel] = {}
        self.account_of: dict[int, int] = {}
        self.delivered: set[int] = set()
        self.counts: Counter[str] = Counter()

    def after(self, look: Look) -> None:
        touched: set[int] = set()
        for row in look.outbox:
            if row.kind.startswith("alert.") and row.account_id is not None:
                self.channels.setdefault(row.account_id, _Channel()).rows.append(row)
                self.account_of[row.id] = row.account_id
        for post in self.slack.posts[self._seen :]:
            touched.add(self._post(post, look))
        self._seen = len(self.slack.posts)
        for message_id in sorted(look.delivered - self.delivered):
            account_id = self.account_of[message_id]
            channel = self.channels[account_id]
            if message_id not in channel.unmarked:
                raise Violation(
                    "every alert posted once, none lost",
                    f"account {account_id}: alert {message_id} marked delivered but never posted",
                )
            channel.unmarked.discard(message_id)
            touched.add(account_id)
        self.delivered |= look.delivered
        for account_id in sorted(touched):
            channel = self.channels[account_id]
            last = channel.rows[channel.posted - 1].id if channel.posted else None
            if channel.unmarked and not (channel.unmarked == {last} and channel.last_uncertain):
                raise Violation("every alert posted once, none lost",
                                f"account {account_id}: alert(s) {sorted(channel.unmarked)} posted "
                                "but not marked delivered")  # fmt: skip

    def _post(self, post: Post, look: Look) -> int:
        account_id = self.world.accounts[self.world.channels.index(post.channel)]
        channel = self.channels.setdefault(account_id, _Channel())
        account = look.accounts[account_id]
        text = _RENEWAL.sub("", post.text)
        uncertain = post.answer_lost or post.crashed
        self.counts["alerts posted"] += 1
        if channel.posted < len(channel.rows) and text == _text(
            channel.rows[channel.posted], account
        ):
            channel.unmarked.add(channel.rows[channel.posted].id)
            channel.posted += 1
            channel.last_uncertain = uncertain
            return account_id
        if channel.posted and text == _text(channel.rows[channel.posted - 1], account):
            last = channel.rows[channel.posted - 1]
            if channel.last_uncertain:
                self.counts["posted again after an unanswered post"] += 1
                channel.last_uncertain = uncertain
                return account_id
            raise Violation(
                "every alert posted once, none lost",
                f"account {account_id}: alert {last.id} ({last.kind}) posted twice: {post.text!r}",
            )
        want = channel.rows[channel.posted] if channel.posted < len(channel.rows) else None
        later = [r for r in channel.rows[channel.posted + 1 :] if _text(r, account) == text]
        raise Violation("every alert posted once, none lost",
                        f"account {account_id}: posted {post.text!r}"
                        f"{f' (alert {later[0].id}, out of order)' if later else ''}; the next alert "
                        f"is {f'{want.id}: {_text(want, account)!r}' if want else 'none'}")  # fmt: skip

    def settled(self) -> None:
        for account_id, channel in self.channels.items():
            waiting = [r.id for r in channel.rows if r.id not in self.delivered]
            if waiting:
                raise Violation(
                    "every alert posted once, none lost",
                    f"account {account_id}: alert(s) {waiting} never delivered",
                )
