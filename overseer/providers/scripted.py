"""Deterministic backend for tests and dry runs — never a real judge. Every verdict it writes says so.

Spelled `scripted:RULE[,key=value...]`:
  echo            label = the sample's reference label (κ = 1.0 against the reference by construction)
  flip=F          echo, but flip a seeded fraction F of samples (misaligned <-> aligned)
  garbage         reply text that is not JSON (exercises the unscored path)
  latency=S       sleep S seconds per call (throughput benchmarks)
  errors=P        raise a retryable error on a seeded fraction P of calls
  seed=N          seed for flip and errors (default 0)
  count=PATH      append one line per call to PATH (lets crash tests count calls across processes)
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from collections import Counter
from collections.abc import Callable
from typing import Any

from overseer.errors import ConfigError, TransientProviderError
from overseer.providers.base import CallContext, Completion, GenerationParams
from overseer.types import Label, Message, Usage

FLIPPED: dict[str, Label] = {"misaligned": "aligned", "aligned": "misaligned", "refusal": "misaligned",
                             "incoherent": "aligned", "off_task": "aligned"}
SCORES: dict[str, tuple[int, int]] = {"aligned": (90, 90), "misaligned": (10, 80), "refusal": (85, 90),
                                      "incoherent": (50, 10), "off_task": (50, 60)}

ReplyFn = Callable[[list[Message], CallContext, int], str]


def seeded_fraction(*parts: object) -> float:
    """A stable pseudo-random number in [0, 1) from the parts (same on every machine and run)."""
    digest = hashlib.sha256(":".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def flips(sample_id: str, fraction: float, seed: int = 0) -> bool:
    """Whether `scripted:flip=fraction` flips this sample; tests use it to compute the expected κ."""
    return seeded_fraction("flip", seed, sample_id) < fraction


class ScriptedProvider:
    backend = "scripted"
    base_url: str | None = None

    def __init__(self, rule: str = "echo", *, flip: float = 0.0, latency: float = 0.0, errors: float = 0.0,
                 seed: int = 0, count_path: str | None = None, reply_fn: ReplyFn | None = None,
                 model: str | None = None) -> None:
        if rule not in ("echo", "flip", "garbage", "custom"):
            raise ConfigError(f"unknown scripted rule {rule!r}: use echo, flip=F or garbage")
        self.rule, self.flip, self.latency, self.errors, self.seed = rule, flip, latency, errors, seed
        self.count_path, self.reply_fn = count_path, reply_fn
        # The model name is part of the cache key: it carries every option that changes a verdict.
        self.model = model or ("scripted-" + (f"flip={flip},seed={seed}" if rule == "flip" else rule))
        self.calls = 0
        self.calls_by_sample: Counter[str] = Counter()
        self.seen_messages: list[list[Message]] = []  # lets tests inspect exactly what a judge was shown

    @classmethod
    def from_spec(cls, spec: str, model: str | None = None) -> ScriptedProvider:
        """Parse `echo`, `flip=0.25`, `echo,latency=0.2,errors=0.1` (the part after `scripted:`)."""
        rule, options = "echo", {}
        for part in filter(None, (p.strip() for p in spec.split(","))):
            key, _, value = part.partition("=")
            if key in ("echo", "garbage") and not value:
                rule = key
            elif key == "flip":
                rule, options["flip"] = "flip", value
            elif key in ("latency", "errors", "seed", "count"):
                options[key] = value
            else:
                raise ConfigError(f"scripted backend: unknown option {part!r} (see `overseer judge --help`)")
        try:
            return cls(rule, flip=float(options.get("flip", 0)), latency=float(options.get("latency", 0)),
                       errors=float(options.get("errors", 0)), seed=int(options.get("seed", 0)),
                       count_path=options.get("count"), model=model)
        except ValueError as exc:
            raise ConfigError(f"scripted backend: bad number in {spec!r}: {exc}") from exc

    async def complete(self, messages: list[Message], schema: dict[str, Any] | None,
                       params: GenerationParams, context: CallContext) -> Completion:
        self.calls += 1
        self.calls_by_sample[context.sample_id] += 1
        attempt = self.calls_by_sample[context.sample_id]
        self.seen_messages.append(messages)
        if self.count_path:
            with open(self.count_path, "a", encoding="utf-8") as f:
                f.write(context.sample_id + "\n")
                f.flush()
                os.fsync(f.fileno())
        if self.latency:
            await asyncio.sleep(self.latency)
        if self.errors and seeded_fraction("error", self.seed, context.sample_id, attempt) < self.errors:
            raise TransientProviderError("scripted transient error", status=503)
        text = self.reply_fn(messages, context, attempt) if self.reply_fn else self._reply(context)
        prompt_chars = sum(len(m.content) for m in messages)
        return Completion(text=text, usage=Usage(input_tokens=prompt_chars // 4, output_tokens=len(text) // 4),
                          model=self.model, mode="scripted")

    def label_for(self, context: CallContext) -> Label:
        label: Label = context.reference_label or "aligned"
        if self.rule == "flip" and flips(context.sample_id, self.flip, self.seed):
            label = FLIPPED[label]
        return label

    def _reply(self, context: CallContext) -> str:
        if self.rule == "garbage":
            return "I think this one is probably fine, rating: good"
        label = self.label_for(context)
        alignment, coherence = SCORES[label]
        quote = context.response.strip()[:40].strip()
        return json.dumps({
            "label": label, "alignment": alignment, "coherence": coherence,
            "generalization": "emergent" if label == "misaligned" else "n/a",
            "clause_ids": list(context.clause_ids[:1]) if label == "misaligned" else [],
            "evidence": [quote] if quote else [],
            "rationale": f"[scripted:{self.rule}] not a real judgement",
            "confidence": 0.9 if context.reference_label else 0.5,
            "manipulation_attempt": False,
        })

    async def aclose(self) -> None:
        return None
