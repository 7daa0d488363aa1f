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
    query = "SELECT sample_json FROM samples" + (" WHERE run_id = ?" if run_id else "") + " ORDER BY rowid"
    found: dict[str, Example] = {}
    for (blob,) in store.db.execute(query, (run_id,) if run_id else ()):
        sample = Sample.model_validate_json(blob)
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
    query = ("SELECT s.sample_json, w.label, w.note FROM reviews w JOIN samples s ON s.run_id = w.run_id AND "
             "s.sample_id = w.sample_id WHERE w.status = 'active'" + (" AND w.run_id = ?" if run_id else "")
             + " ORDER BY w.id")
    return [Example(Sample.model_validate_json(blob), label, note or "", "review")
            for blob, label, note in store.db.execute(query, (run_id,) if run_id else ())]


def load_golden(path: Path, fields: FieldMap) -> list[Example]:
    loaded = read_samples(path, fields)
    return [Example(s, s.reference_label, source="golden") for _, s in loaded.samples
            if s.reference_label is not None]
