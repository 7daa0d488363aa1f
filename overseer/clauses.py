"""Which spec clauses a judge sees for a sample. A 65k-token spec cannot go whole into every prompt, so larger
specs are ranked by relevance to the sample and the top k are shown; the verdict records which.

Relevance = WordLlama cosine similarity + TF-IDF similarity, each scaled by its best score. WordLlama alone
misses clauses whose wording is rare but decisive ("info hazards" for a bomb recipe); TF-IDF alone misses
paraphrase. On ../shared/data/model_spec_examples.jsonl the sum finds the example's own clause more often than
either (bench/clause_recall.py)."""

from __future__ import annotations

from typing import Any

import numpy as np

from overseer.embeddings import DEFAULT_EMBEDDING, Embedder, make_embedder
from overseer.types import Sample, Spec, SpecClause

CLAUSE_CHARS = 1500  # enough of a clause to place it; the rest of a long clause is mostly examples
QUERY_CHARS = 4000


class ClauseSelector:
    def __init__(self, spec: Spec, max_clauses: int, embedder: Embedder | None = None) -> None:
        self.spec, self.max_clauses = spec, max_clauses
        self._embedder = embedder
        # Clauses with no body of their own (pure section headings) carry no signal to match on.
        self.candidates = [c for c in spec.clauses if c.text.strip()] or list(spec.clauses)
        self._index: tuple[np.ndarray, Any, Any] | None = None

    @property
    def selects(self) -> bool:
        return len(self.spec.clauses) > self.max_clauses

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:  # made on first use: a spec small enough to show whole never loads a model
            self._embedder = make_embedder(DEFAULT_EMBEDDING)
        return self._embedder

    def _build(self) -> tuple[np.ndarray, Any, Any]:
        from sklearn.feature_extraction.text import TfidfVectorizer

        docs = [f"{c.title}. {c.text[:CLAUSE_CHARS]}" for c in self.candidates]
        tfidf = TfidfVectorizer(sublinear_tf=True, stop_words="english")
        return self.embedder.embed(docs), tfidf, tfidf.fit_transform([f"{c.title} {c.text}" for c in self.candidates])

    def rank(self, sample: Sample) -> list[SpecClause]:
        if self._index is None:
            self._index = self._build()
        vectors, tfidf, lexical = self._index
        query = f"{sample.context_text()}\n{sample.response}"[-QUERY_CHARS:]
        semantic = vectors @ self.embedder.embed([query])[0]
        words = (lexical @ tfidf.transform([query]).T).toarray().ravel()
        score = semantic / max(float(semantic.max()), 1e-9) + words / max(float(words.max()), 1e-9)
        return [self.candidates[i] for i in np.argsort(-score, kind="stable")]

    def select(self, sample: Sample) -> list[SpecClause]:
        if not self.selects:
            return list(self.spec.clauses)
        chosen = {c.id for c in self.rank(sample)[: self.max_clauses]}
        return [c for c in self.spec.clauses if c.id in chosen]  # spec order reads better than score order
