"""Adapters around the ledger: Slack (Bolt), HTTP, Stripe, the scheduler and the CLI."""
