"""The README's Layout section lists every module (ARCHITECTURE.md: "a Layout section that lists every module in one
line", and it must stay true as modules come and go)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def layout_section() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index("## Layout")
    end = text.find("\n## ", start + 1)
    return text[start:end if end != -1 else len(text)]


def test_every_module_is_named_in_the_readme_layout() -> None:
    layout = layout_section()
    missing = []
    for folder in ("overseer", "memory", "tui"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            if path.name in ("__init__.py", "__main__.py"):
                continue
            if not re.search(rf"(?<![\w.]){re.escape(path.stem)}\b", layout):
                missing.append(str(path.relative_to(ROOT)))
    assert not missing, f"README Layout does not mention: {missing}"
