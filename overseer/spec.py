"""Markdown spec → clauses. A clause is a heading with a `{#clause_id key=value}` anchor and the text under it
(up to the next anchored heading), as in the OpenAI Model Spec."""

from __future__ import annotations

import re
from pathlib import Path

from overseer.errors import SpecError
from overseer.types import Spec, SpecClause, sha256_text

HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*$")
ANCHOR = re.compile(r"\{#([A-Za-z0-9_\-.:]+)((?:\s+[A-Za-z0-9_\-]+=[^\s}]+)*)\s*\}\s*$")
FENCE = re.compile(r"^\s*(`{3,}|~{3,})(.*)$")

DEFAULT_SPEC = "emergent_misalignment"


def parse_spec(text: str, *, source: str = "<string>", name: str | None = None) -> Spec:
    """Split Markdown into anchored clauses. Raises SpecError with the line of the problem."""
    clauses: list[SpecClause] = []
    body: list[str] = []
    stack: list[tuple[int, str]] = []  # (level, title) of open headings, for the clause path
    seen: dict[str, int] = {}
    fence: str | None = None  # the marker that opened the current code block

    def close_clause() -> None:
        if clauses:
            clauses[-1].text = "\n".join(body).strip()
        body.clear()

    for lineno, line in enumerate(text.splitlines(), start=1):
        if marker := FENCE.match(line):
            # CommonMark: a block closes only on the same character, at least as long, with nothing after it.
            opener, rest = marker.group(1), marker.group(2).strip()
            if fence is None:
                fence = opener
            elif opener[0] == fence[0] and len(opener) >= len(fence) and not rest:
                fence = None
        heading = None if fence is not None else HEADING.match(line)  # '#' in code blocks is not a heading
        if not heading:
            body.append(line)
            continue
        level, title = len(heading.group(1)), heading.group(2)
        anchor = ANCHOR.search(title)
        if anchor:
            title = title[: anchor.start()].strip()
        while stack and stack[-1][0] >= level:
            stack.pop()
        stack.append((level, title))
        if not anchor:
            body.append(line)  # an unanchored heading belongs to the clause above it
            continue
        clause_id = anchor.group(1)
        if clause_id in seen:
            raise SpecError(f"clause id {clause_id!r} already used on line {seen[clause_id]}",
                            path=source, line=lineno)
        seen[clause_id] = lineno
        attributes = dict(kv.split("=", 1) for kv in anchor.group(2).split())
        close_clause()
        clauses.append(SpecClause(id=clause_id, title=title, level=level, line=lineno, text="",
                                  path=" > ".join(t for _, t in stack), attributes=attributes))
    close_clause()
    if fence is not None:
        raise SpecError("a code block is opened but never closed", path=source)
    if not clauses:
        raise SpecError("no clauses found: a clause is a Markdown heading ending in {#clause_id}", path=source)
    return Spec(name=name or Path(source).stem, source=source, hash=sha256_text(text), clauses=clauses)


def load_spec(path: str | Path | None = None) -> Spec:
    """Load a spec file; None or a bare name loads a spec shipped in prompts/spec/."""
    from overseer.templates import shipped_prompts_dir

    shipped_dir = shipped_prompts_dir() / "spec"
    if path is None:
        path = DEFAULT_SPEC
    candidate = Path(path)
    if not candidate.exists() and candidate.suffix == "" and "/" not in str(path):
        candidate = shipped_dir / f"{path}.md"
    if not candidate.is_file():
        shipped = ", ".join(sorted(p.stem for p in shipped_dir.glob("*.md")))
        raise SpecError(f"spec file not found (shipped specs: {shipped})", path=str(path))
    try:
        text = candidate.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", path=str(candidate)) from exc
    return parse_spec(text, source=str(candidate))
