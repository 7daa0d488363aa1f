"""Edge-case memory (installed as overseer.memory)."""

from __future__ import annotations

from pathlib import Path


def memory_exists(root: Path) -> bool:
    """Was anything ever written at `root`? A log without its meta.json is a damaged memory, not an absent one:
    opening it gives the error that says how to recover (here, without importing the store)."""
    return (root / "meta.json").exists() or (root / "cases.jsonl").exists()
