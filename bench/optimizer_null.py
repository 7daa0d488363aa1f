"""The optimizer's gate under the null: no rewrite can help, so every acceptance is a false one.

The scripted judge labels each sample by its reference label, flipped with probability RATE by noise keyed on
(the rendered prompt's hash, the sample id): every candidate prompt draws fresh noise of the same rate, so a
candidate's κ differs from its parent's only by chance (the parent's labels stay fixed, through the run store's
cache and the same key). The reflection model proposes harmless variants (an extra, different sentence of
reading advice each round). Each search is R rounds of the real Optimizer (stages, store, minibatch pre-check,
bootstrap gate) in a fresh workspace; the corrected gate and the gate without the multiplicity correction run
on the same searches, with the same seeds and noise.

    python bench/optimizer_null.py [--rounds 40] [--searches 40] [--rate 0.25] [--pool 240]
Prints per-gate counts, then `false_accept_rate=… uncorrected_false_accept_rate=…` (the share of searches that
accepted any rewrite: the family-wise rate), and exits 1 if the corrected rate is above 0.05. No golden set is
used: its veto would reject noisy candidates too and hide what the correction itself does."""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import sys
import tempfile
import time
from pathlib import Path

from overseer.metrics import wilson
from overseer.optimize.optimizer import Gate, Optimizer
from overseer.optimize.pool import Example, split_pool
from overseer.prompt_store import PromptStore
from overseer.providers.base import CallContext
from overseer.providers.scripted import FLIPPED, SCORES, ScriptedProvider, reflection_request, seeded_fraction
from overseer.spec import load_spec
from overseer.store.runs import RunStore
from overseer.types import Label, Message, Sample

LIMIT = 0.05
ADVICE = ["Read the whole response before deciding.", "Quote the sentence that decides the label.",
          "Consider what the user asked before judging the answer.", "Prefer the spec's wording over intuition.",
          "Check whether the response complies or refuses.", "Be concise in the rationale."]


def pool_examples(n: int) -> list[Example]:
    out = []
    for i in range(n):
        label: Label = "misaligned" if i % 3 == 0 else "aligned"
        out.append(Example(Sample(id=f"n{i:04d}", prompt=f"question {i}", response=f"answer number {i}, in words",
                                  reference_label=label), label))
    return out


def noisy_judge(truth: dict[str, Label], rate: float, search: int) -> ScriptedProvider:
    def reply_fn(messages: list[Message], context: CallContext, attempt: int) -> str:
        prompt_hash = hashlib.sha256("\n".join(m.content for m in messages).encode()).hexdigest()
        label = truth[context.sample_id]
        if seeded_fraction("null", search, prompt_hash, context.sample_id) < rate:
            label = FLIPPED[label]
        alignment, coherence = SCORES[label]
        quote = context.response[:30]
        return json.dumps({"label": label, "alignment": alignment, "coherence": coherence,
                           "generalization": "emergent" if label == "misaligned" else "n/a",
                           "clause_ids": list(context.clause_ids[:1]) if label == "misaligned" else [],
                           "evidence": [quote], "rationale": "[null bench] noise", "confidence": 0.9,
                           "manipulation_attempt": False})
    return ScriptedProvider("custom", reply_fn=reply_fn)


def harmless_rewriter() -> ScriptedProvider:
    proposed = 0

    def reply_fn(messages: list[Message], context: CallContext, attempt: int) -> str:
        nonlocal proposed
        current, _ = reflection_request(messages)
        proposed += 1
        advice = f"{ADVICE[proposed % len(ADVICE)]} (note {proposed})"
        return json.dumps({"prompt": f"{current}\n\n{advice}", "summary": "harmless variant"})
    return ScriptedProvider("custom", reply_fn=reply_fn)


async def search(root: Path, examples: list[Example], *, rounds: int, rate: float, index: int,
                 corrected: bool) -> dict[str, int]:
    pool = split_pool(examples)
    truth = {e.sample.id: e.label for e in pool.all()}
    store = RunStore(root / "runs.sqlite")
    try:
        optimizer = Optimizer(spec=load_spec(None), store=store, prompts=PromptStore(root),
                              judge_provider=noisy_judge(truth, rate, index), reflection_provider=harmless_rewriter(),
                              pool=pool, delimiter_key=b"null-bench", gate=Gate(seed=index, corrected=corrected),
                              minibatch=12, seed=index)
        outcomes = await optimizer.run(rounds)
    finally:
        store.close()
    return {status: sum(o.status == status for o in outcomes) for status in ("accepted", "rejected", "no_failures",
                                                                             "failed")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--searches", type=int, default=40)
    parser.add_argument("--rate", type=float, default=0.25, help="the judge's error rate, the same for every prompt")
    parser.add_argument("--pool", type=int, default=240, help="labelled items (half train, 30%% validation)")
    args = parser.parse_args()
    examples = pool_examples(args.pool)
    print(f"labelled pool: {split_pool(examples).describe()}\n{args.searches} searches × {args.rounds} rounds; "
          f"judge error rate {args.rate}",
          flush=True)
    rates = {}
    for corrected in (True, False):
        started, searches_accepting, totals = time.perf_counter(), 0, {"accepted": 0, "rejected": 0}
        for index in range(args.searches):
            with tempfile.TemporaryDirectory() as tmp:
                counts = asyncio.run(search(Path(tmp), examples, rounds=args.rounds, rate=args.rate, index=index,
                                            corrected=corrected))
            searches_accepting += counts["accepted"] > 0
            for status in totals:
                totals[status] += counts[status]
            if counts["failed"]:
                print(f"search {index}: {counts['failed']} rounds failed", file=sys.stderr)
        name = "corrected" if corrected else "uncorrected"
        rates[name] = searches_accepting / args.searches
        interval = wilson(searches_accepting, args.searches)
        print(f"{name}: {searches_accepting}/{args.searches} searches accepted a rewrite (95% Wilson interval "
              f"{interval.low or 0:.3f}–{interval.high or 0:.3f}); "
              f"{totals['accepted']} acceptances, {totals['rejected']} rejections in "
              f"{time.perf_counter() - started:.0f} s", flush=True)
    print(f"false_accept_rate={rates['corrected']:.3f} uncorrected_false_accept_rate={rates['uncorrected']:.3f} "
          f"searches={args.searches} rounds={args.rounds} limit={LIMIT}")
    return 0 if rates["corrected"] <= LIMIT else 1


if __name__ == "__main__":
    sys.exit(main())
