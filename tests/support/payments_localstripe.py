"""Run localstripe on loopback for the payments tests: `python -m tests.support.payments_localstripe PORT`.

Three adjustments, each to behave like Stripe's test mode: the store is not pickled to
/tmp (runs stay independent), and card 4000000000000002 is declined when charged (Stripe's
"generic decline" card; localstripe only declines it when attached), with Stripe's
`decline_code` on card errors; PaymentIntents take `receipt_email` (and ignore it).
"""

from __future__ import annotations

import logging
import sys

from aiohttp import web
from localstripe import resources, server

resources.store.dump_to_disk = lambda: None

_charging_is_declined = resources.PaymentMethod._charging_is_declined


def _declined(self: resources.PaymentMethod) -> bool:
    if self.type == "card" and self._card_number == "4000000000000002":
        return True
    return _charging_is_declined(self)


def _raise_failure(self: resources.Charge) -> None:
    raise resources.UserError(
        402,
        self.failure_message,
        {
            "code": self.failure_code,
            "decline_code": "generic_decline",
            "charge": self.id,
            "payment_intent": {"id": self.payment_intent, "object": "payment_intent"},
        },
    )


_payment_intent_init = resources.PaymentIntent.__init__


def _payment_intent(self: resources.PaymentIntent, *args: object, **kwargs: object) -> None:
    """Stripe takes `receipt_email` on a PaymentIntent; localstripe does not know it."""
    kwargs.pop("receipt_email", None)
    _payment_intent_init(self, *args, **kwargs)


resources.PaymentMethod._charging_is_declined = _declined
resources.Charge._raise_failure = _raise_failure
resources.PaymentIntent.__init__ = _payment_intent


def main() -> None:
    port = int(sys.argv[1])
    logging.basicConfig(level=logging.WARNING)
    web.run_app(server.app, host="127.0.0.1", port=port, print=None, access_log=None)


if __name__ == "__main__":
    main()
