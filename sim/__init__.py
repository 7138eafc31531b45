"""A deterministic whole-system simulation of creditbot (issue 15; docs/simulation.md).

One seed drives the product's real code -- the ledger, the Stripe gateway, Slack alert
delivery, the scheduler's jobs -- through simulated time, against in-memory fakes of Stripe
and Slack that fail the way they do, with crashes between any two commits; after every
step the brief's invariants are checked against a reference model. A failure replays
exactly from its seed and is shrunk to the shortest trace that still fails.

It lives beside `ledger/` and `bot/` rather than under `tests/` because it is a tool with
its own command (`python -m sim`, `make simulate`), its own fakes and its own model; the
tests in `tests/sim/` run it (fixed seeds, a year, saved regressions, the mutations).

- `workload`: the seeded setup and steps; `steps`: what a step is;
- `system`: creditbot in one process, wired to the fakes through two seams; `clock`,
  `crash`: simulated time and crashes; `scheduler`: when the jobs run;
- `fake_stripe`, `stripe_http`, `stripe_events`: Stripe, its API, its webhooks;
  `fake_slack`: Slack's Web API; `actors`: runtimes, admins, customers, banks;
- `model`: the brief's rules, apart from the ledger; `observe`: reading back what was
  committed; `checker`, `money`, `delivery`: the invariants;
- `runner`: one run; `shrink`: the shortest failing trace; `mutations`: invariants broken
  on purpose; `known`: defects found in code others are changing now.
"""
