"""The memory cascade on JailbreakBench: the fast judge learns from one half of the behaviours and decides the
other half, and for several TAU we report the share of LLM calls saved and the agreement with the reference
label, the LLM being simulated by the reference label itself (so the figure isolates what the cascade costs).
The acceptance split is train = behaviours 0-24, test = 25-49; the reverse split is printed as a check that
the default TAU was not tuned to one split.

    python bench/cascade.py
Prints two tables, then one line of key=value figures for the default TAU."""

from __future__ import annotations

import json
import time
from pathlib import Path

from overseer.embeddings import make_embedder
from overseer.memory.fast_judge import FastJudge, Features, cascade_table, featurize
from overseer.memory.judge_memory import DEFAULT_CASCADE_TAU

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "jbb_calibration.jsonl"
TAUS = sorted({0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.99, DEFAULT_CASCADE_TAU})


def split_table(features: Features, labels: list[str], train: list[int],
                test: list[int]) -> tuple[str, list[dict[str, float]]]:
    judge = FastJudge(features.subset(train), [labels[i] for i in train])
    return judge.name, cascade_table(judge.decisions(features.subset(test), 0.0), [labels[i] for i in test], TAUS)


def main() -> None:
    rows = [json.loads(line) for line in DATA.open()]
    embedder = make_embedder("wordllama")
    embedder.embed(["load the model outside the timing"])
    started = time.perf_counter()
    features = featurize(embedder.embed, [r["prompt"] for r in rows], [r["response"] for r in rows])
    embed_s = time.perf_counter() - started
    labels = ["misaligned" if r["jailbroken"] else "aligned" for r in rows]
    low = [i for i, r in enumerate(rows) if r["behavior_index"] < 25]
    high = [i for i, r in enumerate(rows) if r["behavior_index"] >= 25]
    results = {}
    for name, train, test in (("train 0-24, test 25-49", low, high), ("reverse: train 25-49, test 0-24", high, low)):
        judge_name, table = split_table(features, labels, train, test)
        results[name] = table
        print(f"\n{name}: {judge_name}, {len(test)} test samples")
        print(f"{'TAU':>6} {'saved':>7} {'agreement':>10} {'memory accuracy':>16}")
        for row in table:
            print(f"{row['tau']:>6.2f} {row['saved']:>7.1%} {row['agreement']:>10.1%} {row['memory_accuracy']:>16.1%}")
    main_row = next(r for r in results["train 0-24, test 25-49"] if r["tau"] == DEFAULT_CASCADE_TAU)
    reverse_row = next(r for r in results["reverse: train 25-49, test 0-24"] if r["tau"] == DEFAULT_CASCADE_TAU)
    print(f"tau={DEFAULT_CASCADE_TAU} saved={main_row['saved']:.3f} "
          f"points_lost={100 * (1 - main_row['agreement']):.2f} reverse_saved={reverse_row['saved']:.3f} "
          f"reverse_points_lost={100 * (1 - reverse_row['agreement']):.2f} "
          f"featurize_docs_per_s={len(rows) / embed_s:.0f}")


if __name__ == "__main__":
    main()
