"""`overseer report --html FILE`: the report (em_groups.em_report's data) as one self-contained HTML file — inline
CSS, plots as inline PNG (report_plots.py), no script and nothing fetched: a Content-Security-Policy forbids any
network access, so the file opens offline and a hostile group name cannot load or run anything. Every value that
came from the input (group keys, judge ids, paths) is HTML-escaped."""

from __future__ import annotations

import base64
from collections.abc import Iterable, Sequence
from html import escape
from pathlib import Path
from typing import Any

from overseer import em, report_plots
from overseer.errors import ConfigError

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
CSS = """
body { font: 14px/1.45 system-ui, sans-serif; color: #1a1a1a; background: #fff; margin: 2em 1em; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: .6em 0 1.2em; }
th, td { border: 1px solid #bbb; padding: .25em .6em; vertical-align: top; }
th { background: #eef1f5; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.overall td { font-weight: 600; background: #f7f7f7; } td.paper { outline: 2px solid #1a1a1a; }
.note { color: #5a4500; background: #fff8e1; padding: .3em .6em; border-left: 3px solid #c79100; }
div.wide { overflow-x: auto; }
img { max-width: 100%; display: block; margin: .5em 0; } small, .muted { color: #555; }
"""


def write_html(path: Path, data: dict[str, Any]) -> None:
    try:
        path.write_text(render(data), encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"--html {path}: cannot write it ({exc.strerror or exc})") from None


def render(data: dict[str, Any]) -> str:
    by, overall, groups = data["by"], data["overall"], data["groups"]
    parts = [f"<h1>EM report: runs {escape(', '.join(data['runs']))}</h1>", _conventions(overall)]
    parts += ["<h2>EM rates</h2>", _rates_table(by, overall, groups),
              _image(report_plots.em_by_group(overall, groups), "EM rate by group, both conventions")]
    if any(g["reference"] for g in (overall, *groups)):
        parts += ["<h2>Reference scores, same rule</h2>", _reference_table(by, overall, groups)]
    if data.get("deltas") is not None:
        control = ", ".join(f"{k}={v}" for k, v in data["control"].items())
        parts += [f"<h2>Treated minus control ({escape(control)})</h2>", _delta_table(by, data["deltas"])]
        if any(e["em"]["betley"] and e["em"]["betley"]["delta"] is not None for e in data["deltas"]):
            parts.append(_image(report_plots.deltas(data["deltas"]), "treated minus control, betley"))
    parts += ["<h2>EM per judge and agreement between judges</h2>", _rates_table(["judge"], None, data["judges"]),
              _agreement_table(data["agreement"])]
    parts += ["<h2>Generalization of misaligned answers</h2>", _generalization_table(by, overall, groups)]
    if overall["generalization"]["misaligned"]:
        parts.append(_image(report_plots.generalization(overall, groups), "generalization breakdown"))
    parts += ["<h2>Threshold sweep</h2>", "<p>The point rate at other thresholds (misaligned when alignment is "
              "below the row and coherence above the column); the paper's 30/50 cell is outlined.</p>"]
    for convention in em.CONVENTIONS:
        parts += [f"<h3>{convention}</h3>", _sweep_table(data["threshold_sweep"], convention),
                  _image(report_plots.sweep(data["threshold_sweep"], convention), f"threshold sweep, {convention}")]
    body = "\n".join(parts)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
            f"<title>overseer EM report</title><style>{CSS}</style></head><body>\n{body}\n</body></html>\n")


def _conventions(overall: dict[str, Any]) -> str:
    items = "".join(f"<li><b>{c}</b>: {escape(em.CITATION[c])}</li>" for c in em.CONVENTIONS)
    notes = "".join(f'<p class="note">{escape(n)}</p>' for n in overall["em_notes"])
    clustered = overall.get("clustered_by")
    how = (f"a cluster bootstrap by {escape(clustered)}, at least Wilson" if clustered else "Wilson")
    return f"<ul>{items}</ul><p class='muted'>95% intervals: {how}.</p>{notes}"


def rate(r: dict[str, Any] | None) -> str:
    if r is None:
        return "—"
    if r["rate"] is None:
        return f"n/a (0/{r['denominator']})"
    return f"{r['rate']:.1%} [{r['low']:.1%}–{r['high']:.1%}] <small>{r['numerator']}/{r['denominator']}</small>"


def _delta(d: dict[str, Any] | None) -> str:
    if d is None or d["delta"] is None:
        return f"undefined ({escape(d['undefined'])})" if d and d.get("undefined") else "—"
    return f"{d['delta']:+.1%} [{d['low']:+.1%}, {d['high']:+.1%}]"


def _table(head: Sequence[str], rows: Iterable[tuple[Sequence[str], str]]) -> str:
    """Cells are HTML already (escaped by the caller); a row is (cells, css class)."""
    header = "".join(f"<th>{h}</th>" for h in head)
    body = "".join(f'<tr class="{cls}">' + "".join(_cell(c) for c in cells) + "</tr>" for cells, cls in rows)
    return f'<div class="wide"><table><thead><tr>{header}</tr></thead><tbody>{body}</tbody></table></div>'


def _cell(html: str) -> str:
    numeric = html[:1].isdigit() or html[:1] in "+-−" or html.startswith(("n/a", "—"))
    return f'<td class="num">{html}</td>' if numeric else f"<td>{html}</td>"


def _keys(by: Sequence[str], g: dict[str, Any]) -> list[str]:
    if not g["key"]:
        return ["overall"] + [""] * (len(by) - 1)
    return [escape(str(g["key"].get(f, ""))) for f in by]


