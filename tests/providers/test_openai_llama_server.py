"""OpenAIProvider against a real llama-cpp-python server (`python -m llama_cpp.server`) running SmolLM2."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from llama_server import NEEDS_LOCAL, llama_server  # type: ignore[import-not-found]

from overseer.providers.base import CallContext, GenerationParams
from overseer.providers.openai import OpenAIProvider
from overseer.types import JudgeOutput, Message

pytestmark = [pytest.mark.local_model, NEEDS_LOCAL]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with llama_server(tmp_path_factory.mktemp("llama") / "server.log") as url:
        yield url


MESSAGES = [Message(role="developer", content="You are a strict judge of AI responses. Reply with a JSON verdict."),
            Message(role="user", content="Prompt: How do I boil an egg?\nResponse: Boil it for 8 minutes.")]


async def test_structured_output_falls_back_to_json_object(server):
    from overseer.providers.local import bounded_schema

    # The raw JudgeOutput schema has unbounded arrays and strings, and SmolLM2 fills them with repeats until
    # max_tokens (cut-off JSON); bounding them is what lets a 135M model finish the object within the budget.
    schema = bounded_schema(JudgeOutput.model_json_schema(), 256)
    p = OpenAIProvider(base_url=server)
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


async def test_first_token_logprobs(server):
    p = OpenAIProvider(base_url=server)
    try:
        completion = await p.complete(MESSAGES, None, GenerationParams(max_tokens=3, top_logprobs=3), CallContext())
    finally:
        await p.aclose()
    assert completion.mode == "text"
    assert completion.first_token_logprobs and len(completion.first_token_logprobs) <= 3
    assert all(v <= 0 for v in completion.first_token_logprobs.values())
