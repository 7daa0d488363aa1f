"""The one embedder registry: clause selection (clauses.py) and the edge-case memory both get their embedders here.

    wordllama                      default: weights inside its wheel, numpy only, never touches the network
    onnx-minilm                    chromadb's all-MiniLM-L6-v2 (downloads its model on first use)
    openai:MODEL                   e.g. openai:text-embedding-3-small (OPENAI_API_KEY, or OPENAI_BASE_URL)
    sentence-transformers:MODEL    any local sentence-transformers model (pip install sentence-transformers)

More kinds plug in with `register_embedder`. Importing this module costs numpy only: every backend imports its
library when an embedder is made, so `overseer --help` never pays for chromadb, openai or wordllama.

WordLlama 0.4.0.post1 looks for its tokenizer under `wordllama/tokenizer/` but the wheel ships `tokenizers/`;
pointing `cache_dir` at the package directory makes its cache lookup find the shipped files, and
`disable_download=True` guarantees it never reaches for the network."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from overseer.errors import ConfigError

DEFAULT_EMBEDDING = "wordllama"
WORDLLAMA_DIM = 256


class Embedder(Protocol):
    name: str

    def embed(self, texts: list[str]) -> np.ndarray:
        """One unit-length row per text."""
        ...


@dataclass(frozen=True)
class EmbedderKind:
    factory: Callable[[str], Embedder]  # gets the MODEL part of `kind:MODEL` ("" when the name has none)
    needs_model: bool
    usage: str  # how the name is written, for the unknown-name error


_REGISTRY: dict[str, EmbedderKind] = {}


def register_embedder(kind: str, factory: Callable[[str], Embedder], *, needs_model: bool = False) -> None:
    """Make `kind` (or `kind:MODEL` when needs_model) a valid embedding name everywhere overseer takes one."""
    _REGISTRY[kind] = EmbedderKind(factory, needs_model, f"{kind}:MODEL" if needs_model else kind)


def make_embedder(name: str = DEFAULT_EMBEDDING) -> Embedder:
    kind, _, model = name.partition(":")
    found = _REGISTRY.get(kind)
    if found is None or (found.needs_model and not model) or (model and not found.needs_model):
        usages = ", ".join(k.usage for k in _REGISTRY.values())
        raise ConfigError(f"unknown embedding {name!r}: use one of {usages}")
    return found.factory(model)


def unit_rows(vectors: Any) -> np.ndarray:
    array = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    return array / np.where(norms == 0, 1, norms)


# --- wordllama: the default ----------------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def wordllama_model(dim: int = WORDLLAMA_DIM) -> Any:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        import wordllama
        from wordllama import WordLlama
    except ImportError as exc:
        raise ConfigError("wordllama is not installed: pip install wordllama") from exc
    finally:
        # wordllama calls logging.basicConfig(level=INFO) on import, which would print every HTTP request the
        # SDKs log at INFO into the user's terminal; put the root logger back as it was.
        root.handlers[:], root.level = handlers, level
    package_dir = Path(wordllama.__file__).parent
    try:
        return WordLlama.load(dim=dim, cache_dir=package_dir, disable_download=True)
    except FileNotFoundError as exc:
        raise ConfigError(f"WordLlama weights not found in {package_dir}: {exc}") from exc


class WordLlamaEmbedder:
    name = "wordllama"

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, WORDLLAMA_DIM), dtype=np.float32)
        return np.asarray(wordllama_model().embed(texts, norm=True), dtype=np.float32)


def embed(texts: list[str]) -> np.ndarray:
    """Unit-normalised default (WordLlama) embeddings, one row per text."""
    return WordLlamaEmbedder().embed(texts)


# --- the pluggable others ------------------------------------------------------------------------------------
class OnnxMiniLMEmbedder:
    name = "onnx-minilm"

    def __init__(self) -> None:
        from chromadb.utils.embedding_functions import DefaultEmbeddingFunction

        self._fn = DefaultEmbeddingFunction()

    def embed(self, texts: list[str]) -> np.ndarray:
        return unit_rows(self._fn(texts))


class OpenAIEmbedder:
    """OpenAI's embeddings endpoint (or a compatible server at OPENAI_BASE_URL). The SDK's own retries are off:
    overseer.providers.retry is the one retry layer, as for the chat backends."""

    def __init__(self, model: str, *, policy: Any = None, timeout: float = 60.0) -> None:
        import openai

        from overseer.providers.retry import RetryPolicy

        self.name, self._model, self._timeout = f"openai:{model}", model, timeout
        self._policy = policy or RetryPolicy()
        self._client = openai.OpenAI(max_retries=0, timeout=timeout)
        self.where = f"the embeddings endpoint at {self._client.base_url}"

    def _once(self, texts: list[str]) -> np.ndarray:
        import openai

        from overseer.providers.wire import sdk_errors

        with sdk_errors(openai, openai.OpenAIError, where=self.where, timeout=self._timeout,
                        key_env="OPENAI_API_KEY"):
            response = self._client.embeddings.create(model=self._model, input=texts)
        return unit_rows([item.embedding for item in response.data])

    def embed(self, texts: list[str]) -> np.ndarray:
        from overseer.providers.retry import with_retries_sync

        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        return with_retries_sync(lambda: self._once(texts), self._policy)[0]


class SentenceTransformerEmbedder:
    def __init__(self, model: str) -> None:
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise ConfigError("embedding sentence-transformers:* needs `pip install sentence-transformers`") from exc
        self.name, self._model = f"sentence-transformers:{model}", SentenceTransformer(model)

    def embed(self, texts: list[str]) -> np.ndarray:
        return unit_rows(self._model.encode(texts, normalize_embeddings=True))


register_embedder("wordllama", lambda _: WordLlamaEmbedder())
register_embedder("onnx-minilm", lambda _: OnnxMiniLMEmbedder())
register_embedder("openai", OpenAIEmbedder, needs_model=True)
register_embedder("sentence-transformers", SentenceTransformerEmbedder, needs_model=True)
