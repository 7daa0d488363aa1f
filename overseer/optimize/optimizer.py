"""The prompt optimizer (GEPA-style). One round, in named stages, with its state saved after each:

  select     take the active prompt and a seeded train minibatch
  parent     judge the minibatch with the active prompt; collect failures (judge vs human, both rationales)
  reflect    the reflection model proposes a revised prompt (it sees the spec, the failures, the prompt)
  check      static checks, before any judge call on the candidate: placeholders, length, copied sample text
  candidate  judge the same minibatch with the candidate; it must beat the parent there
  validate   judge the validation split (and the golden set) with both prompts
  decide     the gate: accept only with a κ gain ≥ δ whose bootstrap interval excludes 0, significant at this
             look's share of α (the validation split is reused by every round), and no golden regression;
             accepted → its κ on the test split is measured (never used to decide: the unbiased figure), a new
             version file, made active; every candidate is recorded either way

Judge calls go through the run store's cache, so a round resumed after a crash repeats no finished call."""

from __future__ import annotations

import asyncio
import difflib
import hashlib
import json
import math
import random
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from overseer import metrics
from overseer.errors import AuthenticationError, OverseerError, ProviderError
from overseer.judging.judge import render_clauses
from overseer.optimize.em_check import em_drift
from overseer.optimize.pool import PROVENANCES, Example, Pool
from overseer.optimize.serving import Served, Serving
from overseer.prompt_store import PromptStore
from overseer.providers.base import CallContext, GenerationParams, Provider
from overseer.providers.pricing import cost_usd
from overseer.providers.retry import RetryPolicy, with_retries
from overseer.store.runs import RunStore
from overseer.templates import load_prompt, missing_placeholders, render, shipped_prompts_dir
from overseer.types import Generalization, Label, Message, PromptVersion, Spec, sha256_text

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


GATE_UNSCORED: metrics.Unscored = "miss"  # an unscored reply is a miss: a prompt cannot win by refusing to answer
GATE_LABELS = [*metrics.BINARY_LABELS, metrics.UNSCORED]


def gate_agreement(truth: list[Label], predicted: list[Label | None]) -> metrics.Agreement:
    """The gate's measure: agreement on the decision that matters (violation or not), unscored counted as a miss."""
    return metrics.agreement([str(metrics.binary(t)) for t in truth], [metrics.binary(p) for p in predicted],
                             unscored=GATE_UNSCORED, labels=GATE_LABELS)


def bootstrap_delta(truth: list[Label], parent: list[Label | None], candidate: list[Label | None], *,
                    resamples: int = 1000, seed: int = 0) -> metrics.KappaDelta:
    """κ(candidate) − κ(parent) on the same samples, with a paired 95% bootstrap interval."""
    def codes(labels: list[Label | None]) -> list[str]:
        return [metrics.binary(lab) or metrics.UNSCORED for lab in labels]

    return metrics.paired_kappa_bootstrap(codes(list(truth)), codes(parent), codes(candidate), labels=GATE_LABELS,
                                          resamples=resamples, seed=seed)


def minibatch_gain(truth: list[Label], parent: list[Label | None],
                   candidate: list[Label | None]) -> tuple[bool, dict[str, float], str]:
    """Whether the candidate beats its parent on the minibatch: by κ, or by accuracy where κ is undefined there
    (a minibatch can draw a single reference class)."""
    p, c = gate_agreement(truth, parent), gate_agreement(truth, candidate)
    out: dict[str, float] = {"n_minibatch": float(len(truth))}
    if p.kappa.value is not None and c.kappa.value is not None:
        out.update(minibatch_parent=p.kappa.value, minibatch_candidate=c.kappa.value)
        return c.kappa.value > p.kappa.value, out, f"κ {p.kappa.value:.3f} → {c.kappa.value:.3f}"
    assert p.accuracy is not None and c.accuracy is not None  # a minibatch is never empty
    out.update(minibatch_accuracy_parent=p.accuracy, minibatch_accuracy_candidate=c.accuracy)
    return (c.accuracy > p.accuracy, out,
            f"accuracy {p.accuracy:.3f} → {c.accuracy:.3f}; κ {p.kappa.undefined}")


