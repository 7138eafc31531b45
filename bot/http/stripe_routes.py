"""The Stripe webhook and the Checkout success and cancel pages (issue: payments)."""

from __future__ import annotations

from fastapi import FastAPI

from bot.context import AppContext


def register(app: FastAPI, context: AppContext) -> None:
    """Add /stripe/webhook and the Checkout return pages."""
