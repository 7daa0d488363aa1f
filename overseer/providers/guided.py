"""Schema-guided decoding for the embedded model: the JSON around the values (braces, keys, commas) is written by
us and read by llama.cpp as prompt — a batch, several times faster per token than generating it — and the model
only makes the choices: which enum value, which number, which quote, when a free string ends.

Why not a GBNF grammar: llama-cpp-python generates every character a grammar forces one forward pass at a time
(the keys and punctuation of a verdict are ~45 tokens of 100), checks the grammar against the whole 49k-token
vocabulary at each step, and needed the 0–100 ranges spelled out as 101-way alternations. Here a closed choice
(enum, bounded integer, boolean, quote list) walks a token trie of its options, comparing the logits of the
allowed next tokens only; once one option is left, its remaining tokens are forced and batched like the keys.
Greedy at temperature 0 (what the judge uses), sampled from the allowed tokens otherwise.

Supported schemas: objects (properties in order; `$ref` into `$defs`), string/number/boolean enums and consts,
`anyOf` of closed choices (pydantic's `X | None`), bounded integers and numbers, booleans, free strings (bounded
in length) and arrays of those. Anything else raises `Unsupported`, and the provider uses the grammar path."""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

MAX_ENUM_INTEGERS = 200  # wider integer ranges are not enumerated (Unsupported: the grammar path takes them)
NUMBER_STEPS = 10  # a bounded `number` is offered in tenths of its range (a confidence of 0.0, 0.1, … 1.0)
ARRAY_ITEMS = 2  # items per array at most: SmolLM2 fills longer arrays with repeats
FREE_STRING_CHARS = 160  # a free string (the rationale) at most: two short sentences, ~35 tokens
# ...and at least, unless the schema says otherwise: greedy SmolLM2 closes a rationale at once when allowed to.
MIN_FREE_STRING_CHARS = 20
SENTENCE_ENDS = (". ", "! ", "? ")
# Batches shorter than this (scaffold, option tails, one chosen token) run on the thread count that has been
# measured faster for them (ThreadChoice); a long prompt keeps llama-cpp-python's batch threads.
SMALL_BATCH = 32


class Unsupported(ValueError):
    """The schema uses a construct this decoder does not handle."""


@dataclass
class DecodeStats:
    prompt_tokens: int = 0  # the chat prompt's length
    reused_tokens: int = 0  # of which already in the KV cache from the previous call (a shared prefix)
    evaluated_tokens: int = 0  # of which evaluated now
    generated_tokens: int = 0  # tokens the model chose, one forward pass each
    scaffold_tokens: int = 0  # JSON punctuation, keys and forced option tails, evaluated in batches


@dataclass
class _Trie:
    children: dict[int, _Trie] = field(default_factory=dict)
    option: str | None = None  # the option that ends here


class ThreadChoice:
    """How many threads a short batch runs on, chosen by measuring them as the job runs. llama.cpp syncs its
    threads at every op, so on a few-token batch the answer depends on what else the cores are doing: on the
    quiet 2-core machine two threads did a sample's short batches in half the time of one (4.2 s against 8.6 s
    for four samples, bench/local.py), with helpers running beside it one thread was up to 17 times faster
    (20 batches of 8 tokens: 5.8 s against 100.8 s). Each option is tried twice; then the faster one runs. Load
    that arrives shows in its own measurements at once; the other option is tried again now and then, less often
    each time it loses (every 8, 16, … up to 64 batches, a few samples), so load that leaves is noticed too and a
    losing probe costs little."""

    def __init__(self, options: tuple[int, ...]) -> None:
        self.options = tuple(dict.fromkeys(options))
        self.cost: dict[int, float] = {}  # seconds per (token + 2): a short batch's fixed cost counts too
        self.tries: dict[int, int] = dict.fromkeys(self.options, 0)
        self.since_probe, self.probe_every = 0, 8

    def best(self) -> int:
        return min(self.cost, key=self.cost.__getitem__)

    def pick(self) -> int:
        if len(self.options) == 1:
            return self.options[0]
        for option in self.options:
            if self.tries[option] < 2:
                return option
        self.since_probe += 1
        if self.since_probe >= self.probe_every:
            self.since_probe = 0
            return next(o for o in self.options if o != self.best())  # only two options are ever offered
        return self.best()

    def record(self, option: int, seconds: float, tokens: int) -> None:
        cost = seconds / (tokens + 2)
        leader = self.best() if len(self.cost) == len(self.options) else None
        self.tries[option] += 1
        known = self.cost.get(option)
        if leader is not None and option != leader:
            # A probe: its last figure is stale, so the new one replaces it. A winner takes over (and is measured
            # at once, so a lucky probe is corrected); a loser waits longer for its next try.
            self.cost[option] = cost
            self.probe_every = 8 if self.best() == option else min(self.probe_every * 2, 64)
        else:
            self.cost[option] = cost if known is None else 0.7 * known + 0.3 * cost


