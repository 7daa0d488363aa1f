"""Edge-case memory (installed as overseer.memory)."""

from __future__ import annotations

from pathlib import Path

# Similar cases below this cosine similarity (WordLlama) are not shown to the judge or in the TUI: they share style,
# not substance. Chosen with bench/relevance_floor.py: 0.5 keeps 98% of JailbreakBench cases' nearest neighbour of
# the same behaviour and 95% of Model Spec examples' nearest of the same clause, drops 64% / 48% of the nearest
# unrelated ones (another category / clause), and every off-topic chat probe ("hey I feel bored": at most 0.35).
RELEVANCE_FLOOR = 0.5


def memory_exists(root: Path) -> bool:
    """Was anything ever written at `root`? A log without its meta.json is a damaged memory, not an absent one:
    opening it gives the error that says how to recover (here, without importing the store)."""
    return (root / "meta.json").exists() or (root / "cases.jsonl").exists()
