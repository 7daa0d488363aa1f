"""Versioned judging prompts. Version 1 ships in prompts/judge/v1.md; versions the agent (or a human) writes go
to WORKSPACE/prompts/judge/vN.md, created exclusively — a version file is never overwritten, and appears whole
or not at all — and WORKSPACE/prompts/active-judge.json says which version is active, with the activation
history `rollback` walks back.

Shipped and workspace versions share one number space (shipped first), so a new shipped vN would silently take
the place of a workspace's own vN. That is why the judge prompt's final layout (issue 11.12: shared instructions
and clauses first, everything per sample last) changed v1 in place, once, before any release, rather than
shipping a v2; a verdict still names the exact words it used by `prompt_hash`. Issue 12.3 (blinded two-pass
judging: no fine-tuning domain or generalization level in the scoring pass) changed v1 in place a second time, for
the same reason. From here on shipped versions are immutable history."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import yaml

from overseer.errors import OverseerError
from overseer.templates import check_placeholders, load_prompt, missing_placeholders, shipped_prompts_dir
from overseer.types import PromptVersion, sha256_text, utcnow

VERSION_FILE = re.compile(r"^v(\d+)\.md$")


class PromptStore:
    def __init__(self, workspace: Path, role: str = "judge") -> None:
        self.role = role
        self.shipped_dir = shipped_prompts_dir() / role
        self.dir = workspace / "prompts" / role
        self.pointer = workspace / "prompts" / f"active-{role}.json"

    # --- reading ------------------------------------------------------------------------------------------
    def versions(self) -> list[PromptVersion]:
        found: dict[int, PromptVersion] = {}
        for folder in (self.shipped_dir, self.dir):
            if folder.is_dir():
                for path in folder.iterdir():
                    if VERSION_FILE.match(path.name):
                        prompt = load_prompt(path)
                        found.setdefault(prompt.version, prompt)
        return [found[v] for v in sorted(found)]

    def get(self, version: int) -> PromptVersion:
        for prompt in self.versions():
            if prompt.version == version:
                return prompt
        known = ", ".join(f"v{p.version}" for p in self.versions())
        raise OverseerError(f"no {self.role} prompt version {version} (known: {known})")

    def find(self, text_hash: str) -> PromptVersion | None:
        return next((p for p in self.versions() if p.hash == text_hash), None)

    def _state(self) -> dict[str, Any]:
        if not self.pointer.exists():
            return {"active": 1, "history": [1]}
        try:
            state: dict[str, Any] = json.loads(self.pointer.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise OverseerError(f"{self.pointer} is damaged ({exc}); delete it to fall back to v1, then "
                                "`overseer prompts activate V`") from exc
        return state

    def active(self) -> PromptVersion:
        return self.get(int(self._state()["active"]))

    def history(self) -> list[int]:
        return list(self._state()["history"])

    # --- writing ------------------------------------------------------------------------------------------
    def _write_state(self, state: dict[str, Any]) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.pointer.parent, prefix=".active-", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(json.dumps(state))
        os.replace(tmp, self.pointer)  # atomic: never a half-written pointer

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Read-modify-write of the pointer under a lock: a background --learn round and a human's
        `prompts activate` must not lose each other's history entries."""
        self.pointer.parent.mkdir(parents=True, exist_ok=True)
        with (self.pointer.parent / f".active-{self.role}.lock").open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield

    def activate(self, version: int) -> PromptVersion:
        prompt = self.get(version)
        check_placeholders(prompt)  # a hand-edited version missing a placeholder never becomes active
        with self._locked():
            state = self._state()
            if state["active"] != version:
                state["active"] = version
                state["history"].append(version)
                self._write_state(state)
        return prompt

    def rollback(self) -> PromptVersion:
        """Re-activate the version that was active before the current one."""
        with self._locked():
            state = self._state()
            if len(state["history"]) < 2:
                raise OverseerError(f"nothing to roll back to: v{state['active']} is the only {self.role} "
                                    "version ever activated")
            state["history"].pop()
            state["active"] = state["history"][-1]
            self._write_state(state)
        return self.get(state["active"])

    def add(self, text: str, *, parent: int, created_by: Literal["human", "optimizer"],
            metrics: dict[str, float] | None = None, required: list[str] | None = None,
            note: str | None = None, judge_backend: str | None = None,
            reflection_backend: str | None = None) -> PromptVersion:
        """Write the next version (or return the existing one with the same text: re-running a round that was
        interrupted after writing must not duplicate versions)."""
        text = text.replace("\r\n", "\n").replace("\r", "\n")  # as read back, so the hash matches on re-add
        metrics = {k: float(v) for k, v in (metrics or {}).items()}  # numpy floats are not YAML
        if (existing := self.find(sha256_text(text))) is not None:
            return existing
        parent_prompt = self.get(parent)
        required = required if required is not None else parent_prompt.required_placeholders
        candidate = PromptVersion(role=self.role, version=0, parent=parent, created_by=created_by,
                                  required_placeholders=required, text=text, hash=sha256_text(text))
        if missing := missing_placeholders(candidate):
            raise OverseerError(f"prompt is missing required placeholders: {', '.join(missing)}")
        self.dir.mkdir(parents=True, exist_ok=True)
        while True:
            version = max(p.version for p in self.versions()) + 1
            path = self.dir / f"v{version}.md"
            header = {"role": self.role, "version": version, "parent": parent, "created_by": created_by,
                      "created_at": utcnow().isoformat(), "required_placeholders": required,
                      "metrics": metrics, "source": note}
            if judge_backend or reflection_backend:
                header.update(judge_backend=judge_backend, reflection_backend=reflection_backend)
            # Written whole to a temporary name, then linked into place: a crash leaves a complete version file
            # or none (an empty vN.md would make every later read fail), and link() refuses to overwrite.
            fd, tmp = tempfile.mkstemp(dir=self.dir, prefix=f".v{version}.", suffix=".tmp")
            try:
                with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
                    f.write("---\n" + yaml.safe_dump(header, sort_keys=False) + "---\n" + text)
                    f.flush()
                    os.fsync(f.fileno())
                try:
                    os.link(tmp, path)
                except FileExistsError:
                    continue  # another writer took that number: take the next
            finally:
                os.unlink(tmp)
            return load_prompt(path)


