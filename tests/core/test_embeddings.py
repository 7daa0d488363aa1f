"""The embedder registry: one place that names embeddings, light to import, used by clause selection and memory."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from overseer import embeddings
from overseer.clauses import ClauseSelector
from overseer.errors import ConfigError
from overseer.types import Sample, Spec, SpecClause

HEAVY = ("chromadb", "openai", "sentence_transformers", "wordllama", "tenacity")


def test_importing_the_registry_loads_no_embedding_library() -> None:
    script = (f"import json, sys; import overseer.embeddings; print(json.dumps([m for m in {list(HEAVY)!r} "
              "if m in sys.modules]))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    assert json.loads(done.stdout) == []


@pytest.mark.parametrize("name", ["nope", "openai", "wordllama:big", "sentence-transformers:"])
def test_unknown_or_malformed_names_list_the_valid_ones(name: str) -> None:
    with pytest.raises(ConfigError, match=f"unknown embedding {name!r}: use one of wordllama, onnx-minilm, "
                                          "openai:MODEL, sentence-transformers:MODEL"):
        embeddings.make_embedder(name)


class Letters:
    """Counts the letters a-z: enough to tell texts apart, and observable when used."""

    name = "letters"

    def __init__(self) -> None:
        self.calls = 0

    def embed(self, texts: list[str]) -> np.ndarray:
        self.calls += 1
        rows = np.array([[t.lower().count(chr(97 + i)) for i in range(26)] for t in texts], dtype=np.float32)
        return embeddings.unit_rows(rows)


def test_a_registered_kind_is_made_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    made = Letters()
    monkeypatch.setitem(embeddings._REGISTRY, "letters", embeddings.EmbedderKind(lambda _: made, False, "letters"))
    assert embeddings.make_embedder("letters") is made


def test_clause_selection_uses_the_embedder_it_is_given() -> None:
    clauses = [SpecClause(id=f"c{i}", title=title, level=1, path=title, text=text) for i, (title, text) in
               enumerate([("zzz", "zebra zone zigzag"), ("bbb", "bubbles bob baby"), ("kkk", "kayak knock kick")])]
    letters = Letters()
    selector = ClauseSelector(Spec(name="t", clauses=clauses, hash="h", source="test"), 1, embedder=letters)
    chosen = selector.select(Sample(id="s", prompt="", response="a baby blows bubbles"))
    assert [c.id for c in chosen] == ["c1"] and letters.calls == 2  # clauses once, then the query


def test_the_default_embedder_is_wordllama_and_unit_length() -> None:
    vectors = embeddings.make_embedder().embed(["one edge case", "another"])
    assert vectors.shape == (2, embeddings.WORDLLAMA_DIM)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert embeddings.embed([]).shape == (0, embeddings.WORDLLAMA_DIM)
