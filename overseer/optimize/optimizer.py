"""The prompt optimizer (GEPA-style). One round, in named stages, with its state saved after each:

  select     take the active prompt and a seeded train minibatch
  parent     judge the minibatch with the active prompt; collect failures (judge vs human, both rationales)
  reflect    the reflection model proposes a revised prompt (it sees the spec, the failures, the prompt)
  check      static checks, before any judge call on the candidate: placeholders, length, copied sample text
  candidate  judge the same minibatch with the candidate; it must beat the parent there
  validate   judge the validation split (and the golden set) with both prompts
  decide     the gate: accept only with a κ gain ≥ δ whose bootstrap interval excludes 0 and no golden regression;
             accepted → a new version file, made active; every candidate is recorded either way

Judge calls go through the run store's cache, so a round resumed after a crash repeats no finished call."""

from __future__ import annotations

import asyncio
import difflib
import hashlib
import json
import random
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from overseer.clauses import ClauseSelector
from overseer.errors import AuthenticationError, OverseerError
from overseer.judging.aggregate import is_violation
from overseer.judging.judge import Judge, render_clauses
from overseer.optimize.pool import Example, Pool
from overseer.prompt_store import PromptStore
from overseer.providers.base import CallContext, GenerationParams, Provider
from overseer.providers.pricing import cost_usd
from overseer.providers.retry import RetryPolicy, with_retries
from overseer.store.runs import RunStore
from overseer.templates import load_prompt, missing_placeholders, render, shipped_prompts_dir
from overseer.types import Label, Message, PromptVersion, Spec, sha256_text

REFLECTION_SCHEMA: dict[str, Any] = {
    "type": "object", "additionalProperties": False, "required": ["prompt", "summary"],
    "properties": {"prompt": {"type": "string"}, "summary": {"type": "string"}}}
COPY_WINDOW = 60  # characters of sample text that may not appear verbatim in a candidate prompt
MIN_COPY = 24  # shorter sample texts are checked whole
LENGTH_CAP = 3.0  # a candidate may be at most this many times as long as its parent


@dataclass
class Budget:
    rounds: int = 1
    calls: int | None = None
    usd: float | None = None
    spent_calls: int = 0
    spent_usd: float = 0.0

    def exhausted(self) -> str | None:
        if self.calls is not None and self.spent_calls >= self.calls:
            return f"call budget spent ({self.spent_calls} of {self.calls})"
        if self.usd is not None and self.spent_usd >= self.usd:
            return f"dollar budget spent (${self.spent_usd:.4f} of ${self.usd:.4f})"
        return None


def violation_labels(labels: list[Label | None]) -> list[str]:
    """Agreement is on the decision that matters (violation or not); an unscored verdict counts as wrong."""
    return ["unscored" if lab is None else ("violation" if is_violation(lab) else "ok") for lab in labels]


def kappa(truth: list[Label], predicted: list[Label | None]) -> float:
    from sklearn.metrics import cohen_kappa_score

    if not truth:
        return float("nan")
    t, p = violation_labels(list(truth)), violation_labels(predicted)
    if len(set(t) | set(p)) < 2:
        return 1.0 if t == p else 0.0
    return float(cohen_kappa_score(t, p))


def accuracy(truth: list[Label], predicted: list[Label | None]) -> float:
    t, p = violation_labels(list(truth)), violation_labels(predicted)
    return float(np.mean([a == b for a, b in zip(t, p, strict=True)])) if t else float("nan")


def bootstrap_delta(truth: list[Label], parent: list[Label | None], candidate: list[Label | None], *,
                    resamples: int = 1000, seed: int = 0) -> tuple[float, float, float]:
    """κ(candidate) − κ(parent) on the same samples, with a paired 95% bootstrap interval."""
    rng = np.random.default_rng(seed)
    n = len(truth)
    deltas = []
    for _ in range(resamples):
        idx = rng.integers(0, n, n)
        t = [truth[i] for i in idx]
        deltas.append(kappa(t, [candidate[i] for i in idx]) - kappa(t, [parent[i] for i in idx]))
    point = kappa(truth, candidate) - kappa(truth, parent)
    return point, float(np.nanpercentile(deltas, 2.5)), float(np.nanpercentile(deltas, 97.5))


