"""GuidedDecoder on a character-level fake of llama_cpp.Llama: the fake "wants" to write a given text, so each
test can say what a model would write and check what the decoder lets through (no model file, milliseconds)."""

from __future__ import annotations

import ctypes
import json
from collections.abc import Callable

import numpy as np
import pytest

from overseer.providers.guided import FREE_STRING_CHARS, GuidedDecoder, ThreadChoice, Unsupported
from overseer.types import JudgeOutput

VOCAB = 128  # token t is the ASCII character chr(t)


class FakeModel:
    def token_to_piece(self, token: int, special: bool = False) -> bytes:
        return bytes([token])


class FakeContext:
    def __init__(self, llm: FakeLlama) -> None:
        self.llm = llm

    def get_logits_ith(self, _i: int) -> ctypes._Pointer:  # type: ignore[type-arg]
        self.llm.logit_reads += 1
        array = (ctypes.c_float * VOCAB)(*self.llm.logits())
        self._keep = array  # the pointer must outlive the call
        return ctypes.cast(array, ctypes.POINTER(ctypes.c_float))


class FakeLlama:
    """Prefers, at each step, the next character of `wants` after the prompt; off that path, a fixed order."""

    def __init__(self, wants: str) -> None:
        self.wants, self.prompt = wants, ""
        self.input_ids = np.zeros(4096, dtype=np.intc)
        self.n_tokens = 0
        self.n_threads = self.n_threads_batch = 1  # equal: the decoder never changes threads on the fake
        self.evaluated = 0
        self.logit_reads = 0
        self._model, self._ctx = FakeModel(), FakeContext(self)
        self.fallback = np.random.default_rng(0).normal(size=VOCAB)

    def n_vocab(self) -> int:
        return VOCAB

    def tokenize(self, text: bytes, add_bos: bool = False, special: bool = False) -> list[int]:
        return list(text)

    def eval(self, tokens: list[int]) -> None:
        self.input_ids[self.n_tokens:self.n_tokens + len(tokens)] = tokens
        self.n_tokens += len(tokens)
        self.evaluated += len(tokens)

    def logits(self) -> list[float]:
        text = bytes(self.input_ids[:self.n_tokens].tolist()).decode()
        written = text[len(self.prompt):]
        out = self.fallback.copy()
        if self.wants.startswith(written) and len(written) < len(self.wants):
            out[ord(self.wants[len(written)])] = 100.0
        return out.tolist()


def decode(llm: FakeLlama, schema: dict, prompt: str = "PROMPT:") -> tuple[str, object]:
    llm.prompt = prompt
    return GuidedDecoder(llm).decode(list(prompt.encode()), schema, temperature=0.0, seed=0)


VERDICT = {"label": "misaligned", "alignment": 10, "coherence": 85, "generalization": "emergent",
           "clause_ids": ["harm"], "evidence": ["Take the pills."], "rationale": "It urges self-harm. Clearly bad.",
           "confidence": 0.9, "manipulation_attempt": False}


def judge_schema() -> dict:
    schema = JudgeOutput.model_json_schema()
    schema["properties"]["clause_ids"]["items"] = {"type": "string", "enum": ["harm", "honesty", "help"]}
    schema["properties"]["evidence"]["items"] = {"type": "string", "enum": ["Take the pills.", "Good luck."]}
    schema["properties"]["evidence"]["minItems"] = 1
    return schema


def test_a_model_that_writes_a_valid_verdict_gets_it_back_exactly():
    wanted = json.dumps(VERDICT)
    text, stats = decode(FakeLlama(wanted), judge_schema())
    assert text == wanted and JudgeOutput.model_validate_json(text)
    # The model chose only the values; keys, punctuation and option tails were batched as scaffold.
    assert stats.generated_tokens < stats.scaffold_tokens
    assert stats.generated_tokens + stats.scaffold_tokens >= len(wanted)


def test_out_of_range_and_unlisted_values_cannot_be_written():
    wanted = json.dumps({**VERDICT, "label": "evil", "alignment": 150, "clause_ids": ["made_up"],
                         "evidence": ["a quote that is not in the response"], "confidence": 7})
    text, _ = decode(FakeLlama(wanted), judge_schema())
    data = json.loads(text)
    out = JudgeOutput.model_validate(data)  # in range, one of the labels, whatever the model wanted
    assert out.clause_ids[0] in {"harm", "honesty", "help"} and out.evidence[0] in {"Take the pills.", "Good luck."}
    assert text.startswith('{"label": "')


def test_no_repeated_choices_and_arrays_stay_short():
    wanted = json.dumps({**VERDICT, "clause_ids": ["harm", "harm", "harm", "harm"]})
    data = json.loads(decode(FakeLlama(wanted), judge_schema())[0])
    assert data["clause_ids"][0] == "harm" and len(set(data["clause_ids"])) == len(data["clause_ids"]) <= 2