def _rows(by: Sequence[str], overall: dict[str, Any] | None, groups: Sequence[dict[str, Any]]) \
        -> list[tuple[dict[str, Any], str]]:
    return ([(overall, "overall")] if overall is not None else []) + [(g, "") for g in groups]


def _rates_table(by: Sequence[str], overall: dict[str, Any] | None, groups: Sequence[dict[str, Any]]) -> str:
    head = [*(escape(f) for f in (by or ["group"])), "n", "betley (Betley et al.)", "all (Turner et al.)",
            "emergent (betley)", "emergent (all)", "incoherence", "excluded"]
    rows = [([*_keys(by or ["group"], g), str(g["n"]), rate(g["em"]["betley"]), rate(g["em"]["all"]),
              rate(g["em"]["emergent"]), rate(g["em"]["emergent_all"]), rate(g["incoherence"]),
              escape(", ".join(f"{k} {v}" for k, v in g["exclusions"].items()))], cls)
            for g, cls in _rows(by, overall, groups)]
    return _table(head, rows)


def _reference_table(by: Sequence[str], overall: dict[str, Any], groups: Sequence[dict[str, Any]]) -> str:
    head = [*(escape(f) for f in (by or ["group"])), "judge betley", "reference betley", "judge all",
            "reference all", "reference excluded"]
    rows = [([*_keys(by or ["group"], g), rate(g["em"]["betley"]), rate(ref["em"]["betley"]), rate(g["em"]["all"]),
              rate(ref["em"]["all"]), escape(", ".join(f"{k} {v}" for k, v in ref["exclusions"].items()))], cls)
            for g, cls in _rows(by, overall, groups) if (ref := g["reference"]) is not None]
    return _table(head, rows)


def _delta_table(by: Sequence[str], entries: Sequence[dict[str, Any]]) -> str:
    head = [*(escape(f) for f in by), "control", "Δ betley", "Δ all", "Δ emergent (betley)", "paired questions"]
    rows = []
    for e in entries:
        control = "none" if e["control"] is None else ", ".join(f"{k}={v}" for k, v in e["control"].items())
        betley = e["em"]["betley"]
        paired = "—" if betley is None else str(betley["paired_clusters"])
        cells = [*(escape(str(e["key"][f])) for f in by), escape(control),
                 *(_delta(e["em"][n]) if e["em"][n] else f"undefined ({escape(e['undefined'] or '')})"
                   for n in ("betley", "all", "emergent")), paired]
        rows.append((cells, ""))
    return _table(head, rows)


def _agreement_table(agreement: dict[str, Any]) -> str:
    judges = ", ".join(agreement["judges"]) or "none"
    if len(agreement["judges"]) < 2:
        why = agreement["labels"]["krippendorff_alpha"]["undefined"]
        return f"<p>Judges: {escape(judges)}. Agreement between judges: undefined ({escape(why or '')}).</p>"
    rows = []
    for on, title in (("labels", "labels"), ("misaligned", "misaligned or not")):
        for method, name in (("fleiss_kappa", "Fleiss' κ"), ("krippendorff_alpha", "Krippendorff's α (nominal)")):
            r = agreement[on][method]
            value = f"{r['value']:.3f}" if r["value"] is not None else f"undefined ({escape(r['undefined'])})"
            rows.append(([escape(title), name, value, str(r["units"]), str(r["ratings"])], ""))
    table = _table(["on", "measure", "value", "samples", "labels"], rows)
    return f"<p>Judges: {escape(judges)} ({agreement['samples']} samples).</p>{table}"


def _generalization_table(by: Sequence[str], overall: dict[str, Any], groups: Sequence[dict[str, Any]]) -> str:
    levels = list(dict.fromkeys(lv for g in (overall, *groups) for lv in g["generalization"]["levels"]))
    head = [*(escape(f) for f in (by or ["group"])), "misaligned", *(escape(lv) for lv in levels)]
    rows = []
    for g, cls in _rows(by, overall, groups):
        gen = g["generalization"]
        cells = [f"{gen['levels'][lv]} · {rate(gen['shares'][lv])}" if lv in gen["levels"] else "0" for lv in levels]
        rows.append(([*_keys(by or ["group"], g), str(gen["misaligned"]), *cells], cls))
    return _table(head, rows)


def _sweep_table(grid: Sequence[dict[str, Any]], convention: str) -> str:
    alignments = sorted({row["alignment_below"] for row in grid})
    coherences = sorted({row["coherence_above"] for row in grid})
    cell = {(row["alignment_below"], row["coherence_above"]): row[convention] for row in grid}
    head = ["alignment \\ coherence", *(f"&gt; {c:g}" for c in coherences)]
    body = "".join(
        f"<tr><th>&lt; {a:g}</th>" + "".join(
            f'<td class="num{" paper" if (a, c) == (em.PAPER.alignment, em.PAPER.coherence) else ""}">'
            f'{"n/a" if cell[(a, c)] is None else f"{cell[(a, c)]:.1%}"}</td>' for c in coherences) + "</tr>"
        for a in alignments)
    return f"<table><thead><tr>{''.join(f'<th>{h}</th>' for h in head)}</tr></thead><tbody>{body}</tbody></table>"


def _image(fig: Any, alt: str) -> str:
    data = base64.b64encode(report_plots.png(fig)).decode("ascii")
    return f'<img alt="{escape(alt)}" src="data:image/png;base64,{data}">'
