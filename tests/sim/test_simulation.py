"""The whole-system simulation (sim/, docs/simulation.md) as part of the suite: a fixed set
of seeds, a year of simulated time for a few accounts, every saved regression trace, and
each mutation caught. Together they take about a minute."""

from __future__ import annotations

from pathlib import Path

import pytest

from sim.known import KNOWN_DEFECTS
from sim.mutations import MUTATIONS
from sim.runner import Outcome, run
from sim.shrink import load
from sim.workload import Mix, generate

HERE = Path(__file__).parent
REGRESSIONS = sorted((HERE / "regressions").glob("*.json"))
MUTANTS = sorted((HERE / "mutations").glob("*.json"))


def _explain(outcome: Outcome) -> str:
    failure = outcome.failure
    if failure is None:
        return "no failure"
    tail = "\n".join(failure.trace[-30:])
    return f"seed {outcome.setup.seed}: {failure.invariant}: {failure.detail}\n...\n{tail}"


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_every_invariant_holds_for_fixed_seeds(seed, tmp_path):
    setup, inputs = generate(seed, days=6, mix=Mix(accounts=6))
    outcome = run(setup, inputs, tmp_path)
    assert outcome.ok, _explain(outcome)
    assert outcome.counts["usage"] > 100 and outcome.counts["alerts posted"] > 0
    assert outcome.counts["webhook events received"] > 0  # endpoints heard the alerts too


@pytest.mark.slow
def test_a_year_for_a_few_accounts(tmp_path):
    setup, inputs = generate(2026, days=365, mix=Mix(accounts=2, requests=2))
    outcome = run(setup, inputs, tmp_path)
    assert outcome.ok, _explain(outcome)
    # A year renews each account's cycle twelve times (and catches up what crashes delayed).
    assert outcome.counts["renewal"] >= 24
    assert outcome.counts["crashes"] > 0 and outcome.counts["payments credited"] > 0


def test_a_seed_replays_exactly(tmp_path):
    setup, inputs = generate(5, days=2, mix=Mix(accounts=3))
    first = run(setup, inputs, tmp_path / "a")
    second = run(setup, inputs, tmp_path / "b")
    assert first.ok and second.ok, _explain(first)
    assert first.counts == second.counts and first.steps == second.steps


@pytest.mark.parametrize("trace", REGRESSIONS, ids=[p.stem for p in REGRESSIONS])
def test_saved_regressions_pass(trace, tmp_path, request):
    """Each trace once failed. One that shows a defect in code someone else is changing now
    (sim/known.py) is expected to fail until that fix lands, and then must be promoted."""
    setup, inputs, data = load(trace)
    known = data.get("known_defect")
    if known is not None:
        what = (
            KNOWN_DEFECTS[known][0]
            if known in KNOWN_DEFECTS
            else "fixed? remove it from sim/known.py"
        )
        request.applymarker(pytest.mark.xfail(reason=f"{known}: {what}", strict=True))
    outcome = run(setup, inputs, tmp_path, strict=True)
    assert outcome.ok, _explain(outcome)


@pytest.mark.parametrize("trace", MUTANTS, ids=[p.stem for p in MUTANTS])
def test_each_mutation_is_caught(trace, tmp_path):
    setup, inputs, data = load(trace)
    assert data["mutation"] in MUTATIONS
    outcome = run(setup, inputs, tmp_path, mutation=data["mutation"])
    assert outcome.failure is not None, f"{data['mutation']} went unnoticed"
    assert outcome.failure.invariant == data["invariant"], _explain(outcome)
    assert run(setup, inputs, tmp_path / "unmutated").ok  # the same steps pass unbroken


def test_every_mutation_has_a_saved_trace():
    assert {load(p)[2]["mutation"] for p in MUTANTS} == set(MUTATIONS)
