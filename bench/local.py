"""The judge step of README command 1 on the embedded model: the examples judged one after another by the spec
judge on the local backend, before (the grammar path, today's settings before guided decoding) and after (guided
decoding), beside a bare llama-cpp-python call reading the same prompts and writing, with no schema, as many
tokens as each of `after`'s replies holds. Samples are interleaved (before, after, bare for each) so that load on
a shared machine falls on all three alike; each mode has its own model handle, so its KV cache is its own. Model
loading (with the bundled model's conversion to Q8_0, and guided decoding's one-off vocabulary scan) is timed apart,
as setup_s. `stored` is `after` on the file's weights as stored (Q4_1, no conversion), and `bare` reads the same
weights as `after`, so after_vs_bare is the decoder's own cost.

    python bench/local.py [--input examples/em_samples.jsonl] [--limit N] [--modes before,stored,after,bare]
Prints one line of key=value figures per mode, then the ratios. Verdict quality on SmolLM2 is poor by design:
the scored count and agreement with the input's labels are printed so that speed is never read as quality."""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from overseer.config import load_settings
from overseer.judging.judge import Judge
from overseer.providers.guided import DecodeStats, GuidedDecoder
from overseer.providers.local import LocalProvider, convert_weights
from overseer.run import build_judges
from overseer.samples_io import FieldMap, read_samples
from overseer.spec import load_spec
from overseer.types import Sample, Verdict

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Figures:
    seconds: float = 0.0
    setup: float = 0.0
    samples: int = 0
    calls: int = 0
    tokens: DecodeStats = field(default_factory=DecodeStats)
    labels: Counter[str] = field(default_factory=Counter)
    agree: int = 0

    def add(self, stats: DecodeStats) -> None:
        self.calls += 1
        for f in fields(DecodeStats):
            setattr(self.tokens, f.name, getattr(self.tokens, f.name) + getattr(stats, f.name))

    def line(self, mode: str) -> str:
        t = self.tokens
        return (f"mode={mode} samples={self.samples} calls={self.calls} setup_s={self.setup:.1f} "
                f"total_s={self.seconds:.1f} "
                f"s_per_sample={self.seconds / max(self.samples, 1):.2f} prompt_tokens_evaluated={t.evaluated_tokens} "
                f"prompt_tokens_reused={t.reused_tokens} generated_tokens={t.generated_tokens} "
                f"scaffold_tokens={t.scaffold_tokens} labels={dict(self.labels)} agree_with_input_label={self.agree}")


def counting(provider: LocalProvider, figures: Figures) -> None:
    """Every call the judge makes (re-asks and second passes included) adds its token figures."""
    complete = provider.complete

    async def counted(*args: Any, **kwargs: Any) -> Any:
        result = await complete(*args, **kwargs)
        if provider.last_stats is not None:
            figures.add(provider.last_stats)
        return result

    provider.complete = counted  # type: ignore[method-assign]


def make_judge(mode: str, samples: list[Sample], workspace: str) -> Judge:
    settings = load_settings(workspace=workspace, backend="local")
    judge = next(iter(build_judges(settings, load_spec(None), None, samples=samples).values()))
    assert isinstance(judge.provider, LocalProvider)
    judge.provider.guided = mode != "before"
    if mode == "stored":
        judge.provider = LocalProvider(weights=None)
    return judge


def load(provider: LocalProvider, figures: Figures) -> None:
    started = time.perf_counter()
    provider._llm = provider._load()
    if provider.guided:
        provider._decoder = GuidedDecoder(provider._llm)
    figures.setup = time.perf_counter() - started


async def judged(judge: Judge, sample: Sample, figures: Figures) -> Verdict:
    started = time.perf_counter()
    verdict = await judge.judge(sample, list(judge.spec.clauses))
    figures.seconds += time.perf_counter() - started
    figures.samples += 1
    figures.labels[verdict.label or verdict.status] += 1
    figures.agree += verdict.label is not None and verdict.label == sample.reference_label
    return verdict


