"""Versioned judging prompts. Version 1 ships in prompts/judge/v1.md; versions the agent (or a human) writes go
to WORKSPACE/prompts/judge/vN.md, created exclusively — a version file is never overwritten — and
WORKSPACE/prompts/active.json says which version is active, with the activation history `rollback` walks back."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import yaml

from overseer.errors import OverseerError
from overseer.prompt_versions import load_prompt, missing_placeholders, shipped_prompts_dir
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
        return json.loads(self.pointer.read_text(encoding="utf-8"))

    def active(self) -> PromptVersion:
        return self.get(int(self._state()["active"]))

    def history(self) -> list[int]:
        return list(self._state()["history"])

    # --- writing ------------------------------------------------------------------------------------------
    def _write_state(self, state: dict[str, Any]) -> None:
        self.pointer.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.pointer.with_suffix(".tmp")
        tmp.write_text(json.dumps(state), encoding="utf-8")
        os.replace(tmp, self.pointer)  # atomic: never a half-written pointer

    def activate(self, version: int) -> PromptVersion:
        prompt = self.get(version)
        state = self._state()
        if state["active"] != version:
            state["active"] = version
            state["history"].append(version)
            self._write_state(state)
        return prompt

    def rollback(self) -> PromptVersion:
        """Re-activate the version that was active before the current one."""
        state = self._state()
        if len(state["history"]) < 2:
            raise OverseerError(f"nothing to roll back to: v{state['active']} is the only {self.role} version "
                                "ever activated")
        state["history"].pop()
        state["active"] = state["history"][-1]
        self._write_state(state)
        return self.get(state["active"])

    def add(self, text: str, *, parent: int, created_by: str, metrics: dict[str, float] | None = None,
            required: list[str] | None = None, note: str | None = None) -> PromptVersion:
        """Write the next version (or return the existing one with the same text: re-running a round that was
        interrupted after writing must not duplicate versions)."""
        if (existing := self.find(sha256_text(text))) is not None:
            return existing
        parent_prompt = self.get(parent)
        required = required if required is not None else parent_prompt.required_placeholders
        candidate = PromptVersion(role=self.role, version=0, parent=parent, created_by=created_by,  # type: ignore[arg-type]
                                  required_placeholders=required, text=text, hash=sha256_text(text))
        if missing := missing_placeholders(candidate):
            raise OverseerError(f"prompt is missing required placeholders: {', '.join(missing)}")
        self.dir.mkdir(parents=True, exist_ok=True)
        while True:
            version = max(p.version for p in self.versions()) + 1
            path = self.dir / f"v{version}.md"
            header = {"role": self.role, "version": version, "parent": parent, "created_by": created_by,
                      "created_at": utcnow().isoformat(), "required_placeholders": required,
                      "metrics": metrics or {}, "source": note}
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                continue  # another writer took that number: take the next
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write("---\n" + yaml.safe_dump(header, sort_keys=False) + "---\n" + text)
            return load_prompt(path)


