"""The judge graph: retrieve → judge → aggregate → record | queue_review.

One invocation judges a group of samples (see run.group_size) and returns their committed results in its
`results` output. The judge node asks every (sample, judge) pair concurrently with asyncio.gather rather than one
langgraph Send per pair: a Send task costs ~0.4 ms of CPU (task preparation, callbacks, config merging), which at
256 calls in flight was most of the per-sample budget; the gather makes the same calls under the same cap.
Every node is async: a sync node would run in a thread pool, costing a thread hop per step and sharing the SQLite
connection across threads. State carries ids, verdicts and results; samples, judges and stores come from the run
context, which no node mutates. There is no checkpointer: each group's results are committed to the run store in
one transaction (verdicts are cached as they arrive), which is what makes a run resumable."""

from __future__ import annotations

import asyncio
import operator
from collections import defaultdict
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime

from overseer.clauses import ClauseSelector
from overseer.judging.aggregate import aggregate as combine
from overseer.judging.judge import EdgeCaseExample, Judge
from overseer.store.runs import RunStore
from overseer.types import Aggregate, Sample, SampleResult, Verdict


@dataclass
class RunContext:
    run_id: str
    samples: dict[str, Sample]
    judges: dict[str, Judge]
    selector: ClauseSelector
    store: RunStore
    memory: Any = None  # overseer.memory.judge_memory.JudgeMemory, or None without an edge-case memory
    low_confidence: float = 0.6
    threshold_margin: float = 5.0


class JudgeInput(TypedDict):
    sample_ids: list[str]


class GraphOutput(TypedDict):
    results: Annotated[list[SampleResult], operator.add]  # committed to the run store, in no particular order


class JudgeState(JudgeInput, GraphOutput, total=False):
    decided: list[str]  # samples the memory cascade decided: no LLM judge is asked about them
    clause_ids: dict[str, list[str]]
    edge_case_ids: dict[str, list[str]]
    verdicts: Annotated[list[Verdict], operator.add]
    aggregates: dict[str, Aggregate]


async def retrieve(state: JudgeState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Pick the spec clauses and reviewed edge cases the judges will see; let a confident memory decide alone."""
    ctx = runtime.context
    samples = [ctx.samples[i] for i in state["sample_ids"]]
    memory_verdicts = [v for s in samples if ctx.memory is not None
                       and (v := ctx.memory.cascade_verdict(s, ctx.selector.spec.hash)) is not None]
    decided = {v.sample_id for v in memory_verdicts}
    undecided = [s for s in samples if s.id not in decided]
    return {"decided": sorted(decided), "verdicts": memory_verdicts,
            "clause_ids": {s.id: [c.id for c in ctx.selector.select(s)] for s in undecided},
            "edge_case_ids": {s.id: ctx.memory.similar_ids(s) if ctx.memory is not None else [] for s in undecided}}


async def judge(state: JudgeState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Ask every configured judge (models × prompt variants) about every undecided sample, all at once."""
    ctx = runtime.context
    asks: list[asyncio.Future[Verdict]] = []
    for sid, clause_ids in state["clause_ids"].items():
        shown = set(clause_ids)
        clauses = [c for c in ctx.selector.spec.clauses if c.id in shown]
        edge_cases: list[EdgeCaseExample] = (ctx.memory.examples(state["edge_case_ids"][sid])
                                             if ctx.memory is not None else [])
        asks.extend(asyncio.ensure_future(j.judge(ctx.samples[sid], clauses, edge_cases))
                    for j in ctx.judges.values())
    try:
        verdicts = await asyncio.gather(*asks)
    except BaseException:  # a 401 or a cancellation: stop the group's other calls too, as langgraph did
        for task in asks:
            task.cancel()
        await asyncio.gather(*asks, return_exceptions=True)
        raise
    return {"verdicts": list(verdicts)}


async def aggregate(state: JudgeState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Per sample: vote, average scores, measure agreement, collect reasons for human review."""
    ctx = runtime.context
    by_sample: dict[str, list[Verdict]] = defaultdict(list)
    for verdict in state["verdicts"]:
        by_sample[verdict.sample_id].append(verdict)
    aggregates = {}
    for sid in state["sample_ids"]:
        sample = ctx.samples[sid]
        # A sample the memory decided has its vote already; the others get it as a check on the judges.
        asked_memory = ctx.memory is not None and sid not in state.get("decided", [])
        memory_label = ctx.memory.predict(sample) if asked_memory else None
        aggregates[sid] = combine(sample, by_sample[sid], low_confidence=ctx.low_confidence,
                                  threshold_margin=ctx.threshold_margin, memory_label=memory_label)
    return {"aggregates": aggregates}


async def route(state: JudgeState) -> list[Literal["record", "queue_review"]]:
    """Confident agreement is recorded; anything a human should see goes to the review queue."""
    needs_review = {bool(a.review_reasons) for a in state["aggregates"].values()}
    destinations: list[Literal["record", "queue_review"]] = []
    if False in needs_review:
        destinations.append("record")
    if True in needs_review:
        destinations.append("queue_review")
    return destinations


def _commit(state: JudgeState, ctx: RunContext, *, for_review: bool) -> dict[str, Any]:
    order = list(ctx.judges)
    results = []
    for sid in state["sample_ids"]:
        agg = state["aggregates"][sid]
        if bool(agg.review_reasons) != for_review:
            continue
        verdicts = sorted((v for v in state["verdicts"] if v.sample_id == sid),
                          key=lambda v: order.index(v.provenance.judge_id) if v.provenance.judge_id in order else -1)
        results.append(SampleResult(run_id=ctx.run_id, sample_id=sid, aggregate=agg, verdicts=verdicts))
    # One transaction for the group (with their queue entries), committed before anyone reports them.
    ctx.store.save_results(results)
    if ctx.memory is not None:
        for result in results:
            ctx.memory.forget(result.sample_id)
    return {"results": results}


async def record(state: JudgeState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Commit the results nobody needs to look at."""
    return _commit(state, runtime.context, for_review=False)


async def queue_review(state: JudgeState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Commit the results a human should review, each with its review-queue entry (one transaction)."""
    return _commit(state, runtime.context, for_review=True)


builder = StateGraph(JudgeState, context_schema=RunContext, input_schema=JudgeInput, output_schema=GraphOutput)
builder.add_node("retrieve", retrieve)
builder.add_node("judge", judge)
builder.add_node("aggregate", aggregate)
builder.add_node("record", record)
builder.add_node("queue_review", queue_review)
builder.add_edge(START, "retrieve")
builder.add_edge("retrieve", "judge")
builder.add_edge("judge", "aggregate")
builder.add_conditional_edges("aggregate", route, ["record", "queue_review"])
builder.add_edge("record", END)
builder.add_edge("queue_review", END)

graph = builder.compile(name="overseer-judge")
