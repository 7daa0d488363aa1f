"""How often clause selection shows the judge the clause an example illustrates (model spec examples).

Prints recall@k for k in 4, 8, 16 next to the recall of k random clauses, as key=value figures."""

from __future__ import annotations

import json
import random
import sys
import time
from pathlib import Path

from overseer.clauses import ClauseSelector
from overseer.spec import load_spec
from overseer.types import Sample

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


def main() -> None:
    spec = load_spec(DATA / "openai_model_spec.md")
    rows = [json.loads(line) for line in (DATA / "model_spec_examples.jsonl").open()]
    selector = ClauseSelector(spec, max_clauses=8)
    started = time.perf_counter()
    ranks = []
    for row in rows:
        sample = Sample(id=row["id"], prompt=row["conversation"], response=row["response"])
        ids = [c.id for c in selector.rank(sample)]
        ranks.append(ids.index(row["spec_clause"]) if row["spec_clause"] in ids else len(ids))
    per_sample_ms = (time.perf_counter() - started) * 1000 / len(rows)
    n = len(selector.candidates)
    rng = random.Random(0)
    figures = {"n": len(rows), "clauses": len(spec.clauses), "ms_per_sample": round(per_sample_ms, 2)}
    for k in (4, 8, 16):
        figures[f"recall@{k}"] = round(sum(r < k for r in ranks) / len(rows), 3)
        figures[f"random@{k}"] = round(sum(rng.randrange(n) < k for _ in rows) / len(rows), 3)
    print(" ".join(f"{k}={v}" for k, v in figures.items()))


if __name__ == "__main__":
    sys.exit(main())
