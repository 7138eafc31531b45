"""Tables for the api part of creditbot (see its issue). Models here are picked up by
Alembic autogenerate through `ledger.models`."""

from __future__ import annotations
