"""Embeddings for the edge-case memory, chosen by name. The store records which one built it and refuses to mix.

    wordllama                      default: weights inside its wheel, numpy only, never touches the network
    onnx-minilm                    chromadb's all-MiniLM-L6-v2 (downloads its model on first use)
    openai:MODEL                   e.g. openai:text-embedding-3-small (needs OPENAI_API_KEY or a base URL)
    sentence-transformers:MODEL    any local sentence-transformers model (pip install sentence-transformers)
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from overseer.errors import ConfigError

DEFAULT_EMBEDDING = "wordllama"


class Embedder(Protocol):
    name: str

    def embed(self, texts: list[str]) -> np.ndarray:
        """One unit-length row per text."""
        ...


def _unit(vectors: Any) -> np.ndarray:
    array = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    return array / np.where(norms == 0, 1, norms)


class WordLlamaEmbedder:
    name = "wordllama"

    def embed(self, texts: list[str]) -> np.ndarray:
        from overseer.embeddings import embed

        return embed(texts)


class OnnxMiniLMEmbedder:
    name = "onnx-minilm"

    def __init__(self) -> None:
        from chromadb.utils.embedding_functions import DefaultEmbeddingFunction

        self._fn = DefaultEmbeddingFunction()

    def embed(self, texts: list[str]) -> np.ndarray:
        return _unit(self._fn(texts))


class OpenAIEmbedder:
    def __init__(self, model: str) -> None:
        import openai

        self.name, self._model = f"openai:{model}", model
        self._client = openai.OpenAI(max_retries=3)

    def embed(self, texts: list[str]) -> np.ndarray:
        response = self._client.embeddings.create(model=self._model, input=texts)
        return _unit([item.embedding for item in response.data])


class SentenceTransformerEmbedder:
    def __init__(self, model: str) -> None:
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise ConfigError("embedding sentence-transformers:* needs `pip install sentence-transformers`") from exc
        self.name, self._model = f"sentence-transformers:{model}", SentenceTransformer(model)

    def embed(self, texts: list[str]) -> np.ndarray:
        return _unit(self._model.encode(texts, normalize_embeddings=True))


def make_embedder(name: str = DEFAULT_EMBEDDING) -> Embedder:
    kind, _, model = name.partition(":")
    if kind == "wordllama":
        return WordLlamaEmbedder()
    if kind == "onnx-minilm":
        return OnnxMiniLMEmbedder()
    if kind == "openai" and model:
        return OpenAIEmbedder(model)
    if kind == "sentence-transformers" and model:
        return SentenceTransformerEmbedder(model)
    raise ConfigError(f"unknown embedding {name!r}: use wordllama, onnx-minilm, openai:MODEL or "
                      "sentence-transformers:MODEL")
