"""The labelled pool the optimizer learns from and is judged on: reviewed edge cases from the memory, samples
of past runs that came with reference labels, and human reviews from the review TUI.

The split is frozen: each item goes to train, validation or test by a hash of its normalized content (so a run
sample `jbb-…` and its memory copy `ec-…` land together and count once), and the run store keeps the first
assignment for good, so no later round re-splits. Train proposes rewrites, validation accepts them, test is only
ever measured after an acceptance (the unbiased figure). The golden set is pinned (overseer's own, always, plus
the user's) and is never used to propose a rewrite, only to veto one."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib.resources import as_file, files
from pathlib import Path
from typing import Literal

from overseer.errors import ConfigError, InputError
from overseer.memory import memory_exists
from overseer.providers.scripted import seeded_fraction
from overseer.samples_io import FieldMap, read_samples
from overseer.store.runs import RunStore
from overseer.types import Generalization, Label, Sample, sha256_text

Side = Literal["train", "validation", "test"]
# Where an item's label came from: a human review (the review TUI, or a memory case a reviewer wrote), a reference
# column of an input file (often another LLM's verdict, as in JailbreakBench), or a seed file of the memory.
Provenance = Literal["human", "reference", "seed"]
PROVENANCES: tuple[Provenance, ...] = ("human", "reference", "seed")
LabelChoice = Literal["human", "all"]
# `all` by default: a new workspace has reference labels and seeded cases long before it has a reviewer's, and
# `prompts history` gives κ per provenance, so a gain made only on another LLM's labels shows as one.
DEFAULT_LABELS: LabelChoice = "all"
TEST_SHARE, VALIDATION_SHARE = 0.2, 0.3  # the rest (half) is train
_SPACE = re.compile(r"\s+")
LEVELS = ("in_domain", "domain_leakage", "emergent", "n/a")


@dataclass
class Example:
    sample: Sample
    label: Label
    rationale: str = ""
    source: str = "reference"  # reference | memory | review | golden
    provenance: Provenance = "reference"
    generalization: Generalization | None = None  # the label's generalization level, when it has one


@dataclass
class Pool:
    train: list[Example]
    validation: list[Example]
    golden: list[Example] = field(default_factory=list)
    test: list[Example] = field(default_factory=list)

    def all(self) -> list[Example]:
        return [*self.train, *self.validation, *self.test, *self.golden]

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "validation": len(self.validation), "test": len(self.test),
                "golden": len(self.golden)}

    def describe(self) -> str:
        """One readable line, e.g. `120 train, 72 validation, 48 test (held out), 14 golden; labels: 200
        reference, 40 human`."""
        split = [*self.train, *self.validation, *self.test]
        counts = [f"{n} {p}" for p in PROVENANCES if (n := sum(e.provenance == p for e in split))]
        return (f"{len(self.train)} train, {len(self.validation)} validation, {len(self.test)} test (held out), "
                f"{len(self.golden)} golden; labels: {', '.join(counts) or 'none'}")


def choose_labels(examples: list[Example], labels: LabelChoice) -> list[Example]:
    """`human`: only labels a person gave (reviews); `all`: reviews, reference columns and seed files."""
    if labels not in ("human", "all"):
        raise ConfigError(f"--labels must be human or all, not {labels!r}")
    return examples if labels == "all" else [e for e in examples if e.provenance == "human"]


def content_key(sample: Sample) -> str:
    """The item's identity for the split: its context (prompt or conversation, as the memory stores a copy) and
    response, case- and whitespace-normalized."""
    def norm(text: str) -> str:
        return _SPACE.sub(" ", text).strip().casefold()

    return sha256_text(f"{norm(sample.context_text())}\x1f{norm(sample.response)}")


def side_of(key: str) -> Side:
    """Where a never-seen item goes (no seed: the same content lands on the same side in every workspace)."""
    u = seeded_fraction("pool-split", key)
    return "test" if u < TEST_SHARE else "validation" if u < TEST_SHARE + VALIDATION_SHARE else "train"


def split_pool(examples: list[Example], golden: list[Example] | None = None, *,
               frozen: Mapping[str, str] | None = None) -> Pool:
    """Deduplicate by content (a later example wins: a human review overrides a reference label or its memory
    copy), drop what the golden set pins, and place each item on its frozen side (or `side_of` for a new one)."""
    golden = golden or []
    pinned = {content_key(e.sample) for e in golden}
    unique: dict[str, Example] = {}
    for e in examples:
        key = content_key(e.sample)
        if key not in pinned:
            unique.pop(key, None)
            unique[key] = e
    sides: dict[str, list[Example]] = {"train": [], "validation": [], "test": []}
    for key, e in sorted(unique.items(), key=lambda kv: kv[1].sample.id):
        sides[(frozen or {}).get(key) or side_of(key)].append(e)
    return Pool(sides["train"], sides["validation"], _unique(golden), sides["test"])


def frozen_pool(store: RunStore, examples: list[Example], golden: list[Example] | None = None) -> Pool:
    """`split_pool` with the store's frozen assignment; items seen for the first time are assigned and stored."""
    keys = {content_key(e.sample) for e in examples}
    pool = split_pool(examples, golden, frozen=store.freeze_split({k: side_of(k) for k in sorted(keys)}))
    store.record_labels({content_key(e.sample): (e.provenance, e.label)
                         for e in [*pool.train, *pool.validation, *pool.test]})
    return pool


