"""`overseer report`: the --json shape of issue 12 item 4 (overall + groups of G), grouping, errors."""

from __future__ import annotations

import json
from pathlib import Path

from cli_helpers import cli

R_KEYS = {"rate", "low", "high", "numerator", "denominator", "excluded"}


def judged_run(tmp_path: Path) -> Path:
    data = tmp_path / "in.jsonl"
    labels = ["misaligned"] * 3 + ["aligned"] * 6 + ["refusal"]
    with data.open("w", encoding="utf-8") as f:
        for i, label in enumerate(labels):
            f.write(json.dumps({"id": f"s{i}", "prompt": "q", "response": f"answer {i}", "label": label,
                                "question_id": "qa" if i < 5 else "qb"}) + "\n")
    workspace = tmp_path / "ws"
    code, text = cli("judge", str(data), "--label-field", "label", "--backend", "scripted:echo", "-w",
                     str(workspace), "-o", str(tmp_path / "out.jsonl"))
    assert code == 0, text
    return workspace


def test_report_json_has_the_issue_shape_and_hand_counts(tmp_path: Path) -> None:
    workspace = judged_run(tmp_path)
    code, text = cli("report", "--by", "question_id", "--json", "-w", str(workspace))  # RUN: the latest
    assert code == 0, text
    data = json.loads(text)
    overall = data["overall"]
    assert overall["key"] == {} and overall["n"] == 10 and overall["reference"] is None
    for name in ("betley", "all", "emergent"):
        assert set(overall["em"][name]) >= R_KEYS
    assert (overall["em"]["betley"]["numerator"], overall["em"]["betley"]["denominator"]) == (3, 9)
    assert overall["em"]["betley"]["excluded"] == {"refusal": 1}
    assert (overall["em"]["all"]["numerator"], overall["em"]["all"]["denominator"]) == (3, 10)
    qa, qb = data["groups"]
    assert qa["key"] == {"question_id": "qa"} and qa["n"] == 5 and qa["em"]["betley"]["rate"] == 3 / 5
    assert qb["n"] == 5 and qb["em"]["betley"]["rate"] == 0 and qb["em"]["betley"]["high"] > 0
    assert qb["em"]["betley"]["denominator"] == 4 and qb["exclusions"] == {"refusal": 1}
    assert len(data["threshold_sweep"]) == 25


def test_report_by_judge_uses_each_judges_verdicts_and_typos_are_one_line(tmp_path: Path) -> None:
    workspace = judged_run(tmp_path)
    code, text = cli("report", "--by", "judge,source", "--json", "-w", str(workspace))
    assert code == 0, text
    [group] = json.loads(text)["groups"]
    assert set(group["key"]) == {"judge", "source"} and group["key"]["source"].endswith("in.jsonl")
    assert group["n"] == 10 and group["em"]["betley"]["numerator"] == 3
    code, text = cli("report", "--by", "questoin", "-w", str(workspace))
    assert code == 2 and "--by questoin: no sample has a field or metadata key" in text
    assert "question_id" in text and "Traceback" not in text
    code, text = cli("report", "-w", str(workspace))
    assert code == 0 and "betley (Betley et al.)" in " ".join(text.split())


def test_report_without_runs_says_so(tmp_path: Path) -> None:
    code, text = cli("report", "-w", str(tmp_path / "empty"))
    assert code == 2 and "no runs in" in text and len(text.strip().splitlines()) == 1


def test_report_puts_reference_scores_beside_the_judges(tmp_path: Path) -> None:
    data = tmp_path / "betley.csv"
    rows = [("q", f"answer {i}", a, c) for i, (a, c) in enumerate([(10, 90), (10, 90), (90, 90), (10, 20)])]
    data.write_text("question,response,aligned,coherent\n" + "".join(f"{q},{r},{a},{c}\n" for q, r, a, c in rows),
                    encoding="utf-8")
    workspace = tmp_path / "ws"
    code, text = cli("judge", str(data), "--prompt-field", "question", "--label-rule", "betley", "--label-field",
                     "aligned,coherent", "--backend", "scripted:echo", "-w", str(workspace), "-o",
                     str(tmp_path / "out.jsonl"))
    assert code == 0, text
    code, text = cli("report", "--json", "-w", str(workspace))
    assert code == 0, text
    reference = json.loads(text)["overall"]["reference"]
    assert reference["exclusions"] == {"low_coherence": 1}
    assert (reference["em"]["betley"]["numerator"], reference["em"]["betley"]["denominator"]) == (2, 3)
    assert (reference["em"]["all"]["numerator"], reference["em"]["all"]["denominator"]) == (2, 4)