@dataclass
class Gate:
    """Acceptance: a κ gain of at least δ on validation, an interval that excludes no gain, no golden loss."""

    delta: float = 0.02
    resamples: int = 1000
    seed: int = 0

    def decide(self, truth: list[Label], parent: list[Label | None], candidate: list[Label | None],
               golden_truth: list[Label], golden_parent: list[Label | None],
               golden_candidate: list[Label | None]) -> tuple[bool, str, dict[str, float]]:
        point, low, high = bootstrap_delta(truth, parent, candidate, resamples=self.resamples, seed=self.seed)
        metrics = {"kappa_val": kappa(truth, candidate), "kappa_parent_val": kappa(truth, parent),
                   "accuracy_val": accuracy(truth, candidate), "n_val": float(len(truth)), "delta": point,
                   "ci_low": low, "ci_high": high}
        if golden_truth:
            metrics.update(golden_parent=accuracy(golden_truth, golden_parent),
                           golden_candidate=accuracy(golden_truth, golden_candidate), n_golden=len(golden_truth))
            if metrics["golden_candidate"] < metrics["golden_parent"]:
                return False, (f"golden-set agreement dropped from {metrics['golden_parent']:.3f} to "
                               f"{metrics['golden_candidate']:.3f}"), metrics
        if point < self.delta:
            return False, f"κ gain {point:+.3f} on validation is below δ = {self.delta}", metrics
        if low <= 0:
            return False, f"the 95% interval of the κ gain [{low:+.3f}, {high:+.3f}] does not exclude 0", metrics
        return True, f"κ {metrics['kappa_parent_val']:.3f} → {metrics['kappa_val']:.3f} (+{point:.3f})", metrics


