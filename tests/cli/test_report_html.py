"""`overseer report --html FILE` rendered in a real headless Chromium (Debian's `chromium` package): the screenshot
shows styled tables and the inline plots, the DOM holds the tables' text, a hostile group name stays text, and
the file fetches nothing. Skipped without chromium unless CI=true (then it fails: CI must install it). Also the
`--json` keys the HTML is built from (deltas, agreement, per judge, generalization, sweep)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import cli
from matplotlib.image import imread

HOSTILE = "<script>alert(1)</script> $\\frac{x"  # HTML and matplotlib mathtext in one untrusted model name


def judged_run(tmp_path: Path) -> Path:
    """Three models × two questions × 5 answers, judged by two scripted judges that disagree on some."""
    data = tmp_path / "in.jsonl"
    misaligned = {("base", "qa"): 1, ("base", "qb"): 0, ("ft", "qa"): 3, ("ft", "qb"): 2, (HOSTILE, "qa"): 2,
                  (HOSTILE, "qb"): 2}
    with data.open("w", encoding="utf-8") as f:
        for n, ((model, question), k) in enumerate(misaligned.items()):
            for i in range(5):
                f.write(json.dumps({"id": f"s{n}-{i}", "prompt": f"question {question}", "response": f"answer {i}",
                                    "label": "misaligned" if i < k else "aligned", "model": model,
                                    "question_id": question}) + "\n")
    workspace = tmp_path / "ws"
    code, text = cli("judge", str(data), "--label-field", "label", "--judges", "scripted:echo scripted:flip=0.3",
                     "-w", str(workspace), "-o", str(tmp_path / "out.jsonl"))
    assert code == 0, text
    return workspace


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but chromium is missing: apt-get install -y chromium")
        pytest.skip("chromium is not installed (apt-get install -y chromium); with CI=true this test fails")
    return found


def browse(page: Path, profile: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           f"--user-data-dir={profile}", *flags, page.as_uri()],
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    return done


def pixels_near(image: np.ndarray, hex_colour: str, tolerance: float = 4 / 255) -> int:
    target = np.array([int(hex_colour[i:i + 2], 16) / 255 for i in (1, 3, 5)])
    return int((np.abs(image[..., :3] - target) <= tolerance).all(axis=-1).sum())


def test_html_report_renders_in_headless_chromium(tmp_path: Path) -> None:
    workspace = judged_run(tmp_path)
    page = tmp_path / "report.html"
    code, text = cli("report", "--by", "model", "--control", "model=base", "--html", str(page), "-w", str(workspace))
    assert code == 0 and f"wrote {page}" in " ".join(text.split()), text
    flat = " ".join(text.split())
    assert "treated minus control (model=base)" in flat and "agreement between 2 judges on labels" in flat
    assert "judge scripted:echo@scripted-echo: betley" in flat
    html = page.read_text(encoding="utf-8")
    # Self-contained: nothing to fetch, no script; a CSP forbids any fetch even if something slipped in.
    assert "http://" not in html and "https://" not in html and "<script" not in html
    assert "default-src 'none'" in html and html.count('src="data:image/png;base64,') >= 5

    shot = tmp_path / "shot.png"
    browse(page, tmp_path / "profile", "--window-size=1280,2600", f"--screenshot={shot}")
    image = imread(shot)
    assert image.shape[:2] == (2600, 1280)
    assert (image[..., :3] < 0.9).any(axis=-1).mean() > 0.02  # not a blank page
    assert pixels_near(image, "#eef1f5") > 5000  # the tables' header cells, styled by the inline CSS
    assert pixels_near(image, "#b2182b") > 500  # the bars of the inline EM plot (betley colour)

    dom = browse(page, tmp_path / "profile", "--dump-dom").stdout
    for heading in ("EM rates", "Treated minus control (model=base)", "EM per judge and agreement between judges",
                    "Generalization of misaligned answers", "Threshold sweep"):
        assert f"<h2>{heading}</h2>" in dom
    assert dom.count("<table>") >= 6 and "betley (Betley et al.)" in dom and "Krippendorff's α (nominal)" in dom
    code, text = cli("report", "--by", "model", "--control", "model=base", "--json", "-w", str(workspace))
    [ft] = [e["em"]["betley"] for e in json.loads(text)["deltas"] if e["key"] == {"model": "ft"}]
    assert f"{ft['delta']:+.1%} [{ft['low']:+.1%}, {ft['high']:+.1%}]" in dom  # the same numbers as --json
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in dom and "<script>" not in dom


def test_report_json_adds_deltas_agreement_generalization_and_sweep(tmp_path: Path) -> None:
    workspace = judged_run(tmp_path)
    code, text = cli("report", "--by", "model", "--control", "base", "--json", "-w", str(workspace))
    assert code == 0, text
    data = json.loads(text)
    assert {"overall", "groups", "deltas", "agreement", "judges", "control", "threshold_sweep"} <= set(data)
    assert data["control"] == {"model": "base"}
    assert {tuple(e["key"].values()) for e in data["deltas"]} == {(HOSTILE,), ("ft",)}
    for g in (data["overall"], *data["groups"]):
        assert set(g["generalization"]) == {"misaligned", "levels", "shares"} and len(g["threshold_sweep"]) == 25
    assert [j["key"]["judge"].split("@")[0] for j in data["judges"]] == ["scripted:echo", "scripted:flip=0.3"]
    assert data["agreement"]["labels"]["krippendorff_alpha"]["value"] is not None
    code, text = cli("report", "--by", "model", "--control", "model=chat", "-w", str(workspace))
    assert code == 2 and "--control model=chat: no group has it" in text and "Traceback" not in text
