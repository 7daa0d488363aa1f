"""Cost of a `judge --batch` run on this machine, against the fake batch API of the tests (tests/batch): the
submit step (every sample replayed to find its first call, recorded, uploaded) and the ingest step (every reply
read, every sample replayed to its verdict and committed). The provider's own hours are not in it.

    python bench/batch.py --n 2000 --api anthropic
Prints one line of key=value figures."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1] / "tests"), str(Path(__file__).resolve().parents[1] / "tests"
                                                                          / "batch")]
from batch_fakes import FakeBatchAPI, backend_args, cli, env_for, write_samples  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--api", choices=["anthropic", "openai"], default="anthropic")
    args = parser.parse_args()
    fake = FakeBatchAPI(polls_to_end=1)
    os.environ.update(env_for(fake))
    try:
        with tempfile.TemporaryDirectory() as tmp:
            data, ws = write_samples(Path(tmp) / "s.jsonl", args.n), Path(tmp) / "ws"
            started = time.perf_counter()
            code, text = cli("judge", str(data), *backend_args(args.api, fake), "--batch", "-w", str(ws))
            submit_s = time.perf_counter() - started
            assert code == 0, text
            from overseer.store import open_store

            store = open_store(ws)
            run = store.list_runs()[0].id
            store.close()
            started = time.perf_counter()
            code, text = cli("runs", "status", run, "-w", str(ws), "--json")
            ingest_s = time.perf_counter() - started
            assert code == 0 and '"state": "finished"' in text, text
    finally:
        fake.close()
    print(f"api={args.api} n={args.n} submit_s={submit_s:.1f} ingest_s={ingest_s:.1f} "
          f"ingest_per_sample_ms={1000 * ingest_s / args.n:.2f} submitted_once={set(fake.submitted.values()) == {1}}")


if __name__ == "__main__":
    main()
