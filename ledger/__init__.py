"""The credits ledger: accounts, plan credits, wallet, agents and charges.

Plain functions over a SQLAlchemy session. Imports nothing from `bot`, Slack or Stripe.
"""
