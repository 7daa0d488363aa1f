"""The prompt optimizer's records: every candidate (accepted or not, with its parent, metrics and diff) and the
saved state of each round, written after every stage so an interrupted round resumes where it stopped; and the
frozen train / validation / test split of the labelled pool."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from overseer.store.db import Database, json_get
from overseer.types import utcnow


class OptimizerTables:
    """The `optimizer_rounds`, `prompt_candidates` and `pool_split` tables (RunStore combines this with the other
    parts)."""

    db: Database

    def save_round(self, round_id: str, stage: str, status: str, state: dict[str, Any]) -> None:
        now = utcnow().isoformat()
        self.db.execute("INSERT INTO optimizer_rounds (id, created_at, updated_at, stage, status, state_json) "
                        "VALUES (?,?,?,?,?,?) ON CONFLICT(id) DO UPDATE SET updated_at = excluded.updated_at, "
                        "stage = excluded.stage, status = excluded.status, state_json = excluded.state_json",
                        (round_id, now, now, stage, status, json.dumps(state, default=str)))

    def count_rounds(self) -> int:
        return int(self.db.scalar("SELECT COUNT(*) FROM optimizer_rounds"))

    def unfinished_round(self) -> tuple[str, str, dict[str, Any]] | None:
        row = self.db.one("SELECT id, stage, state_json FROM optimizer_rounds WHERE status = 'running' "
                          "ORDER BY created_at DESC LIMIT 1")
        return (row[0], row[1], json.loads(row[2])) if row else None

    def record_candidate(self, *, candidate_id: str, round_id: str, role: str, parent_version: int,
                         parent_hash: str, text_hash: str, text: str, status: str, reason: str | None,
                         metrics: dict[str, Any], diff: str, version: int | None) -> None:
        self.db.execute("INSERT OR REPLACE INTO prompt_candidates (id, round_id, role, parent_version, parent_hash, "
                        "hash, text, status, reason, metrics_json, diff, version, created_at) "
                        "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                        (candidate_id, round_id, role, parent_version, parent_hash, text_hash, text, status, reason,
                         json.dumps(metrics, default=str), diff, version, utcnow().isoformat()))

    def candidates(self, role: str = "judge") -> list[dict[str, Any]]:
        rows = self.db.all("SELECT id, round_id, parent_version, hash, status, reason, metrics_json, version, "
                           "created_at, diff FROM prompt_candidates WHERE role = ? ORDER BY created_at, rowid",
                           (role,))
        keys = ("id", "round_id", "parent_version", "hash", "status", "reason", "metrics", "version", "created_at",
                "diff")
        return [{**dict(zip(keys, r, strict=True)), "metrics": json.loads(r[6])} for r in rows]

    def unproductive_rounds(self) -> list[dict[str, Any]]:
        """Rounds that failed or were left unfinished (interrupted, or a budget ran out) without recording a
        candidate: id, created_at, stage, status and the reason, oldest first."""
        rows = self.db.all("SELECT id, created_at, stage, status, state_json FROM optimizer_rounds r "
                           "WHERE status IN ('failed', 'running') AND NOT EXISTS "
                           "(SELECT 1 FROM prompt_candidates c WHERE c.round_id = r.id) ORDER BY created_at, rowid")
        out = []
        for round_id, created_at, stage, status, state_json in rows:
            outcome = json.loads(state_json).get("outcome") or {}
            reason = outcome.get("reason") or f"interrupted before stage {stage}; `overseer improve` resumes it"
            out.append({"round_id": round_id, "created_at": created_at, "stage": stage,
                        "status": "interrupted" if status == "running" else status, "reason": reason})
        return out

    def validation_looks(self) -> int:
        """How many candidates were ever decided on the validation split (the gate's multiplicity count)."""
        return int(self.db.scalar(f"SELECT COUNT(*) FROM prompt_candidates WHERE {json_get('metrics_json', '$.n_val')} "
                                  "IS NOT NULL"))

    def freeze_split(self, proposed: Mapping[str, str]) -> dict[str, str]:
        """Store each content key's side unless it already has one, and return the stored sides of these keys:
        the first assignment of an item is final (INSERT OR IGNORE keeps it even when two processes race)."""
        now = utcnow().isoformat()
        with self.db.transaction():
            self.db.executemany("INSERT OR IGNORE INTO pool_split (content_key, split, created_at) VALUES (?,?,?)",
                                [(key, side, now) for key, side in proposed.items()])
        stored = dict(self.db.all("SELECT content_key, split FROM pool_split"))
        return {key: stored[key] for key in proposed}

    def record_labels(self, labels: Mapping[str, tuple[str, str]]) -> None:
        """Each split item's label in force and its provenance (content key → (provenance, label))."""
        now = utcnow().isoformat()
        with self.db.transaction():
            self.db.executemany("UPDATE pool_split SET provenance = ?, label = ?, labelled_at = ? "
                                "WHERE content_key = ? AND (provenance IS NOT ? OR label IS NOT ?)",
                                [(prov, label, now, key, prov, label) for key, (prov, label) in labels.items()])

    def split_provenance(self) -> dict[str, dict[str, int]]:
        """Items per split side and label provenance, as last recorded ('unknown' before any was)."""
        counts: dict[str, dict[str, int]] = {}
        for side, provenance, n in self.db.all("SELECT split, COALESCE(provenance, 'unknown'), COUNT(*) "
                                               "FROM pool_split GROUP BY 1, 2 ORDER BY 1, 2"):
            counts.setdefault(side, {})[provenance] = int(n)
        return counts
