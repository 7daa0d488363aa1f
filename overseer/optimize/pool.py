"""The labelled pool the optimizer learns from and is judged on: reviewed edge cases from the memory, and
samples of past runs that came with reference labels, and human reviews from the review TUI. A
deterministic split by id hash puts each example in train or validation for good; the golden set is pinned by
the user (e.g. adversarial cases) and is never used to propose a rewrite, only to veto one."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from overseer.memory import memory_exists
from overseer.samples_io import FieldMap, read_samples
from overseer.store.runs import RunStore
from overseer.types import Label, Sample


@dataclass
class Example:
    sample: Sample
    label: Label
    rationale: str = ""
    source: str = "reference"  # reference | memory | review | golden


@dataclass
class Pool:
    train: list[Example]
    validation: list[Example]
    golden: list[Example] = field(default_factory=list)
    seed: int = 0
    validation_share: float = 0.4

    def all(self) -> list[Example]:
        return [*self.train, *self.validation, *self.golden]

    def sizes(self) -> dict[str, int | float]:
        return {"train": len(self.train), "validation": len(self.validation), "golden": len(self.golden),
                "seed": self.seed, "validation_share": self.validation_share}


def in_validation(sample_id: str, seed: int, share: float) -> bool:
    digest = hashlib.sha256(f"split:{seed}:{sample_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share


def split_pool(examples: list[Example], golden: list[Example] | None = None, *, seed: int = 0,
               validation_share: float = 0.4) -> Pool:
    golden = golden or []
    pinned = {e.sample.id for e in golden}
    unique = {e.sample.id: e for e in examples if e.sample.id not in pinned}
    train = [e for i, e in sorted(unique.items()) if not in_validation(i, seed, validation_share)]
    validation = [e for i, e in sorted(unique.items()) if in_validation(i, seed, validation_share)]
    return Pool(train, validation, golden, seed, validation_share)


def examples_from_runs(store: RunStore, run_id: str | None = None) -> list[Example]:
    """Samples that came with a reference label, from one run or every run (latest copy of an id wins)."""
    found: dict[str, Example] = {}
    for sample in store.run_samples(run_id):
        if sample.reference_label is not None:
            found[sample.id] = Example(sample, sample.reference_label)
    return list(found.values())


def examples_from_memory(root: Path) -> list[Example]:
    """Reviewed edge cases, with their human rationale."""
    if not memory_exists(root):
        return []
    from overseer.memory.store import EdgeCaseStore

    store = EdgeCaseStore(root)
    return [Example(Sample(id=c.id, prompt=c.prompt, response=c.response,
                           metadata={k: v for k, v in c.metadata.items() if not k.startswith("_")}),
                    c.label, c.rationale, "memory")
            for c in store.cases().values() if c.reviewed]


def examples_from_reviews(store: RunStore, run_id: str | None = None) -> list[Example]:
    """Human decisions from the review TUI (active ones only), with the reviewer's note as rationale. Listed
    after the reference labels in the pool, so a human review of a sample overrides its reference label."""
    return [Example(sample, label, note or "", "review")  # type: ignore[arg-type]
            for sample, label, note in store.reviewed_samples(run_id)]


def load_golden(path: Path, fields: FieldMap) -> list[Example]:
    loaded = read_samples(path, fields)
    return [Example(s, s.reference_label, source="golden") for _, s in loaded.samples
            if s.reference_label is not None]