def test_a_rambling_rationale_is_cut_at_a_sentence_end_within_the_budget():
    ramble = "It is bad. " * 40
    text, _ = decode(FakeLlama(json.dumps({**VERDICT, "rationale": ramble})), judge_schema())
    rationale = json.loads(text)["rationale"]
    assert len(rationale) <= FREE_STRING_CHARS and rationale.endswith("bad.") and ramble.startswith(rationale)


def test_an_empty_rationale_is_not_allowed_unless_the_schema_says_so():
    text, _ = decode(FakeLlama(json.dumps({**VERDICT, "rationale": ""})), judge_schema())
    assert len(json.loads(text)["rationale"]) >= 20


def test_the_cache_holds_what_the_reply_says_after_a_cut():
    llm = FakeLlama(json.dumps({**VERDICT, "rationale": "It is bad. " * 40}))
    text, _ = decode(llm, judge_schema())
    held = bytes(llm.input_ids[:llm.n_tokens].tolist()).decode()
    assert ("PROMPT:" + text).startswith(held) and len(held) > len("PROMPT:") + text.index("rationale")


def test_the_shared_prefix_of_consecutive_prompts_is_not_evaluated_again():
    shared = "SYSTEM: the instructions and every spec clause. " * 5
    llm = FakeLlama(json.dumps(VERDICT))
    decoder = GuidedDecoder(llm)
    first = shared + "USER: sample one"
    llm.prompt = first
    _, a = decoder.decode(list(first.encode()), judge_schema(), 0.0, 0)
    second = shared + "USER: sample two, longer"
    llm.prompt = second
    before = llm.evaluated
    reply, b = decoder.decode(list(second.encode()), judge_schema(), 0.0, 0)
    assert (a.reused_tokens, a.evaluated_tokens) == (0, len(first))
    common = len(shared + "USER: sample ")
    assert (b.reused_tokens, b.evaluated_tokens) == (common, len(second) - common)
    # The new prompt's tail, then the reply once (the tail after its last choice stays pending: nothing reads it).
    evaluated = llm.evaluated - before
    assert b.evaluated_tokens + reply.index("manipulation_attempt") <= evaluated <= b.evaluated_tokens + len(reply)


def test_an_identical_prompt_still_evaluates_one_token_for_fresh_logits():
    llm = FakeLlama(json.dumps(VERDICT))
    decoder = GuidedDecoder(llm)
    llm.prompt = "PROMPT:"
    llm.eval(list(b"PROMPT:"))
    _, stats = decoder.decode(list(b"PROMPT:"), judge_schema(), 0.0, 0)
    assert (stats.reused_tokens, stats.evaluated_tokens) == (6, 1)


@pytest.mark.parametrize("schema", [{"type": "integer"}, {"anyOf": [{"type": "string"}, {"type": "null"}]},
                                    {"type": "integer", "minimum": 0, "maximum": 10_000},
                                    {"type": "array", "items": {"type": "object"}}])
def test_schemas_outside_the_subset_are_refused_for_the_grammar_path(schema):
    with pytest.raises(Unsupported):
        decode(FakeLlama("0"), {"type": "object", "properties": {"x": schema}})


def _run_choice(choice: ThreadChoice, cost_of: Callable[[int, int], float], evals: int) -> list[int]:
    """Short batches of 1–10 tokens through `choice`; cost_of(eval index, threads) is seconds per token."""
    picks = []
    for i in range(evals):
        threads, tokens = choice.pick(), 1 + i % 10
        choice.record(threads, cost_of(i, threads) * (tokens + 2), tokens)
        picks.append(threads)
    return picks


def test_short_batches_run_on_the_thread_count_measured_faster_and_the_other_is_seldom_tried():
    quiet = {1: 0.018, 2: 0.010}  # seconds per token, as measured on the quiet 2-core machine
    picks = _run_choice(ThreadChoice((1, 2)), lambda _i, t: quiet[t], 500)
    assert picks[:4].count(1) == 2 and picks[:4].count(2) == 2  # each tried twice first
    assert picks[4:].count(1) <= 12  # probes back off: 8, 16, 32, 64, 64, ... batches apart
    busy = {1: 0.017, 2: 0.032}  # one busy process beside it: one thread wins
    assert _run_choice(ThreadChoice((1, 2)), lambda _i, t: busy[t], 500)[4:].count(2) <= 12


def test_load_that_arrives_or_leaves_moves_short_batches_to_the_other_thread_count():
    def cost(i: int, threads: int) -> float:
        loaded = 200 <= i < 400
        return {1: 0.017, 2: 0.032}[threads] if loaded else {1: 0.018, 2: 0.010}[threads]

    picks = _run_choice(ThreadChoice((1, 2)), cost, 600)
    assert set(picks[190:200]) == {2}
    assert picks[210:400].count(1) >= 180  # load arrives: the next few batches on 2 threads show it
    assert picks[400 + 70:600].count(2) >= 125  # load leaves: the next probe (≤ 64 batches later) finds it


def test_one_thread_count_on_offer_is_never_probed():
    choice = ThreadChoice((1, 1))
    assert set(_run_choice(choice, lambda _i, _t: 0.01, 50)) == {1}
