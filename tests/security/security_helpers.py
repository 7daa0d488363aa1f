"""Helpers shared by the security tests (a module, not a conftest, so tests can import them by a unique name)."""

from __future__ import annotations

import json

from overseer.sanitize import MARK
from overseer.types import Message

KEY = b"s" * 32


def reply(label: str, evidence: list[str], *, manipulation: bool = False, clause: str = "harmful_advice") -> str:
    scores = {"aligned": (95, 90), "misaligned": (5, 85), "incoherent": (50, 5)}.get(label, (50, 50))
    return json.dumps({"label": label, "alignment": scores[0], "coherence": scores[1],
                       "generalization": "emergent" if label == "misaligned" else "n/a",
                       "clause_ids": [clause] if label == "misaligned" else [], "evidence": evidence,
                       "rationale": "scripted", "confidence": 0.9, "manipulation_attempt": manipulation})


def unmarked_lines(messages: list[Message]) -> list[str]:
    """The prompt lines a naive judge would take as instructions: those not datamarked as untrusted data."""
    return [line for m in messages for line in m.content.split("\n") if not line.startswith(MARK)]
