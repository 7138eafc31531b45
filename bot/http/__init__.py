"""The one ASGI app: Slack events, the Stripe webhook, the agent API and health."""
