"""The clock of creditbot: renewals, month rollover, auto-recharge, alert delivery and
Stripe reconciliation, on APScheduler 3, run by exactly one process at a time.

- `leader`: who may run jobs now (a PostgreSQL advisory lock, a lock file beside a SQLite
  database, or this process alone);
- `jobs`: each job, how often it runs and what it reports;
- `runner`: the `Scheduler` that runs them, records each run and hands over on takeover.
"""