class GuidedDecoder:
    """One `decode` per call on a loaded `llama_cpp.Llama`. Keeps the KV cache between calls and reuses the
    longest common prefix of the new prompt with what the cache holds, as llama-cpp's own `generate` does."""

    def __init__(self, llm: Any) -> None:
        self.llm = llm
        self.n_vocab = llm.n_vocab()
        self._bytes = [llm._model.token_to_piece(t, special=False) for t in range(self.n_vocab)]
        bad = set(b'"\\') | set(range(0x20)) | {0x7F}
        self._plain = np.array([bool(b) and not (set(b) & bad) for b in self._bytes])
        self._closing = np.array([b.startswith(b'"') for b in self._bytes])
        self.short_threads = ThreadChoice((llm.n_threads, llm.n_threads_batch))
        self._threads_set = (llm.n_threads, llm.n_threads_batch)  # what the context runs on now

    # --- the call --------------------------------------------------------------------------------------------
    def decode(self, prompt: list[int], schema: dict[str, Any], temperature: float, seed: int | None,
               ) -> tuple[str, DecodeStats]:
        self.schema = schema
        self.stats = DecodeStats(prompt_tokens=len(prompt))
        self.rng = np.random.default_rng(seed)
        self.temperature = temperature
        self.out: list[str] = []
        # At least one token is evaluated: its logits pick the first value.
        common = min(common_prefix(self.llm.input_ids[:self.llm.n_tokens], prompt), len(prompt) - 1)
        self.llm.n_tokens = common  # llama-cpp's eval drops the cache beyond n_tokens before decoding
        self.stats.reused_tokens = common
        self.stats.evaluated_tokens = len(prompt) - common
        self.pending = prompt[common:]
        # The reply's last tokens stay unevaluated: the next prompt (another sample, or this conversation with
        # the reply re-tokenized whole) shares the system prompt with the cache, not the reply's exact tokens.
        self._value(schema, follow="")
        return "".join(self.out), self.stats

    # --- the schema walk -------------------------------------------------------------------------------------
    def _value(self, node: dict[str, Any], follow: str) -> None:
        node = self._resolve(node)
        if "const" in node:
            self._literal(json.dumps(node["const"]))
        elif "enum" in node:
            self._choose([json.dumps(v, ensure_ascii=False) for v in node["enum"]], follow)
        elif "anyOf" in node:  # pydantic's `X | None`: a closed choice when every branch is one
            self._choose([o for branch in node["anyOf"] for o in self._closed(branch)], follow)
        elif node.get("type") == "object":
            self._object(node, follow)
        elif node.get("type") == "array":
            self._array(node, follow)
        elif node.get("type") == "boolean":
            self._choose(["true", "false"], follow)
        elif node.get("type") in ("integer", "number"):
            self._choose(_numbers(node), follow)
        elif node.get("type") == "string" and not {"pattern", "format"} & node.keys():
            high = min(node.get("maxLength", FREE_STRING_CHARS), FREE_STRING_CHARS)
            self._literal('"')
            self._free_string(min(node.get("minLength", MIN_FREE_STRING_CHARS), high), high)
            self._literal('"')
        else:
            raise Unsupported(f"schema node {json.dumps(node)[:120]}")

    def _closed(self, node: dict[str, Any]) -> list[str]:
        """The JSON texts a closed schema node allows (an enum, a const, null, a boolean, a bounded number)."""
        node = self._resolve(node)
        if "const" in node:
            return [json.dumps(node["const"], ensure_ascii=False)]
        if "enum" in node:
            return [json.dumps(v, ensure_ascii=False) for v in node["enum"]]
        if node.get("type") == "null":
            return ["null"]
        if node.get("type") == "boolean":
            return ["true", "false"]
        if node.get("type") in ("integer", "number"):
            return _numbers(node)
        raise Unsupported(f"anyOf branch {json.dumps(node)[:120]}")

    def _resolve(self, node: dict[str, Any]) -> dict[str, Any]:
        ref = node.get("$ref")
        if ref is None:
            return node
        prefix = "#/$defs/"
        if not ref.startswith(prefix) or ref[len(prefix):] not in self.schema.get("$defs", {}):
            raise Unsupported(f"$ref {ref}")
        return self._resolve(self.schema["$defs"][ref[len(prefix):]])

    def _object(self, node: dict[str, Any], follow: str) -> None:
        props = list(node.get("properties", {}).items())
        self._literal("{")
        for i, (key, sub) in enumerate(props):
            self._literal(("" if i == 0 else ", ") + json.dumps(key) + ": ")
            self._value(sub, follow=", " if i + 1 < len(props) else "}")
        self._literal("}")

    def _array(self, node: dict[str, Any], follow: str) -> None:
        items = self._resolve(node.get("items") or {"type": "string"})
        if "enum" not in items and items.get("type") != "string":
            raise Unsupported(f"array of {json.dumps(items)[:80]}")
        low = int(node.get("minItems", 0))
        high = min(int(node.get("maxItems", ARRAY_ITEMS)), max(ARRAY_ITEMS, low))
        options = [json.dumps(v, ensure_ascii=False) for v in items["enum"]] if "enum" in items else None
        if options is not None:
            high = min(high, len(options))
        self._literal("[")
        for i in range(high):
            if i >= low and not self._another(i, options or ['"']):
                break
            if i:
                self._literal(", ")
            if options is not None:  # a repeated choice adds nothing: offer what is left
                options.remove(self._choose(options, follow=", " if i + 1 < high else "]"))
            else:
                self._value(items, follow=", " if i + 1 < high else "]")
        self._literal("]")

    def _another(self, i: int, item_starts: list[str]) -> bool:
        """Whether the model puts another item in the array (a `,` or an item's first token) or closes it."""
        close = self._tokenize("]")[:1]
        more = self._tokenize(",")[:1] if i else list({self._tokenize(o)[0] for o in item_starts})
        token = self._pick(self._eval(), np.array(more + close))
        self.stats.generated_tokens += 1
        return token not in close

    # --- the primitives --------------------------------------------------------------------------------------
    def _literal(self, text: str) -> None:
        self.out.append(text)
        tokens = self._tokenize(text)
        self.pending.extend(tokens)
        self.stats.scaffold_tokens += len(tokens)

    def _tokenize(self, text: str) -> list[int]:
        return list(self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def _eval(self) -> np.ndarray:
        """The logits after everything written so far (a decision that wrote nothing reuses the last ones)."""
        if self.pending:
            tokens = len(self.pending)
            short = self.short_threads.pick() if tokens < SMALL_BATCH else None
            self._threads(short)
            started = time.perf_counter()
            self.llm.eval(self.pending)
            if short is not None:
                self.short_threads.record(short, time.perf_counter() - started, tokens)
            self.pending = []
        return np.ctypeslib.as_array(self.llm._ctx.get_logits_ith(-1), shape=(self.n_vocab,))

    def _threads(self, short: int | None) -> None:
        """`short` threads for a short batch (one token included), or llama-cpp-python's own for a long one."""
        wanted = (short, short) if short is not None else (self.llm.n_threads, self.llm.n_threads_batch)
        if wanted != self._threads_set:
            import llama_cpp

            llama_cpp.llama_set_n_threads(self.llm._ctx.ctx, *wanted)
            self._threads_set = wanted

    def _pick(self, logits: np.ndarray, allowed: np.ndarray) -> int:
        """The allowed token the model prefers (greedy), or one sampled from the allowed tokens."""
        if self.temperature <= 0:
            return int(allowed[np.argmax(logits[allowed])])
        scaled = logits[allowed].astype(np.float64) / self.temperature
        p = np.exp(scaled - scaled.max())
        return int(self.rng.choice(allowed, p=p / p.sum()))

    def _choose(self, options: list[str], follow: str) -> str:
        """One of `options`, written to the output. `follow` is the text after the value: its first token is how
        the model says that an option which is a prefix of another (`1` of `10`) is finished."""
        root = _Trie()
        for option in dict.fromkeys(options):
            node = root
            for token in self._tokenize(option):
                node = node.children.setdefault(token, _Trie())
            node.option = option
        end = self._tokenize(follow)[:1] if follow else []
        node = root
        while node.children:
            if node.option is None and len(node.children) == 1:  # forced: batched with what follows
                token = next(iter(node.children))
                self.stats.scaffold_tokens += 1
            else:
                allowed = list(node.children) + (end if node.option is not None else [])
                token = self._pick(self._eval(), np.array(allowed))
                self.stats.generated_tokens += 1
                if token not in node.children:
                    break
            self.pending.append(token)
            node = node.children[token]
        if node.option is None:  # cannot happen: every leaf of the trie ends an option
            raise Unsupported(f"no option ends at the chosen tokens of {options[:3]}")
        self.out.append(node.option)
        return node.option

    def _free_string(self, min_chars: int, max_chars: int) -> None:
        """Text of min_chars to max_chars, ended by the model (a token starting with `"`) or by the budget. A
        string cut by the budget is taken back to its last sentence end, when it has one."""
        plain, closing = np.flatnonzero(self._plain), np.flatnonzero(self._plain | self._closing)
        start = self.llm.n_tokens + len(self.pending)  # where the string's first token goes in the cache
        text = b""
        while len(text) < max_chars:
            token = self._pick(self._eval(), closing if len(text) >= min_chars else plain)
            self.stats.generated_tokens += 1
            if self._closing[token]:
                break
            text += self._bytes[token]
            self.pending.append(token)
        decoded = text.decode("utf-8", errors="ignore")
        if len(text) >= max_chars:
            decoded = decoded[:max_chars]
            cut = max(decoded.rfind(end) for end in SENTENCE_ENDS)
            decoded = decoded[:cut + 1] if cut > 0 else decoded
        if decoded.encode("utf-8") != text:
            # What the cache holds must be what the reply says: the string's tokens are replaced by the kept text's.
            self.llm.n_tokens = start
            self.pending = self._tokenize(decoded)
        self.out.append(json.dumps(decoded, ensure_ascii=False)[1:-1])


def common_prefix(a: Any, b: Any) -> int:
    """How many leading tokens two token sequences share."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def _numbers(node: dict[str, Any]) -> list[str]:
    low, high = node.get("minimum"), node.get("maximum")
    if low is None or high is None or not (math.isfinite(low) and math.isfinite(high)):
        raise Unsupported(f"unbounded {node.get('type')}")
    if node["type"] == "integer":
        if high - low > MAX_ENUM_INTEGERS:
            raise Unsupported(f"integer range {low}..{high}")
        return [str(v) for v in range(math.ceil(low), math.floor(high) + 1)]
    return [json.dumps(round(low + (high - low) * i / NUMBER_STEPS, 6)) for i in range(NUMBER_STEPS + 1)]
