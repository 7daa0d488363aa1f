"""A stop that lands between a group's commit and its report (seen: Ctrl-C, 43 results committed and 42 in the
output file) still leaves every committed result in the output: the interrupt path writes what the store holds
and the output lacks, so the output never depends on where the stop happened."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_helpers import output_ids, write_samples

from overseer.config import load_settings
from overseer.run import JobRequest, run_job
from overseer.samples_io import FieldMap
from overseer.store import open_store


def test_a_stop_after_a_commit_still_writes_the_committed_results(tmp_path: Path) -> None:
    data, out = write_samples(tmp_path / "in.jsonl", 64), tmp_path / "out.jsonl"
    settings = load_settings(workspace=str(tmp_path / "ws"), backend="scripted:echo", concurrency=16)
    seen: list[str] = []

    def stop_at_the_third(result) -> None:  # type: ignore[no-untyped-def]
        seen.append(result.sample_id)
        if len(seen) == 3:  # the third of a committed group of two or more: the rest are committed, not reported
            raise RuntimeError("stopped")  # what Ctrl-C, SIGTERM or a bug does there: leave the graph

    with pytest.raises(RuntimeError, match="stopped"):
        run_job(JobRequest(input_path=data, fields=FieldMap(label="label"), output=out), settings,
                on_result=stop_at_the_third)
    runs = open_store(tmp_path / "ws").list_runs()
    assert len(runs) == 1 and runs[0].status == "interrupted"
    committed = open_store(tmp_path / "ws").finished_ids(runs[0].id)
    assert len(committed) > len(seen)  # the stop really left committed results unreported
    assert sorted(output_ids(out)) == sorted(committed)
