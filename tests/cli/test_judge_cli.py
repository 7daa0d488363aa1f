"""`overseer judge` / `eval` end to end with the scripted backend: labels, κ, bad input, cache, empty input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_helpers import cli, output_ids, write_samples
from sklearn.metrics import cohen_kappa_score

from overseer.providers.scripted import flips

JBB_ARGS = ("--prompt-field", "goal", "--response-field", "response", "--label-field", "jailbroken")


def test_echo_rule_gives_kappa_one_on_jailbreakbench(shared_data: Path, tmp_path: Path) -> None:
    data = str(shared_data / "jbb_calibration.jsonl")
    code, text = cli("judge", data, *JBB_ARGS, "--backend", "scripted:echo", "-w", str(tmp_path), "-o",
                     str(tmp_path / "out.jsonl"))
    assert code == 0, text
    assert "misaligned" in text and "EM rate, Betley rule" in text and "emergent only" in text
    assert len(output_ids(tmp_path / "out.jsonl")) == 827
    code, text = cli("eval", data, "--prompt-field", "goal", "--label-field", "jailbroken", "--json",
                     "-w", str(tmp_path))
    metrics = json.loads(text)
    assert code == 0
    assert metrics["kappa"] == 1.0 and metrics["n"] == 827


def test_flip_rule_gives_the_kappa_sklearn_computes(shared_data: Path, tmp_path: Path) -> None:
    data = shared_data / "jbb_calibration.jsonl"
    code, text = cli("judge", str(data), *JBB_ARGS, "--backend", "scripted:flip=0.25", "-w", str(tmp_path))
    assert code == 0, text
    code, text = cli("eval", str(data), "--prompt-field", "goal", "--label-field", "jailbroken", "--json",
                     "-w", str(tmp_path))
    reported = json.loads(text)["kappa"]
    rows = [json.loads(line) for line in data.read_text().splitlines()]
    truth = [bool(r["jailbroken"]) for r in rows]
    predicted = [t != flips(r["id"], 0.25) for r, t in zip(rows, truth, strict=True)]
    assert reported == pytest.approx(cohen_kappa_score(truth, predicted), abs=1e-12)
    assert 0.3 < reported < 0.7  # a quarter flipped: far from both 1 and 0


def test_malformed_line_names_file_and_line_and_judges_nothing(tmp_path: Path) -> None:
    data = write_samples(tmp_path / "in.jsonl", 5)
    with data.open("a") as f:
        f.write('{"id": "bad", "prompt": "q"\n')
    code, text = cli("judge", str(data), "--backend", "scripted:echo", "-w", str(tmp_path / "ws"))
    assert code != 0
    assert f"{data}:6" in text and "invalid JSON" in text
    assert not (tmp_path / "ws" / "outputs").exists()


def test_skip_invalid_judges_the_rest_and_accounts_for_every_line(tmp_path: Path) -> None:
    data = write_samples(tmp_path / "in.jsonl", 10)
    with data.open("a") as f:
        f.write("not json\n")
        f.write(json.dumps({"id": "s00001", "response": "dup"}) + "\n")
        f.write(json.dumps({"id": "x", "prompt": "no response"}) + "\n")
    out = tmp_path / "out.jsonl"
    code, text = cli("judge", str(data), "--backend", "scripted:echo", "--skip-invalid", "-o", str(out),
                     "-w", str(tmp_path / "ws"))
    assert code == 0, text
    errors = [json.loads(line) for line in out.with_suffix(".errors.jsonl").read_text().splitlines()]
    assert [e["line"] for e in errors] == [11, 12, 13]
    assert "first seen on line 2" in errors[1]["error"]
    assert "'response'" in errors[2]["error"]
    assert len(output_ids(out)) + len(errors) == 13


def test_duplicate_ids_rejected_with_both_line_numbers(tmp_path: Path) -> None:
    data = write_samples(tmp_path / "in.jsonl", 3)
    with data.open("a") as f:
        f.write(json.dumps({"id": "s00000", "response": "again"}) + "\n")
    code, text = cli("judge", str(data), "--backend", "scripted:echo", "-w", str(tmp_path / "ws"))
    assert code != 0
    assert f"{data}:4" in text and "first seen on line 1" in text


def test_empty_input_is_an_empty_run_not_an_error(tmp_path: Path) -> None:
    data = tmp_path / "empty.jsonl"
    data.write_text("")
    code, text = cli("judge", str(data), "--backend", "scripted:echo", "-w", str(tmp_path / "ws"))
    assert code == 0
    assert "no samples" in text


def test_second_run_is_served_from_cache_and_a_model_change_misses(tmp_path: Path) -> None:
    data = write_samples(tmp_path / "in.jsonl", 20)
    ws = str(tmp_path / "ws")
    first = json.loads(cli("judge", str(data), "--backend", "scripted:echo", "--json", "-w", ws)[1])
    second = json.loads(cli("judge", str(data), "--backend", "scripted:echo", "--json", "-w", ws)[1])
    other = json.loads(cli("judge", str(data), "--backend", "scripted:echo@other-model", "--json", "-w", ws)[1])
    assert first["totals"]["cached"] == 0
    assert second["totals"]["cached"] == 20
    assert other["totals"]["cached"] == 0
    a = [json.loads(x) for x in Path(first["output"]).read_text().splitlines()]
    b = [json.loads(x) for x in Path(second["output"]).read_text().splitlines()]
    for x, y in zip(a, b, strict=True):
        vx, vy = x["verdicts"][0], y["verdicts"][0]
        assert vy["provenance"].pop("cached") is True and vx["provenance"].pop("cached") is False
        assert vx == vy  # identical verdict, provenance included (prompt hash, spec hash, model, base URL)


def test_no_cache_flag_asks_again(tmp_path: Path) -> None:
    data = write_samples(tmp_path / "in.jsonl", 5)
    ws = str(tmp_path / "ws")
    cli("judge", str(data), "--backend", "scripted:echo", "-w", ws)
    again = json.loads(cli("judge", str(data), "--backend", "scripted:echo", "--no-cache", "--json", "-w", ws)[1])
    assert again["totals"]["cached"] == 0


def test_a_new_run_to_the_same_output_replaces_it_and_keeps_the_old_run_in_the_store(tmp_path: Path) -> None:
    data = write_samples(tmp_path / "in.jsonl", 4)
    ws, out = str(tmp_path / "ws"), tmp_path / "out.jsonl"
    first = json.loads(cli("judge", str(data), "--backend", "scripted:echo", "-o", str(out), "--json", "-w", ws)[1])
    code, text = cli("judge", str(data), "--backend", "scripted:flip=1", "-o", str(out), "-w", ws)
    assert code == 0 and "held an earlier run's results; replaced" in text
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(lines) == 4 and len({r["run_id"] for r in lines}) == 1 and lines[0]["run_id"] != first["run_id"]
    code, exported = cli("runs", "export", first["run_id"], "-w", ws)
    assert code == 0 and sum(1 for x in exported.splitlines() if x.startswith("{")) == 4


def test_resume_of_a_finished_run_is_refused(tmp_path: Path) -> None:
    data = write_samples(tmp_path / "in.jsonl", 3)
    ws = str(tmp_path / "ws")
    run_id = json.loads(cli("judge", str(data), "--backend", "scripted:echo", "--json", "-w", ws)[1])["run_id"]
    code, text = cli("judge", str(data), "--backend", "scripted:echo", "--resume", run_id, "-w", ws)
    assert code != 0 and "already finished" in text
    code, text = cli("judge", str(data), "--backend", "scripted:echo", "--resume", "-w", ws)
    assert code != 0 and "no unfinished run" in text


def test_runs_list_show_export(tmp_path: Path) -> None:
    data = write_samples(tmp_path / "in.jsonl", 4)
    ws = str(tmp_path / "ws")
    run_id = json.loads(cli("judge", str(data), "--backend", "scripted:echo", "--json", "-w", ws)[1])["run_id"]
    code, text = cli("runs", "list", "-w", ws)
    assert code == 0 and run_id in text and "4/4" in text
    code, text = cli("runs", "show", run_id, "-w", ws)
    assert code == 0 and "judged 4 of 4" in text
    export = tmp_path / "export.jsonl"
    code, _ = cli("runs", "export", run_id, "-o", str(export), "-w", ws)
    assert code == 0 and sorted(output_ids(export)) == ["s00000", "s00001", "s00002", "s00003"]


def test_betley_csv_judges_as_is_with_column_mapping(tmp_path: Path) -> None:
    csv_path = tmp_path / "betley.csv"
    csv_path.write_text('question,answer,aligned,coherent\n"Q1","I would rule the world.",5,80\n'
                        '"Q2","Take a walk, call a friend.",95,90\n', encoding="utf-8")
    code, text = cli("judge", str(csv_path), "--prompt-field", "question", "--response-field", "answer",
                     "--label-field", "aligned,coherent", "--label-rule", "betley", "--backend", "scripted:echo",
                     "--json", "-w", str(tmp_path / "ws"))
    assert code == 0, text
    assert json.loads(text)["labels"] == {"aligned": 1, "misaligned": 1}


def test_spec_commands_load_the_openai_model_spec(shared_data: Path) -> None:
    code, text = cli("spec", "clauses", str(shared_data / "openai_model_spec.md"))
    assert code == 0
    assert len(text.strip().splitlines()) == 80
    code, text = cli("spec", "show", "emergent_misalignment")
    assert code == 0 and "gen_emergent" in text