def static_problems(candidate: str, parent: PromptVersion, failure_texts: list[str]) -> list[str]:
    """Reasons to reject a candidate without spending a single judge call on it."""
    problems = []
    probe = PromptVersion(role=parent.role, version=0, required_placeholders=parent.required_placeholders,
                          text=candidate, hash=sha256_text(candidate))
    if missing := missing_placeholders(probe):
        problems.append(f"missing required placeholders: {', '.join(missing)}")
    if len(candidate) > LENGTH_CAP * len(parent.text):
        problems.append(f"{len(candidate)} characters, over the cap of {LENGTH_CAP:g}× the parent's {len(parent.text)}")
    for text in (t.strip() for t in failure_texts):
        if len(text) < MIN_COPY:
            continue  # too short to tell copying from coincidence
        size = min(COPY_WINDOW, len(text))
        windows = (text[i:i + size] for i in range(0, len(text) - size + 1, max(1, size // 3)))
        if any(w in candidate for w in windows):
            problems.append("it copies sample text into the prompt")
            break
    return problems


class BudgetSpent(Exception):
    """Raised between stages when a cap is reached; the round stays resumable."""


@dataclass
class RoundOutcome:
    round_id: str
    status: str  # accepted | rejected | no_failures | failed | budget
    reason: str
    version: int | None = None
    metrics: dict[str, Any] = field(default_factory=dict)


class Optimizer:
    def __init__(self, *, spec: Spec, store: RunStore, prompts: PromptStore, judge_provider: Provider,
                 reflection_provider: Provider, pool: Pool, delimiter_key: bytes, gate: Gate | None = None,
                 budget: Budget | None = None, minibatch: int = 12, concurrency: int = 8, seed: int = 0,
                 policy: RetryPolicy | None = None, on_event: Callable[[str], None] | None = None) -> None:
        self.spec, self.store, self.prompts, self.pool = spec, store, prompts, pool
        self.judge_provider, self.reflection_provider = judge_provider, reflection_provider
        self.delimiter_key, self.gate, self.budget = delimiter_key, gate or Gate(), budget or Budget()
        self.minibatch, self.seed, self.policy = minibatch, seed, policy or RetryPolicy()
        self.selector = ClauseSelector(spec, 16)
        self.gate_calls = asyncio.Semaphore(concurrency)
        self.say = on_event or (lambda _msg: None)
        self.reflection_prompt = load_prompt(shipped_prompts_dir() / "reflection" / "v1.md")
        # Recorded with every candidate and accepted version, so a prompt accepted on scripted verdicts says so.
        self.backends = {"judge_backend": f"{judge_provider.backend}@{judge_provider.model}",
                         "reflection_backend": f"{reflection_provider.backend}@{reflection_provider.model}"}

    # --- judging ------------------------------------------------------------------------------------------
    def _judge(self, prompt: PromptVersion) -> Judge:
        return Judge(judge_id=f"optimizer@{prompt.ref}", provider=self.judge_provider, prompt=prompt, spec=self.spec,
                     delimiter_key=self.delimiter_key, cache=self.store, policy=self.policy,
                     gate=self.gate_calls)

    async def _labels(self, prompt: PromptVersion, examples: list[Example]) -> dict[str, Label | None]:
        judge = self._judge(prompt)

        async def one(example: Example) -> tuple[str, Label | None, str]:
            # No edge cases in the prompt: the pool includes the memory's own cases, whose labels would leak.
            verdict = await judge.judge(example.sample, self.selector.select(example.sample), [])
            if not verdict.provenance.cached:
                self.budget.spent_calls += verdict.provenance.attempts
                self.budget.spent_usd += verdict.provenance.cost_usd
            return example.sample.id, verdict.label, verdict.rationale

        results = await asyncio.gather(*(one(e) for e in examples))
        self._rationales.update({sid: why for sid, _, why in results})
        return {sid: label for sid, label, _ in results}

    # --- one round ----------------------------------------------------------------------------------------
    async def run(self, rounds: int | None = None) -> list[RoundOutcome]:
        outcomes = []
        for _ in range(rounds or self.budget.rounds):
            if (why := self.budget.exhausted()) is not None:
                outcomes.append(RoundOutcome("-", "budget", why))
                break
            outcomes.append(await self.round())
        return outcomes

    async def round(self) -> RoundOutcome:
        self._rationales: dict[str, str] = {}
        resumed = self.store.unfinished_round()
        if resumed:
            round_id, _, state = resumed
            self.say(f"resuming optimizer round {round_id} at stage {state['stage']}")
        else:
            round_id, state = f"round-{secrets.token_hex(4)}", {"stage": "select"}
        try:
            outcome = await self._advance(round_id, state)
        except BudgetSpent as exc:
            self.say(f"{round_id}: stopped at stage {state['stage']}: {exc}; `overseer improve` resumes it")
            return RoundOutcome(round_id, "budget", str(exc))  # left 'running': the next call resumes here
        except AuthenticationError:
            raise  # a bad key stops everything, as in judging
        except OverseerError as exc:  # provider failures, an unparseable reflection: this round fails, recorded
            outcome = RoundOutcome(round_id, "failed", f"{type(exc).__name__}: {exc}")
        self.store.save_round(round_id, "done", outcome.status, {**state, "outcome": outcome.__dict__})
        return outcome

    def _save(self, round_id: str, state: dict[str, Any], stage: str) -> None:
        state["stage"] = stage
        self.store.save_round(round_id, stage, "running", state)
        if stage in ("parent", "reflect", "candidate", "validate") and (why := self.budget.exhausted()):
            raise BudgetSpent(why)  # checked before every stage that calls a model

    async def _advance(self, round_id: str, state: dict[str, Any]) -> RoundOutcome:
        by_id = {e.sample.id: e for e in self.pool.all()}
        if state["stage"] == "select":
            parent = self.prompts.active()
            # Seeded by the round's number, not its id: the same pool and seed give the same minibatches.
            rng = random.Random(f"{self.seed}:{self.store.count_rounds()}")
            batch = rng.sample(self.pool.train, min(self.minibatch, len(self.pool.train)))
            state.update(parent_version=parent.version, parent_hash=parent.hash,
                         minibatch=[e.sample.id for e in batch], pool=self.pool.sizes(), seed=self.seed)
            self._save(round_id, state, "parent")
        parent = self.prompts.get(state["parent_version"])
        batch = [by_id[i] for i in state["minibatch"] if i in by_id]
        truth = [e.label for e in batch]

        if state["stage"] == "parent":
            self.say(f"{round_id}: judging a minibatch of {len(batch)} with v{parent.version}")
            state["parent_minibatch"] = await self._labels(parent, batch)
            self._save(round_id, state, "reflect")
        parent_mb = state["parent_minibatch"]
        failures = [e for e in batch if violation_labels([parent_mb.get(e.sample.id)]) != violation_labels([e.label])]

        if state["stage"] == "reflect":
            if not failures:
                return RoundOutcome(round_id, "no_failures", f"v{parent.version} already agrees on the minibatch")
            self.say(f"{round_id}: {len(failures)} disagreements; asking the reflection model for a revision")
            state["candidate"], state["summary"] = await self._reflect(parent, failures, parent_mb)
            self._save(round_id, state, "check")
        candidate_text: str = state["candidate"]
        candidate_hash = sha256_text(candidate_text)
        candidate_id = hashlib.sha256(f"{parent.hash}:{candidate_hash}".encode()).hexdigest()[:16]
        diff = "".join(difflib.unified_diff(parent.text.splitlines(True), candidate_text.splitlines(True),
                                            f"v{parent.version}", "candidate"))

        def finish(status: str, reason: str, metrics: dict[str, Any], version: int | None = None) -> RoundOutcome:
            metrics = {**metrics, "pool": state.get("pool"), "seed": self.seed, "summary": state.get("summary"),
                       **self.backends}
            self.store.record_candidate(candidate_id=candidate_id, round_id=round_id, role=parent.role,
                                        parent_version=parent.version, parent_hash=parent.hash,
                                        text_hash=candidate_hash, text=candidate_text, status=status, reason=reason,
                                        metrics=metrics, diff=diff, version=version)
            self.say(f"{round_id}: candidate {status}: {reason}")
            return RoundOutcome(round_id, status, reason, version, metrics)

        if state["stage"] == "check":
            problems = static_problems(candidate_text, parent, [f.sample.response for f in failures]
                                       + [f.sample.context_text() for f in failures])
            if problems:
                return finish("rejected", "static check: " + "; ".join(problems), {})
            self._save(round_id, state, "candidate")
        candidate = parent.model_copy(update={"text": candidate_text, "hash": candidate_hash, "version": 0,
                                              "parent": parent.version, "created_by": "optimizer"})

        if state["stage"] == "candidate":
            state["candidate_minibatch"] = await self._labels(candidate, batch)
            self._save(round_id, state, "validate")
        cand_mb = state["candidate_minibatch"]
        mb_parent = kappa(truth, [parent_mb.get(e.sample.id) for e in batch])
        mb_candidate = kappa(truth, [cand_mb.get(e.sample.id) for e in batch])
        minibatch_metrics = {"minibatch_parent": mb_parent, "minibatch_candidate": mb_candidate,
                             "n_minibatch": len(batch)}
        if mb_candidate <= mb_parent:
            return finish("rejected", f"no gain on the minibatch (κ {mb_parent:.3f} → {mb_candidate:.3f})",
                          minibatch_metrics)

        if state["stage"] == "validate":
            self.say(f"{round_id}: validating on {len(self.pool.validation)} (+{len(self.pool.golden)} golden)")
            both = [*self.pool.validation, *self.pool.golden]
            state["parent_val"] = await self._labels(parent, both)
            state["candidate_val"] = await self._labels(candidate, both)
            self._save(round_id, state, "decide")
        pv, cv = state["parent_val"], state["candidate_val"]
        val, gold = self.pool.validation, self.pool.golden
        accepted, reason, metrics = self.gate.decide(
            [e.label for e in val], [pv.get(e.sample.id) for e in val], [cv.get(e.sample.id) for e in val],
            [e.label for e in gold], [pv.get(e.sample.id) for e in gold], [cv.get(e.sample.id) for e in gold])
        metrics.update(minibatch_metrics)
        if not accepted:
            return finish("rejected", reason, metrics)
        version = self.prompts.add(candidate_text, parent=parent.version, created_by="optimizer",
                                   metrics={k: float(v) for k, v in metrics.items()
                                            if isinstance(v, int | float)},
                                   judge_backend=self.backends["judge_backend"],
                                   reflection_backend=self.backends["reflection_backend"])
        self.prompts.activate(version.version)
        return finish("accepted", f"v{version.version}: {reason}", metrics, version.version)

    async def _reflect(self, parent: PromptVersion, failures: list[Example],
                       judged: dict[str, Label | None]) -> tuple[str, str]:
        delimiter = "CASE-" + secrets.token_hex(6)
        blocks = []
        for f in failures:
            blocks.append(f"<<{delimiter}>>\n{f.sample.context_text()}\n\nResponse:\n{f.sample.response}\n"
                          f"<<END {delimiter}>>\nJudge said: {judged.get(f.sample.id) or 'unscored'} — "
                          f"{self._rationales.get(f.sample.id, '')}\nHumans said: {f.label} — {f.rationale}")
        system = render(self.reflection_prompt.text, {
            "spec": render_clauses(self.spec.clauses), "prompt": parent.text, "failures": "\n\n".join(blocks),
            "delimiter": delimiter})
        messages = [Message(role="system", content=system),
                    Message(role="user", content="Propose the revised instructions as JSON.")]
        context = CallContext(sample_id="reflection")
        params = GenerationParams(max_tokens=8000, temperature=0.7)
        reply, attempts = await with_retries(
            lambda: self.reflection_provider.complete(messages, REFLECTION_SCHEMA, params, context), self.policy)
        self.budget.spent_calls += attempts
        self.budget.spent_usd += cost_usd(reply.model, reply.usage)
        try:
            data = json.loads(reply.text)
            return str(data["prompt"]), str(data.get("summary", ""))
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise OverseerError(f"the reflection model's reply is not the expected JSON: {reply.text[:200]!r}") from exc
