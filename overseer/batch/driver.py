"""One step of a batch run (`judge --batch`, `judge --resume RUN`, `runs status RUN`), safe to repeat at any
time, from any process, days apart:

1. reconcile — a batch whose create() call may have reached the provider before a crash is looked up there;
2. poll — each live batch is asked how it is doing; an ended one has its replies ingested (one transaction);
3. replay — every sample that can progress is judged again by the interactive code, answered from the store
   (replay.py); samples all of whose calls are answered are committed as in an interactive run;
4. submit — the calls the replay found unasked (and the retries) are recorded, then sent as the next round.

The run store is the only memory between steps, and each request is recorded before any batch that holds it
is created, so a kill -9 anywhere loses no reply and sends no request twice."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from overseer.batch.clients import BatchClient, client_for
from overseer.batch.replay import BatchPending, BatchProvider, Ledger, PassCache
from overseer.config import Settings
from overseer.errors import ProviderError, RunError
from overseer.judging.graph import RunContext, graph
from overseer.providers.pricing import PRICES_PER_MTOK
from overseer.providers.retry import RetryPolicy
from overseer.store.batches import BatchInfo
from overseer.store.runs import RunStore
from overseer.types import SampleResult

# Both providers bill batch calls at half their interactive price (Anthropic Message Batches; OpenAI Batch API).
BATCH_PRICE_FACTOR = 0.5
# A batch can take 24 hours, so a request that expired or hit a transient error gets this many batches in all.
BATCH_ATTEMPTS = 3
REPLAY_GROUP = 16  # samples per graph invocation when replaying answered calls
MAX_BATCH_ITEMS = 10_000  # well under both APIs' limits (100k / 50k requests, 256 / 200 MB)
RunState = Literal["submitted", "partially_ingested", "finished", "cancelled"]
Retry = Literal["batch", "interactive"]


@dataclass
class BatchProgress:
    state: RunState
    samples: int
    judged: int
    requests: dict[str, int]  # by state: pending, submitted, succeeded, retry, failed; and `submissions`
    batches: list[BatchInfo]
    submitted_now: int = 0  # requests sent in this step
    ingested_now: int = 0  # batches whose replies this step read
    notes: list[str] = field(default_factory=list)

    def line(self) -> str:
        r = self.requests
        live = sum(b.status == "submitted" for b in self.batches)
        return (f"{self.state}: {self.judged}/{self.samples} samples judged; requests {r.get('succeeded', 0)} "
                f"finished, {r.get('submitted', 0)} in {live} live batch(es), {r.get('retry', 0)} to retry, "
                f"{r.get('failed', 0)} failed; this step sent {self.submitted_now} and ingested "
                f"{self.ingested_now} batch(es)")


def batch_prices(prices: dict[str, tuple[float, float]]) -> dict[str, tuple[float, float]]:
    return {name: (p_in * BATCH_PRICE_FACTOR, p_out * BATCH_PRICE_FACTOR)
            for name, (p_in, p_out) in {**PRICES_PER_MTOK, **prices}.items()}


def advance(ctx: RunContext, pending: list[str], *, max_attempts: int, retry: Retry = "batch", submit: bool = True,
            on_result: Callable[[SampleResult], None] = lambda _r: None,
            on_event: Callable[[str], None] = lambda _m: None) -> BatchProgress:
    store, run_id = ctx.store, ctx.run_id
    policy = RetryPolicy(max_attempts=max_attempts)
    clients = {jid: client_for(judge.provider, policy) for jid, judge in ctx.judges.items()}
    notes = _reconcile(ctx, clients)
    ingested = _poll(ctx, clients, on_event)

    rounds = [b.round for b in store.batches(run_id)]
    ledger = Ledger(store.batch_requests(run_id), max(rounds, default=0) + 1, interactive=retry == "interactive")
    waiting = {r.sample_id for r in ledger.known.values()
               if r.state in ("pending", "submitted") or (r.state == "retry" and not ledger.interactive)}
    cache = PassCache(store) if any(j.cache is not None for j in ctx.judges.values()) else None
    for jid, judge in ctx.judges.items():
        judge.provider = BatchProvider(judge.provider, jid, clients[jid], ledger)
        judge.prices = batch_prices(judge.prices)
        if judge.cache is not None:
            judge.cache = cache
    asyncio.run(_replay(ctx, [s for s in pending if s not in waiting], ledger, cache, on_result))

    store.add_batch_requests(run_id, ledger.new.values())
    for cid, completion in ledger.answered.items():
        store.set_request_result(run_id, cid, "completion", completion.model_dump(mode="json"))
    if not submit:
        return progress(store, run_id, 0, ingested, notes, cancelled=True)
    sent = _submit(ctx, clients, ledger.round, include_retries=not ledger.interactive, on_event=on_event)
    return progress(store, run_id, sent, ingested, notes)


def progress(store: RunStore, run_id: str, sent: int = 0, ingested: int = 0, notes: list[str] | None = None,
             cancelled: bool = False) -> BatchProgress:
    """Where a batch run stands, from the run store alone."""
    judged, total = len(store.finished_ids(run_id)), store.get_run(run_id).n_inputs
    state: RunState = ("finished" if judged == total else "cancelled" if cancelled
                       else "partially_ingested" if judged else "submitted")
    return BatchProgress(state, total, judged, store.batch_counts(run_id), store.batches(run_id), sent, ingested,
                         notes or [])


def _reconcile(ctx: RunContext, clients: dict[str, BatchClient]) -> list[str]:
    """A `submitting` batch is one whose create() may or may not have reached the provider (a crash): adopt it
    if the provider has it, else put its requests back in the queue."""
    notes = []
    for batch in ctx.store.batches(ctx.run_id, "submitting"):
        found = clients[batch.judge_id].find(batch.id, datetime.fromisoformat(batch.created_at), batch.n_requests,
                                             ctx.store.known_provider_ids())
        if found:
            ctx.store.batch_submitted(batch.id, found)
            notes.append(f"found batch {found} that an interrupted submission had created; following it")
        else:
            ctx.store.abandon_batch(batch.id)
    return notes


def _poll(ctx: RunContext, clients: dict[str, BatchClient], on_event: Callable[[str], None]) -> int:
    ingested = 0
    for batch in ctx.store.batches(ctx.run_id, "submitted"):
        client = clients[batch.judge_id]
        assert batch.provider_id is not None
        ended, detail = client.poll(batch.provider_id)
        if not ended:
            ctx.store.set_provider_status(batch.id, detail)
            on_event(f"batch {batch.provider_id} (round {batch.round}, {batch.judge_id}): {detail}")
            continue
        outcomes = list(client.results(batch.provider_id))  # read in full before the transaction
        ctx.store.ingest_batch(batch.id, outcomes, detail, BATCH_ATTEMPTS)
        ingested += 1
        on_event(f"batch {batch.provider_id} (round {batch.round}, {batch.judge_id}) ended: {detail}; ingested")
    return ingested


async def _replay(ctx: RunContext, sample_ids: list[str], ledger: Ledger, cache: PassCache | None,
                  on_result: Callable[[SampleResult], None]) -> None:
    """Judge the samples again, answered from the store, in groups as an interactive run does (a graph invocation
    costs milliseconds of CPU). A group stops at the first call nobody has asked yet; its samples whose every
    judge has now written down its next call wait for the batch, the others are judged again one by one (a
    cached verdict, or a judge the stopped group never reached). The cache buffer belongs to the invocation."""

    async def invoke(group: list[str]) -> bool:
        try:
            out = await graph.ainvoke({"sample_ids": group}, context=ctx)
        except BatchPending:
            if cache is not None:
                cache.discard()
            return False
        if cache is not None:
            cache.commit()
        by_id = {r.sample_id: r for r in out["results"]}
        for sample_id in group:
            on_result(by_id[sample_id])
        return True

    try:
        for start in range(0, len(sample_ids), REPLAY_GROUP):
            group = sample_ids[start:start + REPLAY_GROUP]
            if len(group) == 1 or await invoke(group):
                if len(group) == 1:
                    await invoke(group)
                continue
            asking = {(r.sample_id, r.judge_id) for r in ledger.new.values()}
            for sample_id in group:
                if any((sample_id, judge_id) not in asking for judge_id in ctx.judges):
                    await invoke([sample_id])
    finally:
        for judge in ctx.judges.values():
            await judge.provider.aclose()


def _submit(ctx: RunContext, clients: dict[str, BatchClient], round_: int, *, include_retries: bool,
            on_event: Callable[[str], None]) -> int:
    store, run_id = ctx.store, ctx.run_id
    states = ("pending", "retry") if include_retries else ("pending",)
    by_judge: dict[str, list[tuple[str, dict[str, object]]]] = defaultdict(list)
    for judge_id, custom_id, body in store.unsent_requests(run_id, states):
        by_judge[judge_id].append((custom_id, body))
    sent = 0
    for judge_id, items in by_judge.items():
        client = clients[judge_id]
        for start in range(0, len(items), MAX_BATCH_ITEMS):
            chunk = items[start:start + MAX_BATCH_ITEMS]
            local_id = store.open_batch(run_id, judge_id, ctx.judges[judge_id].provider.backend, round_,
                                        [cid for cid, _ in chunk])
            try:
                provider_id, status = client.submit(local_id, chunk)
            except ProviderError as exc:
                if exc.status is not None and 400 <= exc.status < 500:
                    store.abandon_batch(local_id)  # refused: the provider holds no such batch
                # Otherwise (no answer, a 5xx) it may have been created: the `submitting` row stays, and the
                # next step looks for it at the provider before sending anything.
                raise
            store.batch_submitted(local_id, provider_id, status)
            sent += len(chunk)
            on_event(f"submitted batch {provider_id} (round {round_}, {judge_id}): {len(chunk)} request(s) to "
                     f"{client.name}")
    return sent



def cancel(settings: Settings, run_id: str) -> list[str]:
    """Ask the provider to stop the run's live batches; the run is `cancelled` (polled and ingested by `runs
    status`, nothing new submitted) until `judge --resume RUN` picks it up again."""
    from overseer.providers import make_provider
    from overseer.store import open_store

    store = open_store(settings.workspace)
    try:
        info = store.get_run(run_id)
        if info.config.get("batch") is None:
            raise RunError(f"run {run_id} was judged interactively, not with --batch: there is nothing to cancel")
        recorded = {j["id"]: j for j in info.config["judges"]}
        lines = []
        for batch in store.batches(run_id, "submitted"):
            judge = recorded[batch.judge_id]
            where = "base_url" if judge["backend"] == "openai" else "anthropic_base_url"
            provider = make_provider(judge["spec"], settings.model_copy(update={
                "model": judge["model"], where: judge["base_url"]}))
            client = client_for(provider, RetryPolicy(max_attempts=settings.max_attempts))
            assert batch.provider_id is not None
            client.cancel(batch.provider_id)
            lines.append(f"asked {client.name} to cancel batch {batch.provider_id} ({batch.n_requests} requests)")
        if info.status != "finished":
            store.set_status(run_id, "cancelled")
        lines.append(f"run {run_id}: {'cancelled' if info.status != 'finished' else 'already finished'}; "
                     f"`overseer runs status {run_id}` ingests what the batches finished, `overseer judge --resume "
                     f"{run_id} ...` submits the rest again")
        return lines
    finally:
        store.close()
