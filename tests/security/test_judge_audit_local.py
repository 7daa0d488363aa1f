"""`overseer audit` end to end against the bundled SmolLM2 behind a real `python -m llama_cpp.server` (the
openai backend, no key). What it shows: the whole path works offline — schema fallback to llama.cpp's json_object,
clause selection from the OpenAI Model Spec within a small context window, the flip table — and that the
per-sample ordering lets the server reuse the prompt prefix. The flip rates of a 135M model mean nothing."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_helpers_security import cli  # type: ignore[import-not-found]
from llama_server import NEEDS_LOCAL, llama_server  # type: ignore[import-not-found]

pytestmark = [pytest.mark.local_model, pytest.mark.slow, NEEDS_LOCAL]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    log = tmp_path / "server.log"
    with llama_server(log) as url:
        yield url, log


def test_audit_runs_end_to_end_on_the_local_model_through_llama_server(shared_data: Path, tmp_path: Path,
                                                                        server: tuple[str, Path]) -> None:
    url, log = server
    code, output = cli("audit", str(shared_data / "model_spec_examples.jsonl"), "--spec",
                       str(shared_data / "openai_model_spec.md"), "--prompt-field", "conversation",
                       "--label-field", "label", "--limit", "2", "--max-clauses", "1", "--perturbations",
                       "praise,inject", "--concurrency", "1", "--backend", "openai", "--base-url", url, "--json",
                       "-w", str(tmp_path / "ws"))
    assert code == 0, output
    result = json.loads(output[output.index("{"):])
    assert result["samples"] == 2 and result["clean_errors"] == 0, result
    assert result["clean_scored"] + result["clean_unscored"] == 2
    # no --model: the verdicts name the model the server says it serves, not our default for api.openai.com
    assert result["judge"].startswith("openai@") and result["judge"].endswith(".gguf")
    rows = {r["perturbation"]: r for r in result["perturbations"]}
    assert list(rows) == ["praise", "inject"]
    for row in rows.values():
        assert row["n"] + row["unscored"] == result["clean_scored"] and 0 <= row["flips"] <= row["n"]
    # The server reused a long shared prompt prefix (the ordering itself is tested with the scripted judge).
    hits = [int(n) for n in re.findall(r"(\d+) prefix-match hit", log.read_text(errors="replace"))]
    assert any(n > 500 for n in hits), hits
