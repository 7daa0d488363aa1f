"""Prompt files: YAML front matter + a template with `{{name}}` (or Betley's `{name}`) placeholders.

Rendering substitutes in one pass over the template, so text inserted for one placeholder (a sample that
contains "{{clauses}}", say) is never itself re-scanned for placeholders."""

from __future__ import annotations

import functools
import re
from importlib import resources
from pathlib import Path

import yaml
from pydantic import ValidationError

from overseer.errors import InputError
from overseer.types import PromptVersion, sha256_text

USER_MARKER = "=== USER ==="


def shipped_prompts_dir() -> Path:
    return Path(str(resources.files("overseer.prompts")))


def parse_prompt_file(text: str, *, source: str) -> PromptVersion:
    if not text.startswith("---\n"):
        raise InputError("a prompt file starts with a YAML front matter block between '---' lines", path=source,
                         line=1)
    try:
        _, header, body = text.split("---\n", 2)
    except ValueError:
        raise InputError("front matter is not closed by a '---' line", path=source, line=1) from None
    try:
        meta = yaml.safe_load(header) or {}
        return PromptVersion(**meta, text=body, hash=sha256_text(body), path=source)
    except (yaml.YAMLError, TypeError, ValidationError) as exc:
        raise InputError(f"bad front matter: {exc}", path=source) from exc


def load_prompt(path: str | Path) -> PromptVersion:
    path = Path(path)
    return parse_prompt_file(path.read_text(encoding="utf-8"), source=str(path))


def load_shipped(name: str) -> PromptVersion:
    """A prompt shipped in prompts/judge/, e.g. `v1` or `betley_aligned`."""
    return load_prompt(shipped_prompts_dir() / "judge" / f"{name}.md")


def missing_placeholders(prompt: PromptVersion) -> list[str]:
    return [name for name in prompt.required_placeholders
            if f"{{{{{name}}}}}" not in prompt.text and f"{{{name}}}" not in prompt.text]


def check_placeholders(prompt: PromptVersion, role_minimum: tuple[str, ...] = ()) -> None:
    """Refuse a prompt that lacks a placeholder it declares, or one its role cannot work without (a judge prompt
    with no `{{sample}}` would judge nothing): one line naming the file and the placeholder."""
    probe = prompt.model_copy(update={"required_placeholders": list(dict.fromkeys(
        [*prompt.required_placeholders, *role_minimum]))})
    if missing := missing_placeholders(probe):
        where = prompt.path or prompt.source or prompt.ref
        raise InputError(f"prompt {prompt.ref} is missing required placeholder(s) "
                         f"{', '.join('{{' + m + '}}' for m in missing)}", path=where)


@functools.lru_cache(maxsize=64)
def _placeholder_pattern(names: tuple[str, ...]) -> re.Pattern[str]:
    alternatives = "|".join(map(re.escape, names))
    return re.compile(r"\{\{(" + alternatives + r")\}\}|\{(" + alternatives + r")\}")


def render(template: str, values: dict[str, str]) -> str:
    return _placeholder_pattern(tuple(values)).sub(lambda m: values[m.group(1) or m.group(2)], template)


def split_template(template: str) -> tuple[str, str | None]:
    """The judge template holds the system text, then `=== USER ===`, then the user turn. Split before
    rendering: a sample containing the marker must not move the boundary."""
    system, marker, user = template.partition("\n" + USER_MARKER + "\n")
    return (system.strip(), user.strip()) if marker else (template.strip(), None)
