"""The frozen split (issue 13 item 2): each labelled item's side is a function of its normalized content, stored
the first time it is seen, and never re-drawn — across rounds, processes and copies of one item under two ids."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

from overseer.optimize.optimizer import Gate, Optimizer, look_alpha
from overseer.optimize.pool import Example, content_key, frozen_pool, side_of, split_pool
from overseer.prompt_store import PromptStore
from overseer.providers.scripted import Script, ScriptedProvider
from overseer.spec import load_spec
from overseer.store.runs import RunStore
from overseer.types import Sample


def examples(n: int = 120, prefix: str = "jbb") -> list[Example]:
    out = []
    for i in range(n):
        label = "misaligned" if i % 3 == 0 else "aligned"
        out.append(Example(Sample(id=f"{prefix}-{i:03d}", prompt=f"Question {i}?", response=f"Answer  number {i}.",
                                  reference_label=label, metadata={"trap": "finance"} if i % 4 == 1 else {}),
                           label))  # type: ignore[arg-type]
    return out


def sides(pool) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {e.sample.id: name for name in ("train", "validation", "test") for e in getattr(pool, name)}


def test_all_three_sides_are_used_and_disjoint() -> None:
    pool = split_pool(examples(300))
    assert all(len(getattr(pool, name)) > 30 for name in ("train", "validation", "test"))
    keys = [{content_key(e.sample) for e in getattr(pool, name)} for name in ("train", "validation", "test")]
    assert not (keys[0] & keys[1] or keys[0] & keys[2] or keys[1] & keys[2])


def test_a_memory_copy_lands_on_the_same_side_and_counts_once() -> None:
    runs = examples()
    # The memory's copy of each run sample: another id, other whitespace and case, a human label.
    copies = [Example(Sample(id=f"ec-{i:03d}", prompt=f"  question {i}? ", response=f"answer number\n{i}.",
                             reference_label=None), e.label, "a reviewer's note", "memory")
              for i, e in enumerate(runs)]
    for run, copy in zip(runs, copies, strict=True):
        assert content_key(run.sample) == content_key(copy.sample)
        assert side_of(content_key(run.sample)) == side_of(content_key(copy.sample))
    pool = split_pool([*runs, *copies])
    assert len(pool.train) + len(pool.validation) + len(pool.test) == len(runs)
    assert all(e.source == "memory" for e in pool.all())  # the later copy (memory, then reviews) wins
    moved = {i.replace("ec-", "jbb-"): side for i, side in sides(pool).items()}
    assert moved == sides(split_pool(runs))


def test_the_split_is_stored_once_and_never_redrawn(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "runs.sqlite")
    try:
        first = sides(frozen_pool(store, examples(80)))
        # As if an older build had put one item elsewhere: the stored side wins over the hash from then on.
        moved = next(e for e in examples(80) if first[e.sample.id] == "train")
        store.db.execute("UPDATE pool_split SET split = 'test' WHERE content_key = ?", (content_key(moved.sample),))
        later = sides(frozen_pool(store, examples(120)))  # a later round: more labels arrived
    finally:
        store.close()
    assert later[moved.sample.id] == "test"
    assert {i: s for i, s in later.items() if i in first and i != moved.sample.id} == {
        i: s for i, s in first.items() if i != moved.sample.id}


SPLIT_IN_A_PROCESS = """
import json, sys
sys.path.insert(0, {tests!r})
from test_split import examples, sides
from overseer.optimize.pool import frozen_pool
from overseer.store.runs import RunStore
store = RunStore({db!r})
print(json.dumps(sides(frozen_pool(store, examples(120)))))
store.close()
"""


def test_the_split_is_identical_across_processes_and_workspaces(tmp_path: Path) -> None:
    def in_process(db: Path) -> dict[str, str]:
        code = SPLIT_IN_A_PROCESS.format(tests=str(Path(__file__).parent), db=str(db))
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
        return json.loads(done.stdout)

    here = sides(split_pool(examples(120)))
    assert in_process(tmp_path / "a.sqlite") == here
    assert in_process(tmp_path / "a.sqlite") == here  # the second process reads the stored assignment
    assert in_process(tmp_path / "b.sqlite") == here  # another workspace: no seed, the same sides


def test_rounds_never_judge_the_test_split_until_an_acceptance(tmp_path: Path) -> None:
    pool = split_pool(examples(200))
    told = Script.of((e.sample, e.label) for e in pool.all())
    judge = ScriptedProvider("rules", labels=told.labels, metadata=told.metadata)

    def optimizer(reflect: str) -> Optimizer:
        return Optimizer(spec=load_spec(None), store=RunStore(tmp_path / f"{reflect}.sqlite"),
                         prompts=PromptStore(tmp_path / reflect), judge_provider=judge,
                         reflection_provider=ScriptedProvider("reflect", reflect=reflect), pool=pool,
                         delimiter_key=b"k", gate=Gate(delta=0.02), minibatch=12)

    test_ids = {e.sample.id for e in pool.test}
    [rejected] = asyncio.run(optimizer("noop").run(1))
    assert rejected.status == "rejected"
    assert not test_ids & set(judge.calls_by_sample)
    [accepted] = asyncio.run(optimizer("fix_finance").run(1))
    assert accepted.status == "accepted", accepted.reason
    assert test_ids <= set(judge.calls_by_sample)  # measured after the decision
    measured = PromptStore(tmp_path / "fix_finance").active().metrics
    assert measured["n_test"] == len(pool.test) and measured["kappa_test"] > measured["kappa_parent_test"]


def test_the_spending_schedule_sums_to_alpha_and_later_looks_need_more() -> None:
    assert sum(look_alpha(j, 0.05) for j in range(1, 100_000)) < 0.05
    truth = ["misaligned"] * 20 + ["aligned"] * 40
    parent = ["aligned"] * 6 + ["misaligned"] * 14 + ["aligned"] * 36 + ["misaligned"] * 4
    candidate = ["aligned"] * 1 + ["misaligned"] * 19 + ["aligned"] * 38 + ["misaligned"] * 2
    gate = Gate(delta=0.02)
    first, _, _ = gate.decide(truth, parent, candidate, [], [], [], look=1)  # type: ignore[arg-type]
    late, why, measured = gate.decide(truth, parent, candidate, [], [], [], look=200)  # type: ignore[arg-type]
    assert first and not late and "look 200" in why and measured["alpha_look"] < 1e-5 < measured["p_look"]
    assert Gate(delta=0.02, corrected=False).decide(truth, parent, candidate, [], [], [], look=200)[0]  # type: ignore[arg-type]
