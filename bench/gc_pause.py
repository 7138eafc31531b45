"""A full garbage collection in a started server, with what startup built frozen
(bot/http/heap.py) next to the same collection with it not frozen (the baseline), in one
process.

A full collection answers nothing while it walks, so every charge in flight waits for it.
The app is started as `creditbot serve` starts it (its lifespan, on a SQLite file), serves
`--charges` message charges, and then times `--rounds` full collections as the app runs
(its startup heap frozen, what serving made since walked), then as many with that heap put
back in the collector's passes (`gc.unfreeze`): the same objects, all of them walked.

    python bench/gc_pause.py [--charges 2000] [--rounds 7]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fastapi.testclient import TestClient  # noqa: E402

from bench.api_charge import setup  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.context import AppContext  # noqa: E402
from bot.http.app import create_app  # noqa: E402
from ledger.db import make_engine  # noqa: E402


def full_collection_ms() -> float:
    start = time.perf_counter()
    gc.collect()
    return (time.perf_counter() - start) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--charges", type=int, default=2000, help="charges served first")
    parser.add_argument("--rounds", type=int, default=7, help="collections timed per side")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/bench.db"
        ((_, agent_id, secret),) = setup(url)  # migrated, with one account, agent and key
        engine = make_engine(url)
        settings = Settings(database_url=url, run_scheduler=False, slack_bot_token="")
        app = create_app(AppContext(settings=settings, engine=engine))
        with TestClient(app) as client:
            body = {"agent_id": agent_id, "quantity": 1, "direction": "outbound"}
            for n in range(args.charges):
                answer = client.post(
                    "/v1/messages",
                    json=body,
                    headers={"Authorization": f"Bearer {secret}", "Idempotency-Key": f"gc-{n}"},
                )
                assert answer.status_code == 200, answer.text
            # As the app serves: its startup heap frozen, what serving made since walked.
            frozen_objects, walked = gc.get_freeze_count(), len(gc.get_objects())
            frozen = [full_collection_ms() for _ in range(args.rounds)]
            # The baseline: the same heap, all of it walked (frozen again before the app
            # stops, which unfreezes it).
            gc.unfreeze()
            baseline = [full_collection_ms() for _ in range(args.rounds)]
            gc.freeze()
        engine.dispose()
    base, ours = statistics.median(baseline), statistics.median(frozen)
    print(f"after {args.charges} charges; medians of {args.rounds} collections each")
    print(
        f"full collection, startup heap in it (baseline): {base:7.2f} ms"
        f"  ({walked + frozen_objects:,} objects walked)"
    )
    print(
        f"full collection, startup heap frozen:           {ours:7.2f} ms"
        f"  ({walked:,} objects walked)  {ours / base:.4f}x the baseline"
    )


if __name__ == "__main__":
    main()