def bare_call(llm: Any, judge: Judge, sample: Sample, n_tokens: int, figures: Figures) -> None:
    """llama-cpp-python as a user would call it: the judge's messages, no schema, as many tokens as `after`'s
    reply holds (the values it chose and the scaffold it read)."""
    wire = [{"role": "system" if m.role == "developer" else m.role, "content": m.content}
            for m in judge.messages(sample, list(judge.spec.clauses))]
    held = llm.input_ids[:llm.n_tokens].tolist()
    started = time.perf_counter()
    result = llm.create_chat_completion(messages=wire, max_tokens=max(n_tokens, 1), temperature=0.0)
    figures.seconds += time.perf_counter() - started
    figures.samples += 1
    prompt = result["usage"]["prompt_tokens"]
    reused = next((i for i, (a, b) in enumerate(zip(held, llm.input_ids[:prompt].tolist(), strict=False)) if a != b),
                  min(len(held), prompt))
    figures.add(DecodeStats(prompt_tokens=prompt, reused_tokens=reused, evaluated_tokens=prompt - reused,
                            generated_tokens=result["usage"]["completion_tokens"]))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", default=str(ROOT / "examples" / "em_samples.jsonl"))
    parser.add_argument("--label-field", default="label")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--modes", default="before,stored,after,bare")
    args = parser.parse_args()
    modes = args.modes.split(",")
    loaded = read_samples(args.input, FieldMap(label=args.label_field), limit=args.limit)
    samples = [s for _, s in loaded.samples]
    workspace = tempfile.mkdtemp(prefix="bench-local-")
    # `after` always runs: bare writes as many tokens as its replies hold.
    judges = {m: make_judge(m, samples, workspace) for m in ("before", "stored", "after") if m in modes or
              m == "after"}
    figures = {m: Figures() for m in ("before", "stored", "after", "bare")}
    for mode, judge in judges.items():
        assert isinstance(judge.provider, LocalProvider)
        load(judge.provider, figures[mode])
        counting(judge.provider, figures[mode])
    bare_llm = None
    if "bare" in modes:
        import llama_cpp

        provider = judges["after"].provider
        assert isinstance(provider, LocalProvider)
        started = time.perf_counter()
        with tempfile.TemporaryDirectory() as folder:
            path = (convert_weights(provider.model_path, provider.weights, Path(folder)) if provider.weights
                    else provider.model_path)
            bare_llm = llama_cpp.Llama(model_path=str(path), n_ctx=provider.n_ctx, verbose=False, seed=0,
                                       use_mmap=False)
        figures["bare"].setup = time.perf_counter() - started
    for sample in samples:
        for mode in ("before", "stored"):
            if mode in judges:
                await judged(judges[mode], sample, figures[mode])
        after = figures["after"].tokens
        reply_tokens = after.generated_tokens + after.scaffold_tokens
        await judged(judges["after"], sample, figures["after"])
        if bare_llm is not None:
            reply_tokens = after.generated_tokens + after.scaffold_tokens - reply_tokens
            bare_call(bare_llm, judges["after"], sample, reply_tokens, figures["bare"])
        print(f"{sample.id}: " + "  ".join(f"{m} {f.seconds:.1f}s" for m, f in figures.items() if f.samples),
              file=sys.stderr, flush=True)  # cumulative, so a slow machine shows progress
    for mode in modes:
        print(figures[mode].line(mode))
    ratios = []
    if figures["before"].samples and figures["after"].seconds:
        ratios.append(f"speedup_after_vs_before={figures['before'].seconds / figures['after'].seconds:.2f}")
    if figures["stored"].samples and figures["after"].seconds:
        ratios.append(f"speedup_after_vs_stored={figures['stored'].seconds / figures['after'].seconds:.2f}")
    if figures["bare"].samples and figures["bare"].seconds:
        ratios.append(f"after_vs_bare={figures['after'].seconds / figures['bare'].seconds:.2f}")
    if ratios:
        print(" ".join(ratios))
    for judge in judges.values():
        await judge.provider.aclose()


if __name__ == "__main__":
    asyncio.run(main())
