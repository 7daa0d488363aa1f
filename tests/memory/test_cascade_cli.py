"""`overseer memory calibrate` and `overseer judge --cascade` on a memory seeded from JailbreakBench."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from memory_cli_helpers import JBB_ARGS, cli
from shared_data import require_shared_data


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory, shared_data_dir: Path) -> Path:
    workspace = tmp_path_factory.mktemp("ws")
    code, text = cli("seed", str(shared_data_dir / "jbb_calibration.jsonl"), *JBB_ARGS, "--reviewed",
                     "-w", str(workspace))
    assert code == 0, text
    return workspace


@pytest.fixture(scope="module")
def shared_data_dir() -> Path:
    return require_shared_data()


def test_calibrate_trades_calls_saved_against_agreement(seeded: Path) -> None:
    code, text = cli("memory", "calibrate", "--tau", "0.6", "--tau", "0.9", "--tau", "0.99", "--json",
                     "-w", str(seeded))
    assert code == 0, text
    rows = json.loads(text)["rows"]
    assert [r["tau"] for r in rows] == [0.6, 0.9, 0.99]
    saved, agreement = [r["saved"] for r in rows], [r["agreement"] for r in rows]
    assert saved[0] > saved[1] > saved[2] > 0
    assert agreement[0] < agreement[2]
    assert 0.8 < agreement[1] <= 1.0


def test_calibrate_needs_two_labels(tmp_path: Path) -> None:
    seed = tmp_path / "one_label.jsonl"
    seed.write_text("".join(json.dumps({"id": f"x{i}", "response": f"fine answer {i}", "label": "aligned"}) + "\n"
                            for i in range(20)))
    assert cli("seed", str(seed), "--reviewed", "-w", str(tmp_path))[0] == 0
    code, text = cli("memory", "calibrate", "-w", str(tmp_path))
    assert code == 2 and "two labels" in text


def test_judge_with_cascade_skips_the_llm_for_confident_samples(seeded: Path, shared_data_dir: Path,
                                                                tmp_path: Path) -> None:
    calls = tmp_path / "calls.txt"
    out = tmp_path / "out.jsonl"
    code, text = cli("judge", str(shared_data_dir / "jbb_calibration.jsonl"), *JBB_ARGS, "--limit", "200",
                     "--backend", f"scripted:echo,count={calls}", "--cascade", "0.9", "-o", str(out),
                     "-w", str(seeded))
    assert code == 0, text
    results = [json.loads(line) for line in out.read_text().splitlines()]
    by_memory = [r for r in results if r["verdicts"][0]["provenance"]["decided_by"] == "memory"]
    assert len(results) == 200 and len(by_memory) > 40  # these very cases are in the memory: it is sure of many
    assert len(calls.read_text().splitlines()) == 200 - len(by_memory)  # each decided sample cost no call


def test_cascade_without_a_memory_is_a_clear_error(tmp_path: Path, shared_data_dir: Path) -> None:
    code, text = cli("judge", str(shared_data_dir / "jbb_calibration.jsonl"), *JBB_ARGS, "--limit", "5",
                     "--backend", "scripted:echo", "--cascade", "0.9", "-w", str(tmp_path))
    assert code == 2 and "seed" in text


def test_calibrate_stores_a_tau_that_cascade_auto_uses(seeded: Path, shared_data_dir: Path, tmp_path: Path) -> None:
    code, text = cli("memory", "calibrate", "--target", "0.95", "--json", "-w", str(seeded))
    assert code == 0, text
    chosen = json.loads(text)
    assert chosen["tau"] is not None and chosen["estimated_agreement"] >= 0.95 and chosen["decided_share"] > 0
    assert json.loads((seeded / "memory" / "cascade.json").read_text())["tau"] == chosen["tau"]
    out = tmp_path / "out.jsonl"
    code, text = cli("judge", str(shared_data_dir / "jbb_calibration.jsonl"), *JBB_ARGS, "--limit", "60",
                     "--backend", "scripted:echo", "--cascade", "auto", "-o", str(out), "-w", str(seeded))
    assert code == 0, text
    verdicts = [json.loads(line)["verdicts"][0] for line in out.read_text().splitlines()]
    decided = [v for v in verdicts if v["provenance"]["decided_by"] == "memory"]
    assert decided and all(v["confidence"] >= chosen["tau"] for v in decided)
    assert f"the memory decided {len(decided)} of 60 sample(s) alone at TAU {chosen['tau']}" in text
    assert "estimated agreement with human labels" in text
    assert "60 of 60 sample(s) are in the memory itself" in text  # these are the seeded cases


def test_cascade_auto_needs_a_calibration_and_a_tau_is_checked(tmp_path: Path, shared_data_dir: Path) -> None:
    seed = tmp_path / "seed.jsonl"
    seed.write_text("".join(json.dumps({"id": f"x{i}", "response": f"answer {i}", "label": "aligned"}) + "\n"
                            for i in range(3)))
    assert cli("seed", str(seed), "--reviewed", "-w", str(tmp_path))[0] == 0
    args = ("judge", str(shared_data_dir / "jbb_calibration.jsonl"), *JBB_ARGS, "--limit", "3",
            "--backend", "scripted:echo", "-w", str(tmp_path))
    code, text = cli(*args, "--cascade", "auto")
    assert code == 2 and "overseer memory calibrate" in text
    code, text = cli(*args, "--cascade", "0.3")
    assert code == 2 and "between 0.5 and 1" in text


@pytest.mark.parametrize("args, named", [(("--target", "3"), "--target"), (("--target", "0.4"), "--target"),
                                         (("--tau", "0.2"), "--tau"), (("--tau", "1.5"), "--tau")])
def test_calibrate_refuses_an_out_of_range_value_before_reading_the_memory(tmp_path: Path, args: tuple[str, ...],
                                                                          named: str) -> None:
    code, text = cli("memory", "calibrate", *args, "-w", str(tmp_path))  # no memory here: the value is checked first
    assert code == 2 and named in text and "no memory" not in text and "Traceback" not in text, text
