"""Edge-case memory at scale: insert rate, query latency (p50/p95) of EdgeCaseStore.similar at 10k and 100k
cases, beside a raw chromadb query on the same vectors in the same run, and WordLlama embedding throughput.

    python bench/memory.py [--sizes 10000 100000] [--queries 200]
Prints one line of key=value figures per size."""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from overseer.memory.store import EdgeCaseStore, case_id
from overseer.types import EdgeCase

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "jbb_calibration.jsonl"
WORDS = ["model", "answer", "request", "policy", "harmful", "safe", "user", "assistant", "explain", "steps",
         "guide", "refuse", "sorry", "sure"]


def synthetic_cases(n: int, seed: int = 0) -> list[EdgeCase]:
    """Real JailbreakBench texts, varied so every case is distinct; every other case reviewed."""
    rng = random.Random(seed)
    rows = [json.loads(line) for line in DATA.open()]
    cases = []
    for i in range(n):
        row = rows[i % len(rows)]
        response = f"{row['response'][:600]} {' '.join(rng.choices(WORDS, k=8))} #{i}"
        cases.append(EdgeCase(id=case_id(row["goal"], response, f"bench-{i}"), prompt=row["goal"], response=response,
                              label="misaligned" if row["jailbroken"] else "aligned", source="import",
                              source_ref=f"shard-{i % 7}", reviewed=i % 2 == 0))
    return cases


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered) * 1000, ordered[int(0.95 * (len(ordered) - 1))] * 1000


def bench_size(n: int, queries: int, root: Path) -> str:
    cases = synthetic_cases(n)
    store = EdgeCaseStore(root / f"m{n}", writable=True)
    started = time.perf_counter()
    store.add(cases)
    insert_s = time.perf_counter() - started

    rng = random.Random(1)
    probes = [rng.choice(cases).text() + " probe" for _ in range(queries)]
    vectors = store.embedder.embed(probes)
    ours, raw = [], []
    for vector in vectors:  # interleaved, so machine noise hits both alike
        t0 = time.perf_counter()
        store.similar("", k=4, vector=vector)
        t1 = time.perf_counter()
        # Raw chroma on the very index `similar` searches (the reviewed cases), same vector, plain top-4.
        store.index(reviewed=True).query(query_embeddings=[vector], n_results=4, include=["documents", "distances"])
        t2 = time.perf_counter()
        ours.append(t1 - t0)
        raw.append(t2 - t1)
    store.close()
    (o50, o95), (r50, r95) = percentiles(ours), percentiles(raw)
    return (f"n={n} insert_per_s={n / insert_s:.0f} similar_p50_ms={o50:.2f} similar_p95_ms={o95:.2f} "
            f"raw_chroma_p50_ms={r50:.2f} raw_chroma_p95_ms={r95:.2f} ratio_p50={o50 / r50:.2f}")


def embedding_rate(n: int = 5000) -> float:
    texts = [c.text() for c in synthetic_cases(n, seed=2)]
    from overseer.embeddings import make_embedder

    embedder = make_embedder("wordllama")
    embedder.embed(texts[:10])  # load the model outside the timing
    started = time.perf_counter()
    embedder.embed(texts)
    return n / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    print(f"embed_docs_per_s={embedding_rate():.0f}")
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            print(bench_size(n, args.queries, Path(tmp)), flush=True)


if __name__ == "__main__":
    np.random.seed(0)
    main()
