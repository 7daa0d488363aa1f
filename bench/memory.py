"""Edge-case memory at scale, beside raw chromadb in the same run (the machine is shared: read the ratios).

Inserts: EdgeCaseStore.add (log append + fsync, duplicate check, embedding, index, meta) against a raw chroma
`add` of the very vectors the store computed and the same documents, batch by batch and interleaved (one batch
ours, the same batch raw) so machine noise hits both alike. `insert_ratio` = ours / raw, the embedding counted on
our side only; `embedded_insert_ratio` counts it on both (raw chroma plus the embedding a user would still need).
Raw chroma stores the case JSON as its document, as a user of chroma would; the store keeps it in the entry's
metadata instead, which skips chroma's full-text index (see memory/store.py).
Queries: p50/p95 of EdgeCaseStore.similar against a raw top-4 query on the same index and vector, interleaved.

    python bench/memory.py [--sizes 10000 100000] [--queries 200]
Prints one line of key=value figures per size."""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from overseer.embeddings import Embedder, make_embedder
from overseer.memory.store import BATCH, EdgeCaseStore, case_id
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


class RecordingEmbedder:
    """The store's embedder, keeping what it returned and how long it took (so raw chroma gets the same vectors)."""

    def __init__(self, inner: Embedder) -> None:
        self.inner, self.name = inner, inner.name
        self.vectors: list[np.ndarray] = []
        self.seconds = 0.0

    def embed(self, texts: list[str]) -> np.ndarray:
        started = time.perf_counter()
        vectors = self.inner.embed(texts)
        self.seconds += time.perf_counter() - started
        self.vectors.append(vectors)
        return vectors


def insert_side_by_side(cases: list[EdgeCase], store: EdgeCaseStore, recorder: RecordingEmbedder,
                        raw: object) -> tuple[float, float]:
    """Seconds spent by store.add and by raw chroma's add, batch by batch, interleaved."""
    ours = theirs = 0.0
    for start in range(0, len(cases), BATCH):
        batch = cases[start:start + BATCH]
        documents = [c.model_dump_json() for c in batch]  # raw chroma is handed ready documents: not timed
        recorder.vectors.clear()
        t0 = time.perf_counter()
        store.add(batch)
        t1 = time.perf_counter()
        vectors = np.vstack(recorder.vectors)  # one embed call per batch: the same rows, in the same order
        t2 = time.perf_counter()
        raw.add(ids=[c.id for c in batch], embeddings=vectors, documents=documents)  # type: ignore[attr-defined]
        t3 = time.perf_counter()
        ours, theirs = ours + t1 - t0, theirs + t3 - t2
        if (start // BATCH) % 10 == 9:  # a long run on a busy machine shows where it stands
            print(f"  {start + len(batch)} inserted: insert_ratio so far {theirs / ours:.2f}", file=sys.stderr,
                  flush=True)
    return ours, theirs


def bench_size(n: int, queries: int, root: Path) -> str:
    import chromadb
    from chromadb.config import Settings

    cases = synthetic_cases(n)
    recorder = RecordingEmbedder(make_embedder("wordllama"))
    recorder.embed(["load the model outside the timing"])
    recorder.seconds = 0.0
    store = EdgeCaseStore(root / f"m{n}", writable=True, embedder=recorder)
    client = chromadb.PersistentClient(path=str(root / f"raw{n}"), settings=Settings(anonymized_telemetry=False))
    raw = client.get_or_create_collection("raw_cases", metadata={"hnsw:space": "cosine"}, embedding_function=None)
    insert_s, raw_s = insert_side_by_side(cases, store, recorder, raw)
    embed_s = recorder.seconds

    rng = random.Random(1)
    probes = [rng.choice(cases).text() + " probe" for _ in range(queries)]
    vectors = store.embedder.embed(probes)
    ours, theirs = [], []
    for vector in vectors:  # interleaved, so machine noise hits both alike
        t0 = time.perf_counter()
        store.similar("", k=4, vector=vector)
        t1 = time.perf_counter()
        # Raw chroma on the very index `similar` searches (the reviewed cases), same vector, plain top-4.
        store.index(reviewed=True).query(query_embeddings=[vector], n_results=4, include=["documents", "distances"])
        t2 = time.perf_counter()
        ours.append(t1 - t0)
        theirs.append(t2 - t1)
    store.close()
    (o50, o95), (r50, r95) = percentiles(ours), percentiles(theirs)
    return (f"n={n} insert_per_s={n / insert_s:.0f} raw_insert_per_s={n / raw_s:.0f} "
            f"insert_ratio={raw_s / insert_s:.2f} embed_s={embed_s:.1f} "
            f"embedded_insert_ratio={(raw_s + embed_s) / insert_s:.2f} "
            f"similar_p50_ms={o50:.2f} similar_p95_ms={o95:.2f} raw_chroma_p50_ms={r50:.2f} "
            f"raw_chroma_p95_ms={r95:.2f} ratio_p50={o50 / r50:.2f}")


def embedding_rate(n: int = 5000) -> float:
    texts = [c.text() for c in synthetic_cases(n, seed=2)]
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
