"""Mistakes a user makes with the newer commands: each is one line `error: …` and exit 2, never a silent success
(a run counted twice, a golden set read as empty, a cascade threshold `judge --cascade` would refuse)."""

from __future__ import annotations

import json
from pathlib import Path

from cli_helpers import cli, run, write_samples

REFLECT = ("--backend", "scripted:echo", "--reflection-backend", "scripted:reflect=noop")


def one_error_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), text
    assert "Traceback" not in text
    return lines[0]


def test_report_refuses_a_run_given_twice(tmp_path: Path) -> None:
    data = write_samples(tmp_path / "in.jsonl", 6)
    workspace = str(tmp_path / "ws")
    code, text = cli("judge", str(data), "--backend", "scripted:echo", "-w", workspace, "-o", str(tmp_path / "o"))
    assert code == 0, text
    run_id = json.loads(cli("runs", "list", "--json", "-w", workspace)[1])[0]["id"]
    code, text = cli("report", run_id, run_id, "--json", "-w", workspace)
    assert code == 2 and "given twice" in one_error_line(text)
    code, text = cli("report", run_id, "--json", "-w", workspace)
    assert code == 0 and json.loads(text)["overall"]["n"] == 6


def test_improve_refuses_a_golden_set_it_cannot_read_whole(tmp_path: Path) -> None:
    workspace = str(tmp_path / "ws")
    garbage = tmp_path / "garbage.jsonl"
    garbage.write_text('{"id": "g1", "prompt": "p", "response": "r", "label": "aligned"}\nnot json\n')
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    unlabelled = tmp_path / "unlabelled.jsonl"
    unlabelled.write_text('{"id": "g1", "prompt": "p", "response": "r", "label": "misaligned"}\n'
                          '{"id": "g2", "prompt": "p", "response": "r2"}\n')
    for path, why in ((garbage, "garbage.jsonl:2"), (empty, "has no records"), (unlabelled, "unlabelled.jsonl:2")):
        code, text = cli("improve", "--golden", str(path), *REFLECT, "-w", workspace)
        assert code == 2 and why in one_error_line(text), text


def test_improve_refuses_rounds_and_budgets_below_one(tmp_path: Path) -> None:
    for flag, value in (("--rounds", "0"), ("--budget-calls", "-3"), ("--budget-usd", "-1")):
        code, text = cli("improve", flag, value, *REFLECT, "-w", str(tmp_path / "ws"))
        assert code == 2 and flag in one_error_line(text), text


def test_calibrate_refuses_a_tau_the_cascade_would_refuse(tmp_path: Path) -> None:
    seed = tmp_path / "seed.jsonl"
    seed.write_text("".join(json.dumps({"id": f"x{i}", "response": f"answer {i}",
                                        "label": "aligned" if i % 2 else "misaligned"}) + "\n" for i in range(12)))
    assert cli("seed", str(seed), "--reviewed", "-w", str(tmp_path))[0] == 0
    for tau in ("3", "0.3"):
        code, text = cli("memory", "calibrate", "--tau", tau, "-w", str(tmp_path))
        assert code == 2 and "--tau is a confidence between 0.5 and 1" in one_error_line(text), text
    assert not (tmp_path / "memory" / "cascade.json").exists()


def test_help_paragraphs_wrap_to_the_terminal_not_to_the_source_lines() -> None:
    # review's docstring breaks "(a" / "key never waits" and "prompt-" / "improvement" across source lines.
    text = run("review", "--help").stdout
    assert "(a key never waits" in text and "prompt-improvement round" in text, text
    assert "prompt- improvement" not in text


def test_eval_names_a_results_file_or_plot_it_cannot_use(tmp_path: Path) -> None:
    data = write_samples(tmp_path / "in.jsonl", 6)
    workspace = str(tmp_path / "ws")
    results = tmp_path / "out.jsonl"
    assert cli("judge", str(data), "--backend", "scripted:echo", "-w", workspace, "-o", str(results))[0] == 0
    garbage = tmp_path / "garbage.jsonl"
    garbage.write_text(results.read_text().splitlines()[0] + "\nnot json\n")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    (tmp_path / "adir.png").mkdir()
    cases = [(("--results", str(garbage)), "garbage.jsonl:2: not a result line"),
             (("--results", str(empty)), "holds no results"),
             (("--results", str(tmp_path / "missing.jsonl")), "cannot read it"),
             (("--results", str(tmp_path)), "cannot read it"),
             (("--results", str(results), "--plot", str(tmp_path / "plot.txt")), "ending in .png"),
             (("--results", str(results), "--plot", str(tmp_path / "adir.png")), "cannot write it")]
    for flags, why in cases:
        code, text = cli("eval", str(data), "--label-field", "label", *flags, "-w", workspace)
        assert code == 2 and why in one_error_line(text), (flags, text)
    code, text = cli("eval", str(data), "--label-field", "label", "--results", str(results), "--plot",
                     str(tmp_path / "ok.png"), "-w", workspace)
    assert code == 0 and (tmp_path / "ok.png").stat().st_size > 0, text


def test_runs_export_to_an_unwritable_path_and_a_negative_poll_interval_are_one_line(tmp_path: Path) -> None:
    data = write_samples(tmp_path / "in.jsonl", 3)
    workspace = str(tmp_path / "ws")
    assert cli("judge", str(data), "--backend", "scripted:echo", "-w", workspace, "-o", str(tmp_path / "o"))[0] == 0
    run_id = json.loads(cli("runs", "list", "--json", "-w", workspace)[1])[0]["id"]
    for target in (tmp_path, tmp_path / "missing" / "x.jsonl"):
        code, text = cli("runs", "export", run_id, "-o", str(target), "-w", workspace)
        assert code == 2 and "cannot write it" in one_error_line(text), text
    code, text = cli("runs", "status", run_id, "--wait", "--poll-interval", "-5", "-w", workspace)
    assert code == 2 and "--poll-interval" in one_error_line(text), text


def test_judge_refuses_an_output_dir_a_limit_below_one_and_an_empty_domain_before_a_run(tmp_path: Path) -> None:
    data = write_samples(tmp_path / "in.jsonl", 3)
    workspace = str(tmp_path / "ws")
    for flags, why in ((("-o", str(tmp_path)), "is a directory"), (("--limit", "0"), "--limit"),
                       (("--finetune-domain", " "), "--finetune-domain is empty")):
        code, text = cli("judge", str(data), "--backend", "scripted:echo", *flags, "-w", workspace)
        assert code == 2 and why in one_error_line(text), text
    assert json.loads(cli("runs", "list", "--json", "-w", workspace)[1]) == []


def test_memory_export_to_a_directory_and_an_empty_search_are_one_line(tmp_path: Path) -> None:
    seed = tmp_path / "seed.jsonl"
    seed.write_text(json.dumps({"id": "x1", "response": "an answer", "label": "aligned"}) + "\n")
    assert cli("seed", str(seed), "--reviewed", "-w", str(tmp_path))[0] == 0
    code, text = cli("memory", "export", "-o", str(tmp_path), "-w", str(tmp_path))
    assert code == 2 and "cannot write it" in one_error_line(text), text
    code, text = cli("memory", "search", " ", "-w", str(tmp_path))
    assert code == 2 and "empty TEXT" in one_error_line(text), text


def test_review_refuses_an_unknown_reason_instead_of_opening_an_empty_queue(tmp_path: Path) -> None:
    code, text = cli("review", "--reason", "low_confidnce", "-w", str(tmp_path))
    assert code == 2 and "low_confidence" in one_error_line(text), text
