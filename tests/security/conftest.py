"""Shared pieces of the security tests: the real Judge and judge graph, driven by scripted judges that are
written to be fooled — each test fails if the defence it covers is removed."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from security_helpers import KEY  # type: ignore[import-not-found]

from overseer.clauses import ClauseSelector
from overseer.judging.graph import RunContext
from overseer.judging.judge import Judge
from overseer.providers.retry import RetryPolicy
from overseer.providers.scripted import ScriptedProvider
from overseer.run import judge_samples
from overseer.spec import load_spec
from overseer.store.runs import RunStore
from overseer.templates import load_shipped
from overseer.types import Sample, SampleResult


@pytest.fixture(scope="session")
def spec():
    return load_spec(None)


@pytest.fixture
def make_judge(spec) -> Callable[..., Judge]:
    def make(provider: ScriptedProvider, **kw: Any) -> Judge:
        return Judge(judge_id="j", provider=provider, prompt=load_shipped("v1"), spec=spec, delimiter_key=KEY,
                     policy=RetryPolicy(max_attempts=2, initial_wait=0.01, max_wait=0.02), **kw)
    return make


@pytest.fixture
def run_graph(tmp_path: Path, spec, make_judge) -> Callable[..., list[SampleResult]]:
    """Judge samples through the real graph (retrieve → judge → aggregate → record | queue_review)."""
    def run(provider: ScriptedProvider, samples: list[Sample], memory: Any = None) -> list[SampleResult]:
        store = RunStore(tmp_path / f"runs-{id(provider)}.sqlite")
        run_id = store.create_run(input_path=None, input_sha256=None, output_path=None, config={})
        ctx = RunContext(run_id=run_id, samples={s.id: s for s in samples}, judges={"j": make_judge(provider)},
                         selector=ClauseSelector(spec, 16), store=store, memory=memory)
        results: list[SampleResult] = []
        try:
            asyncio.run(judge_samples(ctx, [s.id for s in samples], 4, results.append))
        finally:
            store.close()
        return sorted(results, key=lambda r: r.sample_id)
    return run
