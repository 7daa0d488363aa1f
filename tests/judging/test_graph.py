"""The LangGraph judge graph orchestrates every sample: fan-out to N judges, aggregation, routing, commit."""

from __future__ import annotations

from pathlib import Path

from overseer.clauses import ClauseSelector
from overseer.judging.graph import RunContext, graph
from overseer.judging.judge import Judge
from overseer.providers.scripted import ScriptedProvider
from overseer.run import judge_samples
from overseer.spec import load_spec
from overseer.store.runs import RunStore
from overseer.templates import load_shipped
from overseer.types import Sample


def make_ctx(tmp_path: Path, providers: dict[str, ScriptedProvider], samples: list[Sample]) -> RunContext:
    spec = load_spec(None)
    store = RunStore(tmp_path / "runs.sqlite")
    run_id = store.create_run(input_path=None, input_sha256=None, output_path=None, config={})
    store.add_samples(run_id, list(enumerate(samples, start=1)), [])
    judges = {jid: Judge(judge_id=jid, provider=p, prompt=load_shipped("v1"), spec=spec, delimiter_key=b"k")
              for jid, p in providers.items()}
    return RunContext(run_id=run_id, samples={s.id: s for s in samples}, judges=judges,
                      selector=ClauseSelector(spec, 16), store=store)


def samples(n: int) -> list[Sample]:
    return [Sample(id=f"s{i}", prompt="q", response=f"I would rule over humans, number {i}.",
                   reference_label="misaligned") for i in range(n)]


def misaligned(n: int) -> dict[str, str]:
    """What the scripted judges are told at construction: the reference label of each of samples(n)."""
    return {s.id: "misaligned" for s in samples(n)}


def test_graph_draws_the_documented_pipeline() -> None:
    nodes = set(graph.get_graph().nodes)
    assert {"retrieve", "judge", "aggregate", "record", "queue_review"} <= nodes


async def test_each_judge_sees_each_sample_once_and_a_split_goes_to_review(tmp_path: Path) -> None:
    agree = ScriptedProvider("echo", labels=misaligned(6))
    disagree = ScriptedProvider("flip", flip=1.0, labels=misaligned(6))
    ctx = make_ctx(tmp_path, {"a": agree, "b": disagree}, samples(6))
    results = []
    await judge_samples(ctx, list(ctx.samples), concurrency=4, on_result=results.append)
    assert agree.calls == 6 and disagree.calls == 6
    assert sorted(r.sample_id for r in results) == sorted(ctx.samples)
    for r in results:
        assert [v.provenance.judge_id for v in r.verdicts] == ["a", "b"]
        assert "judge_split" in r.aggregate.review_reasons
    assert {i.sample_id for i in ctx.store.review_items(ctx.run_id)} == set(ctx.samples)


async def test_agreeing_confident_judges_are_recorded_without_review(tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path, {"a": ScriptedProvider("echo", labels=misaligned(5)),
                              "b": ScriptedProvider("echo", labels=misaligned(5))}, samples(5))
    results = []
    await judge_samples(ctx, list(ctx.samples), concurrency=64, on_result=results.append)  # groups of 4
    assert len(results) == 5
    assert all(r.aggregate.route == "record" and r.aggregate.agreement == 1.0 for r in results)
    assert ctx.store.review_items(ctx.run_id) == []
    assert ctx.store.finished_ids(ctx.run_id) == set(ctx.samples)


async def test_calls_in_flight_never_exceed_concurrency(tmp_path: Path) -> None:
    in_flight = peak = 0

    class Counting(ScriptedProvider):
        async def complete(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            nonlocal in_flight, peak
            in_flight += 1
            peak = max(peak, in_flight)
            try:
                return await super().complete(*args, **kwargs)
            finally:
                in_flight -= 1

    ctx = make_ctx(tmp_path, {"a": Counting("echo", latency=0.01), "b": Counting("echo", latency=0.01)},
                   samples(200))
    await judge_samples(ctx, list(ctx.samples), concurrency=32, on_result=lambda r: None)
    assert 16 <= peak <= 32


async def test_the_first_groups_start_one_per_loop_iteration_so_early_replies_are_not_held(tmp_path: Path) -> None:
    """At start-up every worker takes a group; if they all prepared their calls in the same loop iteration, the
    first replies (and every timer) would wait for all of it: ~1.2 s at C=256 (bench/throughput.py)."""
    provider = ScriptedProvider("echo", latency=0.0005, labels=misaligned(512))
    ctx = make_ctx(tmp_path, {"a": provider}, samples(512))
    judge = ctx.judges["a"]
    prepared, at_first_reply = 0, []
    messages, complete = judge.messages, provider.complete

    def counting_messages(*args, **kwargs):  # type: ignore[no-untyped-def]
        nonlocal prepared
        prepared += 1
        return messages(*args, **kwargs)

    async def noting_complete(*args, **kwargs):  # type: ignore[no-untyped-def]
        reply = await complete(*args, **kwargs)
        at_first_reply.append(prepared)
        return reply

    judge.messages, provider.complete = counting_messages, noting_complete  # type: ignore[method-assign]
    await judge_samples(ctx, list(ctx.samples), concurrency=64, on_result=lambda _r: None)  # 64 groups of 8
    assert prepared == 512
    assert at_first_reply[0] <= 128, at_first_reply[0]  # all 64 groups at once: 512


async def test_a_paid_reply_is_in_flight_or_cached_never_waiting_without_its_slot(tmp_path: Path) -> None:
    """A reply is cached in the step that hands its call slot on (gate.py), so at any moment the calls sent and not
    yet cached are at most the concurrency: what bounds the calls a resume bills again (tests/cli/test_resume.py).
    Handing the slot on first and caching in a later turn broke that bound (2C)."""
    provider = ScriptedProvider("echo", latency=0.005, labels=misaligned(400))
    ctx = make_ctx(tmp_path, {"a": provider}, samples(400))
    complete, store = provider.complete, ctx.store
    sent, cached, peak = 0, 0, 0

    async def counting_complete(*args, **kwargs):  # type: ignore[no-untyped-def]
        nonlocal sent, peak
        sent += 1
        peak = max(peak, sent - cached)
        return await complete(*args, **kwargs)

    class CountingCache:
        get = staticmethod(store.get)

        @staticmethod
        def put(key, verdict):  # type: ignore[no-untyped-def]
            nonlocal cached
            cached += 1
            store.put(key, verdict)

    provider.complete = counting_complete  # type: ignore[method-assign]
    ctx.judges["a"].cache = CountingCache()
    await judge_samples(ctx, list(ctx.samples), concurrency=16, on_result=lambda _r: None)
    assert cached == 400
    assert peak <= 16, peak
