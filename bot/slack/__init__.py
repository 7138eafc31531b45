"""The Slack app (Bolt for Python): listeners, Block Kit builders, alert delivery."""