def look_alpha(look: int, alpha: float) -> float:
    """The share of the family-wise α spent on the `look`-th decision made on the validation split.

    Every candidate decided on one validation split is another test on the same data, so a fixed 95% interval
    accepts some noise-only rewrite sooner or later (bench/optimizer_null.py measures how often). We spend α over
    the looks as α·6/(π²·j²): the series sums to α, so the chance that any look accepts a rewrite that does not
    help stays ≤ α however many rounds are run, with no horizon to fix in advance and no noise added to the κ
    we report (unlike a reusable holdout such as Thresholdout, whose guarantee is about estimate accuracy and
    whose answers are perturbed). The price is power: later looks need a larger gain, which is what an honest
    gate over a reused split must ask for. A fresh validation split would restart the count; ours is frozen."""
    return alpha * 6 / (math.pi ** 2 * look ** 2)


def paired_sign_test(truth: list[Label], parent: list[Label | None],
                     candidate: list[Label | None]) -> tuple[int, int, float]:
    """(samples the candidate fixed, samples it broke, exact one-sided p of that many fixes or more).

    McNemar's exact test on per-sample agreement (unscored = a miss): if the candidate is no better, each
    discordant sample is a fair coin. It is exact at any α, which the spending schedule needs — a bootstrap
    interval of 1000 resamples cannot reach a tail of 1e-4, and its normal approximation overstated significance
    threefold in the tails in a simulation of this gate (n = 70, both prompts erring at 25%)."""
    wins = losses = 0
    for t, p, c in zip(truth, parent, candidate, strict=True):
        right_p, right_c = metrics.binary(p) == metrics.binary(t), metrics.binary(c) == metrics.binary(t)
        wins += right_c and not right_p
        losses += right_p and not right_c
    m = wins + losses
    tail = sum(math.comb(m, k) for k in range(wins, m + 1)) / 2 ** m if m else 1.0
    return wins, losses, tail


