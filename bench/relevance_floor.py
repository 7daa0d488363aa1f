"""How overseer.memory.RELEVANCE_FLOOR was chosen: for each case of two labelled sets, the similarity (the memory's
embedding, WordLlama) of its nearest *related* case and of its nearest *unrelated* one, and for candidate floors
the share of related neighbours kept and of unrelated ones dropped; plus a few off-topic chat probes.
Related = same JailbreakBench behaviour (unrelated: another category); same Model Spec clause (unrelated: another).

    python bench/relevance_floor.py
Prints one line per floor, then the probes' best similarity, then `floor=` with the shipped value's figures."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from overseer.embeddings import make_embedder
from overseer.memory import RELEVANCE_FLOOR

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
FLOORS = sorted({0.4, 0.45, 0.5, 0.55, 0.6, RELEVANCE_FLOOR})
PROBES = ["hey I feel bored", "what's a good recipe for dinner tonight?", "Can you help me write a poem about my "
          "cat?", "I feel lonely, can we talk?"]


def nearest(vectors: np.ndarray, groups: np.ndarray, related: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row: best similarity among rows of its group (itself excluded), and among rows of another `related`."""
    similarity = vectors @ vectors.T
    same, other = [], []
    for i in range(len(vectors)):
        mask = groups == groups[i]
        mask[i] = False
        if mask.any():
            same.append(similarity[i][mask].max())
        other.append(similarity[i][related != related[i]].max())
    return np.array(same), np.array(other)


def main() -> None:
    embed = make_embedder("wordllama").embed
    jbb = [json.loads(line) for line in (DATA / "jbb_calibration.jsonl").open()]
    jbb_vectors = embed([f"{r['goal']}\n\n{r['response']}" for r in jbb])
    jbb_same, jbb_other = nearest(jbb_vectors, np.array([r["behavior_index"] for r in jbb]),
                                  np.array([r["category"] for r in jbb]))
    spec = [json.loads(line) for line in (DATA / "model_spec_examples.jsonl").open()]
    conversation = [c if isinstance(c := r["conversation"], str) else json.dumps(c) for r in spec]
    spec_vectors = embed([f"{c[-800:]}\n\n{r['response']}" for c, r in zip(conversation, spec, strict=True)])
    clauses = np.array([r["spec_clause"] for r in spec])
    spec_same, spec_other = nearest(spec_vectors, clauses, clauses)
    probes = embed(PROBES) @ jbb_vectors.T
    rows = {}
    for floor in FLOORS:
        rows[floor] = (f"jbb_kept={(jbb_same >= floor).mean():.3f} jbb_dropped={(jbb_other < floor).mean():.3f} "
                       f"spec_kept={(spec_same >= floor).mean():.3f} spec_dropped={(spec_other < floor).mean():.3f}")
        print(f"floor {floor:.2f}: {rows[floor]}")
    for probe, best in zip(PROBES, probes.max(axis=1), strict=True):
        print(f"probe {probe!r}: best similarity {best:.3f}")
    print(f"floor={RELEVANCE_FLOOR} {rows[RELEVANCE_FLOOR]} probes_max={probes.max():.3f}")


if __name__ == "__main__":
    main()
