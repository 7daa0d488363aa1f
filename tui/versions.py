"""Prompt versions for the versions screen, without Textual: κ per version, the optimizer's verdict on it,
diffs of any two, activate and rollback (which the screen asks to confirm first)."""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from overseer.prompt_store import PromptStore
from overseer.store.runs import RunStore
from overseer.types import PromptVersion


@dataclass
class VersionRow:
    version: int
    parent: int | None
    created_by: str
    kappa: float | None  # on the validation split when the optimizer measured it
    status: str  # active | accepted | shipped | human
    ref: str


class VersionsModel:
    def __init__(self, prompts: PromptStore, store: RunStore) -> None:
        self.prompts, self.store = prompts, store

    def rows(self) -> list[VersionRow]:
        active = self.prompts.active().version
        accepted = {c["version"] for c in self.store.candidates(self.prompts.role) if c["status"] == "accepted"}
        out = []
        for p in self.prompts.versions():
            status = "active" if p.version == active else "accepted" if p.version in accepted else (
                "shipped" if p.parent is None else p.created_by)
            out.append(VersionRow(p.version, p.parent, p.created_by, p.metrics.get("kappa_val"), status, p.ref))
        return out

    def rejected(self) -> list[dict[str, object]]:
        """Candidates the gate turned down: they never became versions, but their reasons are history."""
        return [c for c in self.store.candidates(self.prompts.role) if c["status"] != "accepted"]

    def diff(self, old: int, new: int) -> str:
        a, b = self.prompts.get(old), self.prompts.get(new)
        return "".join(difflib.unified_diff(a.text.splitlines(keepends=True), b.text.splitlines(keepends=True),
                                            fromfile=f"v{old}", tofile=f"v{new}")) or "(no difference)\n"

    def activate(self, version: int) -> PromptVersion:
        return self.prompts.activate(version)

    def can_roll_back(self) -> bool:
        """Rollback re-activates the version active before this one: there must have been one."""
        return len(self.prompts.history()) >= 2

    def rollback(self) -> PromptVersion:
        return self.prompts.rollback()