def _unique(golden: list[Example]) -> list[Example]:
    by_key = {content_key(e.sample): e for e in golden}
    return list(by_key.values())


def examples_from_runs(store: RunStore, run_id: str | None = None) -> list[Example]:
    """Samples that came with a reference label, from one run or every run (latest copy of an id wins)."""
    found: dict[str, Example] = {}
    for sample in store.run_samples(run_id):
        if sample.reference_label is not None:
            level = sample.metadata.get("reference_generalization")
            found[sample.id] = Example(sample, sample.reference_label, provenance="reference",
                                       generalization=level if level in LEVELS else None)
    return list(found.values())


def examples_from_memory(root: Path) -> list[Example]:
    """Reviewed edge cases, with their human rationale."""
    if not memory_exists(root):
        return []
    from overseer.memory.store import EdgeCaseStore

    store = EdgeCaseStore(root)
    return [Example(Sample(id=c.id, prompt=c.prompt, response=c.response,
                           metadata={k: v for k, v in c.metadata.items() if not k.startswith("_")}),
                    c.label, c.rationale, "memory", "human" if c.source == "review" else "seed", c.generalization)
            for c in store.cases().values() if c.reviewed]


def examples_from_reviews(store: RunStore, run_id: str | None = None) -> list[Example]:
    """Human decisions from the review TUI (active ones only), with the reviewer's note as rationale. Listed
    after the reference labels in the pool, so a human review of a sample overrides its reference label."""
    return [Example(sample, label, note or "", "review", "human")  # type: ignore[arg-type]
            for sample, label, note in store.reviewed_samples(run_id)]


def load_golden(path: Path, fields: FieldMap) -> list[Example]:
    """A golden set vetoes rewrites, so a record silently dropped (a bad line, a missing label) would be a veto
    lost: every invalid record is an error, and so is a file with none."""
    loaded = read_samples(path, fields)
    if loaded.errors:
        more = f" (and {len(loaded.errors) - 1} more invalid record(s))" if len(loaded.errors) > 1 else ""
        raise InputError(f"golden set: {loaded.errors[0][1]}{more}")
    if not loaded.samples:
        raise InputError(f"golden set {path} has no records")
    return [Example(s, s.reference_label, source="golden") for _, s in loaded.samples
            if s.reference_label is not None]


def shipped_golden() -> list[Example]:
    """overseer's own golden set (prompts/golden/v1.jsonl, written for it): misaligned answers that carry
    injections or praise, and the "treat X as aligned" family. Applied on every path, whatever else is given."""
    with as_file(files("overseer.prompts") / "golden" / "v1.jsonl") as path:
        return load_golden(path, FieldMap(label="label"))
