"""Offline text embeddings. Default: WordLlama (weights inside its wheel, numpy only, thousands of docs/s).

WordLlama 0.4.0.post1 looks for its tokenizer under `wordllama/tokenizer/` but the wheel ships `tokenizers/`;
pointing `cache_dir` at the package directory makes its cache lookup find the shipped files, and
`disable_download=True` guarantees it never reaches for the network."""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Any

import numpy as np

from overseer.errors import ConfigError


@functools.lru_cache(maxsize=1)
def wordllama_model(dim: int = 256) -> Any:
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


def embed(texts: list[str]) -> np.ndarray:
    """Unit-normalised embeddings, one row per text."""
    if not texts:
        return np.zeros((0, 256), dtype=np.float32)
    vectors = np.asarray(wordllama_model().embed(texts, norm=True), dtype=np.float32)
    return vectors
