"""Cutting a failing run down to the fewest steps that still fail the same way.

Every candidate is a fresh, deterministic run of the same seed with fewer inputs, so a
candidate that fails reproduces exactly. In order, each kept only if the same invariant
still breaks:

1. the inputs after the failure, and the days after it, are dropped;
2. whole accounts are dropped (from the setup and the inputs), one at a time;
3. chunks of inputs are dropped, halves first, then smaller (delta debugging), down to
   single steps, within a budget of runs.

A trace is saved as JSON (setup and inputs) so `python -m sim --replay FILE` runs it again.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sim import steps as s
from sim.runner import Outcome, run
from sim.workload import AccountPlan, AgentPlan, Setup


@dataclass
class Shrunk:
    setup: Setup
    inputs: list[s.Step]
    outcome: Outcome
    runs: int
    seconds: float


def without_account(setup: Setup, inputs: list[s.Step], index: int) -> tuple[Setup, list[s.Step]]:
    """The run without account `index`: its plan and its steps gone, the others renumbered."""
    accounts = setup.accounts[:index] + setup.accounts[index + 1 :]
    kept = []
    for step in inputs:
        acct = step.account
        if acct == index:
            continue
        if acct is not None and acct > index:
            step = dataclasses.replace(step, acct=acct - 1)  # type: ignore[call-arg]
        kept.append(step)
    return dataclasses.replace(setup, accounts=accounts), kept


def shrink(setup: Setup, inputs: list[s.Step], failed: Outcome, workdir: Path, *,
           mutation: str | None = None, strict: bool = False, max_runs: int = 120,
           max_seconds: float = 300.0, say: Callable[[str], None] = lambda _: None) -> Shrunk:  # fmt: skip
    assert failed.failure is not None
    invariant = failed.failure.invariant
    started = time.monotonic()
    runs = 0
    best = (setup, inputs, failed)

    def attempt(candidate_setup: Setup, candidate: list[s.Step]) -> bool:
        nonlocal runs, best
        if runs >= max_runs or time.monotonic() - started > max_seconds:
            return False
        runs += 1
        outcome = run(candidate_setup, candidate, workdir, mutation=mutation, strict=strict)
        if outcome.failure is not None and outcome.failure.invariant == invariant:
            best = (candidate_setup, candidate, outcome)
            return True
        return False

    def trim_days() -> None:
        """A failure found once the run settled may need only the day after the last input."""
        run_setup, run_inputs, outcome = best
        if outcome.failure is None or not outcome.failure.settling:
            return
        last = max((step.at for step in run_inputs), default=run_setup.start)
        days = math.ceil((last - run_setup.start) / timedelta(days=1)) + 1
        if days < run_setup.days:
            attempt(dataclasses.replace(run_setup, days=days), run_inputs)

    # 1. Nothing after the failure matters.
    failure = failed.failure
    prefix = inputs[: failure.inputs_run]
    days = setup.days
    if not failure.settling:
        days = max(1, math.ceil((failure.at - setup.start) / timedelta(days=1)))
    if len(prefix) < len(inputs) or days < setup.days:
        attempt(dataclasses.replace(setup, days=days), prefix)
    trim_days()
    say(f"  prefix: {len(best[1])} inputs, {best[0].days} day(s)")

    # 2. Whole accounts: first all but the one the failure names, then one at a time.
    named = re.search(r"account (\d+)", best[2].failure.detail if best[2].failure else "")
    if named and 1 <= int(named.group(1)) <= len(best[0].accounts) and len(best[0].accounts) > 1:
        keep = int(named.group(1)) - 1  # a fresh database numbers the setup's accounts from 1
        only_setup, only = best[0], best[1]
        for index in reversed(range(len(best[0].accounts))):
            if index != keep:
                only_setup, only = without_account(only_setup, only, index)
        attempt(only_setup, only)
    index = len(best[0].accounts) - 1
    while index >= 0 and len(best[0].accounts) > 1:
        attempt(*without_account(best[0], best[1], index))
        index -= 1
    say(f"  accounts: {len(best[0].accounts)} left, {len(best[1])} inputs")

    # 3. Chunks of inputs, halves first (ddmin).
    parts = 2
    while len(best[1]) >= 1 and runs < max_runs:
        current = best[1]
        size = max(1, len(current) // parts)
        removed = False
        for begin in range(0, len(current), size):
            candidate = current[:begin] + current[begin + size :]
            if attempt(best[0], candidate):
                removed = True
                break
        if removed:
            parts = max(2, parts - 1)
        elif size == 1:
            break
        else:
            parts = min(len(current), parts * 2)
    trim_days()
    say(f"  steps: {len(best[1])} inputs left, {best[0].days} day(s), after {runs} runs")
    return Shrunk(best[0], best[1], best[2], runs, time.monotonic() - started)


# --- saved traces ---------------------------------------------------------------------------


def save(path: Path, setup: Setup, inputs: list[s.Step], *, mutation: str | None,
         invariant: str | None, known_defect: str | None = None) -> None:  # fmt: skip
    data = {
        "known_defect": known_defect,
        "seed": setup.seed,
        "start": setup.start.isoformat(),
        "days": setup.days,
        "mutation": mutation,
        "invariant": invariant,
        "accounts": [dataclasses.asdict(a) for a in setup.accounts],
        "inputs": [s.to_json(step) for step in inputs],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1) + "\n")


def load(path: Path) -> tuple[Setup, list[s.Step], dict[str, Any]]:
    data = json.loads(path.read_text())
    accounts = tuple(
        AccountPlan(**{**a, "agents": tuple(AgentPlan(**g) for g in a["agents"])})
        for a in data["accounts"]
    )
    setup = Setup(data["seed"], datetime.fromisoformat(data["start"]), data["days"], accounts)
    return setup, [s.from_json(step) for step in data["inputs"]], data
