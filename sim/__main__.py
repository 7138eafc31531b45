"""`python -m sim`: run the simulation from a seed (or replay a saved trace), print what
happened, and on a failure the shortest step trace that reproduces it.

    python -m sim --seed 7 --days 30              # what `make simulate SEED=7 DAYS=30` runs
    python -m sim --seed 7 --days 365 --accounts 3
    python -m sim --replay sim-failures/seed-7.json
    python -m sim --seed 7 --mutation skip-idempotency   # docs/simulation.md lists them
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from sim.known import KNOWN_DEFECTS, known_defect
from sim.mutations import MUTATIONS
from sim.runner import Outcome, run
from sim.shrink import load, save, shrink
from sim.workload import Mix, describe, generate


def summary(outcome: Outcome, seconds: float) -> list[str]:
    c = outcome.counts
    lines = [
        f"ran {outcome.steps:,} steps ({len(outcome.inputs):,} inputs) in {seconds:.1f} s",
        f"  ledger: {c['usage']:,} charges, {c['refund']:,} call refunds, {c['renewal']:,} renewals, "
        f"{c['topup']:,} wallet credits and refunds; {c['alerts']:,} alerts written, "
        f"{c['alerts posted']:,} posts to Slack",
        f"  Stripe: {c['payments credited']:,} payments credited, {c['refunds taken back']:,} refunds "
        f"taken back, {c['recharge attempts']:,} recharge attempts, {c['webhooks lost for good']:,} "
        "webhooks lost for good",
        f"  faults: {c['crashes']:,} crashes (process restarted from the database), "
        f"{c['posted again after an unanswered post']:,} alerts posted twice after Slack's answer "
        f"was lost, {sum(v for k, v in c.items() if k.startswith('answered ')):,} errors answered",
        f"  webhooks: {c['webhook endpoints added']:,} endpoints added, "
        f"{c['webhook endpoints removed']:,} removed, {c['webhook events received']:,} events "
        f"received, {c['webhook events received twice after the answer was lost']:,} received "
        "twice after the answer was lost",
        "  jobs: "
        + ", ".join(
            f"{k.removeprefix('runs of ')} {v}"
            for k, v in sorted(c.items())
            if k.startswith("runs of ")
        ),  # fmt: skip
    ]
    for name in outcome.known:
        lines.append(f"  known defect seen (tolerated): {name}: {KNOWN_DEFECTS[name][0]}")
    return lines


def condensed(trace: list[str]) -> list[str]:
    """The trace with runs of the same thing (a job failing every hour, say) folded, and
    the daily housekeeping job left out."""
    out: list[str] = []
    run: list[str] = []
    for line in [*(t for t in trace if not t.endswith("job prune_job_runs")), ""]:
        if run and line[20:] == run[0][20:]:
            run.append(line)
            continue
        if run:
            out.append(run[0])
            if len(run) > 1:
                out.append(f"{' ' * 20}... {len(run) - 1} more like it, the last at {run[-1][:19]}")
        run = [line] if line else []
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sim", description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--accounts", type=int, default=Mix().accounts)
    parser.add_argument("--requests", type=int, default=Mix().requests,
                        help="message requests per account and day")  # fmt: skip
    parser.add_argument("--replay", type=Path, help="a trace saved by a failing run")
    parser.add_argument(
        "--mutation", choices=sorted(MUTATIONS), help="break one invariant on purpose"
    )
    parser.add_argument("--strict", action="store_true", help="fail on known defects too")
    parser.add_argument("--no-shrink", action="store_true")
    parser.add_argument(
        "--save", type=Path, default=Path("sim-failures"), help="where failing traces go"
    )
    parser.add_argument(
        "--workdir", type=Path, help="where the database lives (a temporary directory)"
    )
    args = parser.parse_args(argv)

    mutation = args.mutation
    if args.replay:
        setup, inputs, data = load(args.replay)
        mutation = mutation or data.get("mutation")
        print(f"replaying {args.replay} ({len(inputs)} inputs)")
    else:
        setup, inputs = generate(
            args.seed, args.days, Mix(accounts=args.accounts, requests=args.requests)
        )
    print(f"creditbot simulation: seed {setup.seed}, {setup.days} day(s) from {setup.start:%Y-%m-%d %H:%M} UTC, "
          f"{len(setup.accounts)} account(s), mutation: {mutation or 'none'}")  # fmt: skip
    print("\n".join(describe(setup)))
    with tempfile.TemporaryDirectory(prefix="creditbot-sim-") as tmp:
        workdir = args.workdir or Path(tmp)
        started = time.monotonic()
        outcome = run(setup, inputs, workdir, mutation=mutation, strict=args.strict)
        print("\n".join(summary(outcome, time.monotonic() - started)))
        if outcome.failure is None:
            print("OK: every invariant held after every step, and once the run settled.")
            return 0
        failure = outcome.failure
        print(f"\nFAILED: {failure.invariant}\n  {failure.detail}")
        print(
            f"  at {failure.at:%Y-%m-%d %H:%M:%S} UTC, after input {failure.inputs_run} of {len(inputs)}"
        )
        if not args.no_shrink and not args.replay:
            print("shrinking (replaying the seed with fewer steps)...")
            shrunk = shrink(
                setup, inputs, outcome, workdir, mutation=mutation, strict=args.strict, say=print
            )
            setup, inputs, outcome = shrunk.setup, shrunk.inputs, shrunk.outcome
            assert outcome.failure is not None
            failure = outcome.failure
            print(f"  {len(inputs)} input(s), {len(setup.accounts)} account(s), in {shrunk.runs} runs "
                  f"({shrunk.seconds:.0f} s): {failure.invariant}\n  {failure.detail}")  # fmt: skip
        path = (
            args.replay or args.save / f"seed-{setup.seed}{'-' + mutation if mutation else ''}.json"
        )
        known = known_defect(failure.detail)
        if not args.replay:
            save(
                path,
                setup,
                inputs,
                mutation=mutation,
                invariant=failure.invariant,
                known_defect=known,
            )
        if known:
            print(f"(this is known defect {known}: {KNOWN_DEFECTS[known][0]})")
        print("\nthe step trace that reproduces it (inputs numbered; the rest follows from them):")
        print("\n".join(describe(setup)))
        print("\n".join("  " + line for line in condensed(failure.trace)))
        print(f"\nreplay it: python -m sim --replay {path}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
