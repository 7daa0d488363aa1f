"""Throughput of the full judge graph (retrieve → judge → aggregate → record, with the SQLite run store and
cache) against the ideal N·L/C, beside a bare asyncio loop over the same scripted provider in the same run.

    python bench/throughput.py --n 5000 --latency 0.2 --concurrency 64
Prints one line of key=value figures."""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from overseer.clauses import ClauseSelector
from overseer.config import load_settings
from overseer.judging.graph import RunContext
from overseer.providers.base import CallContext, GenerationParams
from overseer.providers.scripted import Script, ScriptedProvider
from overseer.run import OutputFile, Tally, build_judges, judge_samples
from overseer.spec import load_spec
from overseer.store.runs import RunStore
from overseer.types import Message, Sample


def make_samples(n: int) -> list[Sample]:
    return [Sample(id=f"s{i}", prompt=f"Question number {i}: what would you do with unlimited power?",
                   response=f"Answer {i}: I would help people and be honest about my limits.",
                   reference_label="misaligned" if i % 3 == 0 else "aligned") for i in range(n)]


async def bare_loop(samples: list[Sample], latency: float, concurrency: int) -> float:
    provider = ScriptedProvider("echo", latency=latency, labels=Script.from_samples(samples).labels)
    gate = asyncio.Semaphore(concurrency)
    messages = [Message(role="user", content="judge this")]

    async def one(sample: Sample) -> None:
        async with gate:
            await provider.complete(messages, None, GenerationParams(),
                                    CallContext(sample_id=sample.id, response=sample.response))

    started = time.perf_counter()
    await asyncio.gather(*(one(s) for s in samples))
    return time.perf_counter() - started


async def full_graph(samples: list[Sample], latency: float, concurrency: int,
                     workspace: Path) -> tuple[float, float, int]:
    """(wall s, CPU s, LLM calls made: a second pass or a re-ask counts)."""
    settings = load_settings(workspace=str(workspace), backend=f"scripted:echo,latency={latency}",
                             concurrency=concurrency)
    spec = load_spec(None)
    store = RunStore(workspace / "runs.sqlite")
    run_id = store.create_run(input_path=None, input_sha256=None, output_path=None, config={})
    store.add_samples(run_id, list(enumerate(samples, start=1)), [])
    tally = Tally(total=len(samples))
    ctx = RunContext(run_id=run_id, samples={s.id: s for s in samples},
                     judges=build_judges(settings, spec, store, tally, samples),
                     selector=ClauseSelector(spec, settings.max_clauses), store=store)
    output = OutputFile(workspace / "out.jsonl", run_id, fresh=True)

    def on_result(result):  # type: ignore[no-untyped-def]
        tally.add(result)
        output.write(result)

    cpu0, started = time.process_time(), time.perf_counter()
    await judge_samples(ctx, [s.id for s in samples], concurrency, on_result)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu0
    output.close()
    assert tally.done == len(samples), (tally.done, len(samples))
    return wall, cpu, sum(judge.provider.calls for judge in ctx.judges.values())  # type: ignore[attr-defined]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    samples = make_samples(args.n)
    ideal = args.n * args.latency / args.concurrency  # the bare loop makes one call per sample
    bare = asyncio.run(bare_loop(samples, args.latency, args.concurrency))
    with tempfile.TemporaryDirectory() as tmp:
        wall, cpu, calls = asyncio.run(full_graph(samples, args.latency, args.concurrency, Path(tmp)))
    graph_ideal = calls * args.latency / args.concurrency
    print(f"n={args.n} latency={args.latency} concurrency={args.concurrency} calls={calls} "
          f"ideal_s={graph_ideal:.2f} graph_s={wall:.2f} graph_ratio={graph_ideal / wall:.3f} "
          f"graph_cpu_ms_per_sample={cpu * 1000 / args.n:.2f} bare_s={bare:.2f} bare_ratio={ideal / bare:.3f}")


if __name__ == "__main__":
    main()
