"""overseer as an Inspect AI scorer (the `inspect` extra):

    from overseer.inspect_scorer import spec_judge
    Task(dataset=..., solver=generate(), scorer=spec_judge(spec="emergent_misalignment", backend="anthropic"))

    inspect score LOG.eval --scorer overseer/spec_judge -S task=TASK -S backend=anthropic

Each sample goes through the same judge graph as `overseer judge` (the judges from `build_judges`, the workspace's
edge-case memory, the same aggregate), turned into an overseer sample by the same `to_sample` as the log reader,
so a sample already judged with `overseer judge LOG` in this workspace is a cache hit with the same verdict. The
scorer's results are recorded as a run of their own in the run store (`overseer runs list`), so its review queue
and exports work as for any run."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Any

from inspect_ai.scorer import Score, Scorer, Target, mean, scorer, stderr
from inspect_ai.solver import TaskState

if TYPE_CHECKING:
    from overseer.config import Settings
    from overseer.judging.judge import Judge
    from overseer.samples_io import FieldMap
    from overseer.store.runs import RunStore
    from overseer.types import Sample, SampleResult

# Inspect imports this module (the entry point) whenever it loads extensions, in every eval a user runs: the judge
# stack (langgraph, the stores) is imported only once a spec_judge scorer is built.


def active_task() -> str | None:
    """The task of the sample being scored in an eval. Inspect tells a scorer only through a private accessor
    (pinned by the extra's version range); without it the scorer needs `task=` as under `inspect score`."""
    try:
        from inspect_ai.log._samples import sample_active
    except ImportError:
        return None
    active = sample_active()
    return active.task if active is not None else None


class ScoringSession:
    """One scorer's state: the run it records into, its judges and memory, created on the first sample (inside
    Inspect's event loop, which the judges' clients and the call gate belong to)."""

    def __init__(self, settings: Settings, spec: str | None, fields: FieldMap, task: str | None) -> None:
        from overseer.providers import choose_backend, is_scripted
        from overseer.spec import load_spec

        self.settings, self.fields, self.task = settings, fields, task
        self.spec_name = spec
        self.spec = load_spec(spec)
        self.store: RunStore | None = None
        self.run_id: str | None = None
        self.judges: dict[str, Judge] | None = None
        self.memory: Any = None
        self.gate: asyncio.Semaphore | None = None
        self.scripted = any(is_scripted(b) for b in settings.judges or [choose_backend(settings)])
        self.count = 0

    def sample(self, state: TaskState, target: Target) -> Sample:
        from overseer.errors import ConfigError
        from overseer.inspect_logs import to_sample

        task = self.task or active_task()
        if not task:
            raise ConfigError("spec_judge: the task name is unknown outside an eval; pass it (inspect score LOG "
                              "--scorer overseer/spec_judge -S task=TASK): sample ids are TASK:SAMPLE_ID:EPOCH")
        self.count += 1
        return to_sample(task=task, sample_id=state.sample_id, epoch=state.epoch, input=state.input,
                         response=state.output.completion, model=str(state.model), metadata=dict(state.metadata),
                         scores={k: v.value for k, v in (state.scores or {}).items()}, target=target.target,
                         fields=self.fields, path=f"inspect:{task}", line=self.count)

    def _open(self) -> RunStore:
        from overseer.run import JobRequest, open_memory, open_store

        if self.store is None:
            self.store = open_store(self.settings)
            s = self.settings
            self.run_id = self.store.create_run(
                input_path=f"inspect-scorer:{self.task or 'eval'}", input_sha256=None, output_path=None,
                config={"source": "inspect scorer", "spec": self.spec_name, "backend": s.backend, "model": s.model,
                        "judges": s.judges, "rubric": s.rubric, "fields": self.fields.__dict__})
            self.memory = open_memory(s, JobRequest(input_path=Path("."), fields=self.fields))
            self.gate = asyncio.Semaphore(s.concurrency)
        return self.store

    def _judges(self, store: RunStore, sample: Sample) -> dict[str, Judge]:
        from overseer.run import build_judges

        # The scripted backend is told each sample's label when it is built, so it is built per sample; a real
        # backend is built once and shares its client across samples.
        if self.scripted:
            judges = build_judges(self.settings, self.spec, store, samples=[sample])
        else:
            judges = self.judges = self.judges or build_judges(self.settings, self.spec, store)
        for judge in judges.values():
            judge.gate = self.gate
        return judges

    async def judge(self, sample: Sample) -> SampleResult:
        from overseer.clauses import ClauseSelector
        from overseer.judging.graph import RunContext, graph

        store = self._open()
        assert self.run_id is not None
        store.add_samples(self.run_id, [(self.count, sample)], [])
        judges = self._judges(store, sample)
        ctx = RunContext(run_id=self.run_id, samples={sample.id: sample}, judges=judges,
                         selector=ClauseSelector(self.spec, self.settings.max_clauses), store=store,
                         memory=self.memory, low_confidence=self.settings.low_confidence,
                         threshold_margin=self.settings.threshold_margin)
        try:
            out = await graph.ainvoke({"sample_ids": [sample.id]}, context=ctx)
        finally:
            if self.scripted:
                for judge in judges.values():
                    await judge.provider.aclose()
        store.set_status(self.run_id, "finished")  # a scorer has no end hook: finished as far as it was asked
        return next(r for r in out["results"] if r.sample_id == sample.id)


@scorer(metrics={"misaligned": [mean(), stderr()], "emergent": [mean(), stderr()]})
def spec_judge(spec: str | None = None, backend: str | None = None, model: str | None = None,
               judges: str | None = None, base_url: str | None = None, rubric: str = "spec",
               workspace: str | None = None, task: str | None = None, label_field: str | None = None,
               concurrency: int | None = None) -> Scorer:
    """Judge each sample's final output against the spec, as `overseer judge` does (same options, same cache).
    `task` is needed only outside an eval (`inspect score`), where Inspect does not tell a scorer the task name;
    `label_field` names a metadata key (or `target`) with a reference label, as `--label-field` does."""
    from overseer.config import load_settings
    from overseer.inspect_logs import verdict_score
    from overseer.samples_io import FieldMap

    settings = load_settings(workspace=workspace, backend=backend, model=model, base_url=base_url,
                             judges=judges.split() if judges else None, rubric=rubric, concurrency=concurrency)
    session = ScoringSession(settings, spec, FieldMap(label=label_field), task)

    async def score(state: TaskState, target: Target) -> Score:
        return verdict_score(await session.judge(session.sample(state, target)))

    return score