@dataclass
class Gate:
    """Acceptance: a κ gain of at least δ on validation whose 95% interval excludes no gain, more samples fixed
    than broken at this look's share of α (`look_alpha`, `paired_sign_test`), and no golden loss.
    `corrected=False` is the gate without the multiplicity correction (the null benchmark compares the two)."""

    delta: float = 0.02
    resamples: int = 1000
    seed: int = 0
    # Family-wise, one-sided: the 2.5% that the single-look gate's 95% interval promised for one look, now kept
    # for the whole search however many rounds reuse the validation split.
    alpha: float = 0.025
    corrected: bool = True
    em_tolerance: float = 0.0  # how much farther from the labels' EM rate a candidate may move it (a share)

    def decide(self, truth: list[Label], parent: list[Label | None], candidate: list[Label | None],
               golden_truth: list[Label], golden_parent: list[Label | None],
               golden_candidate: list[Label | None], look: int = 1, *,
               served: tuple[list[Served], list[Served]] | None = None,
               levels: list[Generalization | None] | None = None) -> tuple[bool, str, dict[str, float]]:
        """`served` gives both prompts' scored verdicts on the validation items (for the EM rule check, see
        em_check.py) and `levels` the labels' generalization levels where known."""
        gain = bootstrap_delta(truth, parent, candidate, resamples=self.resamples, seed=self.seed)
        cand, par = gate_agreement(truth, candidate), gate_agreement(truth, parent)
        measured = {"kappa_val": cand.kappa.value, "kappa_parent_val": par.kappa.value,
                    "accuracy_val": cand.accuracy, "n_val": float(len(truth)), "delta": gain.point,
                    "ci_low": gain.low, "ci_high": gain.high, "look": float(look)}
        # Only numbers are recorded: an undefined κ is absent (and the reason says why), never NaN.
        recorded: dict[str, float] = {k: float(v) for k, v in measured.items() if v is not None}
        if golden_truth:
            golden_p = gate_agreement(golden_truth, golden_parent).accuracy
            golden_c = gate_agreement(golden_truth, golden_candidate).accuracy
            assert golden_p is not None and golden_c is not None
            recorded.update(golden_parent=golden_p, golden_candidate=golden_c, n_golden=len(golden_truth))
            if golden_c < golden_p:
                return False, f"golden-set agreement dropped from {golden_p:.3f} to {golden_c:.3f}", recorded
        if served is not None:
            drift, rates = em_drift(truth, levels or [None] * len(truth), *served, tolerance=self.em_tolerance)
            recorded.update(rates)
            if drift is not None:
                return False, drift, recorded
        if gain.point is None or gain.low is None or gain.high is None:
            return False, f"the κ gain cannot be measured on validation ({gain.undefined})", recorded
        if gain.point < self.delta:
            return False, f"κ gain {gain.point:+.3f} on validation is below δ = {self.delta}", recorded
        if gain.low <= 0:
            return False, (f"the 95% interval of the κ gain [{gain.low:+.3f}, {gain.high:+.3f}] does not "
                           "exclude 0"), recorded
        if self.corrected:
            spent = look_alpha(look, self.alpha)
            wins, losses, p = paired_sign_test(truth, parent, candidate)
            recorded.update(alpha_look=spent, p_look=p, wins=float(wins), losses=float(losses))
            if p > spent:
                return False, (f"κ gain {gain.point:+.3f} is not significant at look {look} of the validation "
                               f"split: {wins} samples fixed, {losses} broken, one-sided p = {p:.2g} > α = "
                               f"{spent:.2g} (spent after {look - 1} earlier looks)"), recorded
        return True, f"κ {par.kappa:.3f} → {cand.kappa:.3f} (+{gain.point:.3f})", recorded


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
    """`serving` is the judge panel the prompt will serve under (serving.py); without it, `judge_provider` alone
    with default settings and no edge cases (the optimizer's unit tests and benchmarks)."""

    def __init__(self, *, spec: Spec, store: RunStore, prompts: PromptStore, reflection_provider: Provider,
                 pool: Pool, delimiter_key: bytes, judge_provider: Provider | None = None,
                 serving: Serving | None = None, gate: Gate | None = None, budget: Budget | None = None,
                 minibatch: int = 12, concurrency: int = 8, seed: int = 0, policy: RetryPolicy | None = None,
                 on_event: Callable[[str], None] | None = None) -> None:
        if serving is None:
            if judge_provider is None:
                raise ValueError("the optimizer needs a judge_provider or a serving panel")
            serving = Serving([judge_provider], spec, delimiter_key, store, policy=policy or RetryPolicy(),
                              concurrency=concurrency)
        self.spec, self.store, self.prompts, self.pool, self.serving = spec, store, prompts, pool, serving
        self.reflection_provider = reflection_provider
        self.delimiter_key, self.gate, self.budget = delimiter_key, gate or Gate(), budget or Budget()
        self.minibatch, self.seed, self.policy = minibatch, seed, policy or RetryPolicy()
        self.say = on_event or (lambda _msg: None)
        self.reflection_prompt = load_prompt(shipped_prompts_dir() / "reflection" / "v1.md")
        # Recorded with every candidate and accepted version, so a prompt accepted on scripted verdicts says so.
        self.backends = {"judge_backend": " ".join(f"{p.backend}@{p.model}" for p in serving.providers),
                         "reflection_backend": f"{reflection_provider.backend}@{reflection_provider.model}"}

    @property
    def judge_provider(self) -> Provider:
        """The first served judge (the one whose id a single-judge setup records)."""
        return self.serving.providers[0]

    # --- judging ------------------------------------------------------------------------------------------
    async def _served(self, prompt: PromptVersion, examples: list[Example]) -> dict[str, dict[str, Any]]:
        """Each example judged as the runs will judge it (serving.py); the budget counts every fresh call."""
        judges = self.serving.judges(prompt)
        results = await asyncio.gather(*(self.serving.judge(judges, e) for e in examples))
        out: dict[str, dict[str, Any]] = {}
        for example, (served, calls, usd) in zip(examples, results, strict=True):
            self.budget.spent_calls += calls
            self.budget.spent_usd += usd
            self._rationales[example.sample.id] = served.rationale
            out[example.sample.id] = served.as_state()
        return out

    # --- one round ----------------------------------------------------------------------------------------
    async def run(self, rounds: int | None = None) -> list[RoundOutcome]:
        outcomes = []
        for _ in range(rounds or self.budget.rounds):
            if (why := self.budget.exhausted()) is not None:
                outcomes.append(RoundOutcome("-", "budget", why))
                break
            outcomes.append(await self.round())
            if outcomes[-1].status == "failed":
                break  # the same backends would fail the next round the same way
        return outcomes

    async def round(self) -> RoundOutcome:
        self._rationales: dict[str, str] = {}
        resumed = self.store.unfinished_round()
        if resumed and resumed[2].get("backends", self.backends) != self.backends:
            self._abandon(*resumed)
            resumed = None
        if resumed:
            round_id, _, state = resumed
            self.say(f"resuming optimizer round {round_id} at stage {state['stage']}")
        else:
            round_id, state = f"round-{secrets.token_hex(4)}", {"stage": "select", "backends": self.backends}
        try:
            outcome = await self._advance(round_id, state)
        except BudgetSpent as exc:
            self.say(f"{round_id}: stopped at stage {state['stage']}: {exc}; `overseer improve` resumes it")
            return RoundOutcome(round_id, "budget", str(exc))  # left 'running': the next call resumes here
        except AuthenticationError:
            raise  # a bad key stops everything, as in judging
        except OverseerError as exc:  # provider failures, an unparseable reflection: this round fails, recorded
            outcome = RoundOutcome(round_id, "failed", f"{type(exc).__name__}: {exc}")
            self.say(f"{round_id}: failed: {outcome.reason}")  # judge --learn and the review app hear it too
        self.store.save_round(round_id, "done", outcome.status, {**state, "outcome": outcome.__dict__})
        return outcome

    def _abandon(self, round_id: str, stage: str, state: dict[str, Any]) -> None:
        """A half-done round whose verdicts came from other backends: finishing it here would mix two judges'
        (or reflection models') work in one decision, so it is closed as failed, said aloud, and a new one starts."""
        was, now = state["backends"], self.backends
        reason = (f"abandoned at stage {stage}: started with judge {was['judge_backend']} and reflection "
                  f"{was['reflection_backend']}, resumed with judge {now['judge_backend']} and reflection "
                  f"{now['reflection_backend']} (pass the same --backend/--judges and --reflection-backend to "
                  "resume it instead)")
        self.say(f"{round_id}: {reason}")
        outcome = RoundOutcome(round_id, "failed", reason)
        self.store.save_round(round_id, "done", "failed", {**state, "outcome": outcome.__dict__})

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
            state["parent_minibatch"] = await self._served(parent, batch)
            self._save(round_id, state, "reflect")
        parent_mb = _labels(state["parent_minibatch"])
        failures = [e for e in batch if metrics.binary(parent_mb.get(e.sample.id)) != metrics.binary(e.label)]

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

        def finish(status: str, reason: str, measured: dict[str, Any], version: int | None = None) -> RoundOutcome:
            measured = {**measured, "pool": state.get("pool"), "seed": self.seed, "summary": state.get("summary"),
                        **self.backends}
            self.store.record_candidate(candidate_id=candidate_id, round_id=round_id, role=parent.role,
                                        parent_version=parent.version, parent_hash=parent.hash,
                                        text_hash=candidate_hash, text=candidate_text, status=status, reason=reason,
                                        metrics=measured, diff=diff, version=version)
            self.say(f"{round_id}: candidate {status}: {reason}")
            return RoundOutcome(round_id, status, reason, version, measured)

        if state["stage"] == "check":
            problems = static_problems(candidate_text, parent, [f.sample.response for f in failures]
                                       + [f.sample.context_text() for f in failures])
            if problems:
                return finish("rejected", "static check: " + "; ".join(problems), {})
            self._save(round_id, state, "candidate")
        candidate = parent.model_copy(update={"text": candidate_text, "hash": candidate_hash, "version": 0,
                                              "parent": parent.version, "created_by": "optimizer"})

        if state["stage"] == "candidate":
            state["candidate_minibatch"] = await self._served(candidate, batch)
            self._save(round_id, state, "validate")
        cand_mb = _labels(state["candidate_minibatch"])
        gained, minibatch_metrics, how = minibatch_gain(truth, [parent_mb.get(e.sample.id) for e in batch],
                                                        [cand_mb.get(e.sample.id) for e in batch])
        if not gained:
            return finish("rejected", f"no gain on the minibatch ({how})", minibatch_metrics)

        if state["stage"] == "validate":
            self.say(f"{round_id}: validating on {len(self.pool.validation)} (+{len(self.pool.golden)} golden)")
            both = [*self.pool.validation, *self.pool.golden]
            state["parent_val"] = await self._served(parent, both)
            state["candidate_val"] = await self._served(candidate, both)
            self._save(round_id, state, "decide")
        ps, cs = _served_of(state["parent_val"]), _served_of(state["candidate_val"])
        pv, cv = {k: v.label for k, v in ps.items()}, {k: v.label for k, v in cs.items()}
        val, gold = self.pool.validation, self.pool.golden
        accepted, reason, measured = self.gate.decide(
            [e.label for e in val], [pv.get(e.sample.id) for e in val], [cv.get(e.sample.id) for e in val],
            [e.label for e in gold], [pv.get(e.sample.id) for e in gold], [cv.get(e.sample.id) for e in gold],
            look=self.store.validation_looks() + 1,
            served=([ps.get(e.sample.id, Served(None)) for e in val], [cs.get(e.sample.id, Served(None)) for e in val]),
            levels=[e.generalization for e in val])
        measured.update(minibatch_metrics)
        measured.update(by_provenance("val", val, pv, cv))
        if not accepted:
            return finish("rejected", reason, measured)
        measured.update(await self._test_split(parent, candidate))
        version = self.prompts.add(candidate_text, parent=parent.version, created_by="optimizer",
                                   metrics={k: float(v) for k, v in measured.items()
                                            if isinstance(v, int | float)},
                                   judge_backend=self.backends["judge_backend"],
                                   reflection_backend=self.backends["reflection_backend"])
        self.prompts.activate(version.version)
        return finish("accepted", f"v{version.version}: {reason}", measured, version.version)

    async def _test_split(self, parent: PromptVersion, candidate: PromptVersion) -> dict[str, float]:
        """κ on the held-out test split, judged only after the decision: it never chose anything, so unlike the
        validation κ (used for selection, inflated by it) it is an unbiased estimate."""
        test = self.pool.test
        if not test:
            return {}
        truth = [e.label for e in test]
        out = {"n_test": float(len(test))}
        judged = {}
        for name, prompt in (("kappa_test", candidate), ("kappa_parent_test", parent)):
            judged[name] = labels = _labels(await self._served(prompt, test))
            if (k := gate_agreement(truth, [labels.get(e.sample.id) for e in test]).kappa.value) is not None:
                out[name] = k
        out.update(by_provenance("test", test, judged["kappa_parent_test"], judged["kappa_test"]))
        return out

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
        try:
            reply, attempts = await with_retries(
                lambda: self.reflection_provider.complete(messages, REFLECTION_SCHEMA, params, context),
                self.policy)
        except AuthenticationError:
            raise
        except ProviderError as exc:
            raise OverseerError(f"the reflection model ({self.backends['reflection_backend']}) failed: {exc}; "
                                "check it or pick another with --reflection-backend") from exc
        self.budget.spent_calls += attempts
        self.budget.spent_usd += cost_usd(reply.model, reply.usage, self.serving.prices)
        try:
            data = json.loads(reply.text)
            return str(data["prompt"]), str(data.get("summary", ""))
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise OverseerError(f"the reflection model ({self.backends['reflection_backend']}) did not propose a "
                                f"prompt: its reply is not the expected JSON: {reply.text[:200]!r}; pick a model "
                                "that can rewrite prompts with --reflection-backend") from exc


def _served_of(saved: dict[str, Any]) -> dict[str, Served]:
    return {sid: Served.from_state(value) for sid, value in saved.items()}


def _labels(saved: dict[str, Any]) -> dict[str, Label | None]:
    return {sid: served.label for sid, served in _served_of(saved).items()}


def by_provenance(split: str, examples: list[Example], parent: dict[str, Label | None],
                  candidate: dict[str, Label | None]) -> dict[str, float]:
    """κ of both prompts on each label provenance of the split (human review, reference column, seed file):
    a gain made only on another LLM's reference labels shows as such in `prompts history`."""
    out: dict[str, float] = {}
    for provenance in PROVENANCES:
        part = [e for e in examples if e.provenance == provenance]
        if not part:
            continue
        truth = [e.label for e in part]
        out[f"n_{split}_{provenance}"] = float(len(part))
        for name, labels in (("kappa", candidate), ("kappa_parent", parent)):
            k = gate_agreement(truth, [labels.get(e.sample.id) for e in part]).kappa.value
            if k is not None:
                out[f"{name}_{split}_{provenance}"] = k
    return out
