"""The report's plots (matplotlib, headless) as PNG bytes: EM rate by group, treated-minus-control deltas, the
generalization breakdown and the threshold sweep. Readable by construction: dark text on white, colours that keep
at least 3:1 contrast with the background, labels wrapped at word boundaries (never cut mid-word), "top N of M"
in the title when groups are left out, rate axes that start at 0."""

from __future__ import annotations

import io
import re
import textwrap
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from matplotlib.figure import Figure

if TYPE_CHECKING:
    from matplotlib.axes import Axes

TOP = 30  # groups shown in a bar plot; the rest are named in the title as "top N of M"
TEXT = "#1a1a1a"
COLOURS = {"betley": "#b2182b", "all": "#2166ac", "emergent": "#5e3c99"}
LEVEL_COLOURS = {"in_domain": "#1b7837", "domain_leakage": "#b35806", "emergent": "#b2182b",
                 "unclassified": "#595959", "n/a": "#2166ac"}
OTHER_COLOUR = "#8c510a"
LABEL_WIDTH, LABEL_LINES = 32, 3


def label(text: str) -> str:
    """A tick label: wrapped into at most LABEL_LINES lines of LABEL_WIDTH characters, broken only at spaces or
    after a separator (- _ / . : = ,), never inside a word; then '…' after a whole piece. `$` is escaped so
    untrusted text is never read as matplotlib mathtext."""
    pieces = [p for p in re.split(r"(?<=[\s\-_/.:=,])", text or "(blank)") if p]
    lines = [""]
    for piece in pieces:
        if lines[-1] and len(lines[-1]) + len(piece.rstrip()) > LABEL_WIDTH:
            lines.append("")
        lines[-1] += piece
    lines = [line.strip() for line in lines]
    if len(lines) > LABEL_LINES:
        lines = [*lines[:LABEL_LINES - 1], lines[LABEL_LINES - 1] + " …"]
    return "\n".join(lines).replace("$", r"\$")


def key_text(key: dict[str, Any]) -> str:
    """The group's values (the fields are named in the axis label)."""
    return ", ".join(str(v) for v in key.values()) if key else "overall"


def _figure(labels: Sequence[str], width: float = 9.0) -> tuple[Figure, Axes]:
    """Tall enough that every label line has room: rows grow with their wrapped lines."""
    height = sum(0.16 * (lab.count("\n") + 1) + 0.14 for lab in labels) + 2.0
    fig = Figure(figsize=(width, max(3.0, height)), layout="constrained", facecolor="white")
    ax = fig.add_subplot()
    ax.tick_params(colors=TEXT, labelsize=9)
    for spine in ax.spines.values():
        spine.set_color(TEXT)
    return fig, ax


def _wrap(fig: Figure, text: str) -> str:
    return "\n".join(textwrap.wrap(text, int(fig.get_figwidth() * 9), break_long_words=False))


def _title(fig: Figure, text: str, shown: int | None = None, total: int | None = None) -> None:
    """On the figure, wrapped to its width, so a long title is never cut at the edge."""
    if shown is not None and total is not None and shown < total:
        text += f" (top {shown} of {total} groups, by answers)"
    fig.suptitle(_wrap(fig, text), color=TEXT, fontsize=11, x=0.01, ha="left")


def _xlabel(fig: Figure, text: str) -> None:
    """Centred on the figure rather than the axes: wide labels on the left cannot push it off the edge."""
    fig.supxlabel(_wrap(fig, text), color=TEXT, fontsize=10)


def _ylabel(ax: Axes, groups: Sequence[dict[str, Any]]) -> None:
    fields = list(groups[0]["key"]) if groups else []
    if fields:
        ax.set_ylabel(label(", ".join(fields)), color=TEXT)


def _legend(fig: Figure) -> None:
    """Outside the axes, so it never hides a bar."""
    fig.legend(loc="outside upper right", ncols=5, fontsize=9, labelcolor=TEXT, frameon=False)


def _top(groups: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(groups, key=lambda g: -g["n"])[:TOP]


def png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, facecolor="white")
    return buffer.getvalue()


def em_by_group(overall: dict[str, Any], groups: Sequence[dict[str, Any]]) -> Figure:
    """Both conventions per group with their 95% intervals, overall first."""
    shown = [overall, *_top(groups)]
    names = [label(key_text(g["key"])) for g in shown]
    fig, ax = _figure(names)
    height = 0.38
    highest = 0.0
    for offset, convention in ((-height / 2, "betley"), (height / 2, "all")):
        rates = [g["em"][convention] for g in shown]
        values = [r["rate"] or 0.0 for r in rates]
        errors = [[v - (r["low"] if r["low"] is not None else v) for v, r in zip(values, rates, strict=True)],
                  [(r["high"] if r["high"] is not None else v) - v for v, r in zip(values, rates, strict=True)]]
        highest = max([highest, *((r["high"] or 0.0) for r in rates)])
        ax.barh([i + offset for i in range(len(shown))], values, height, xerr=errors, color=COLOURS[convention],
                ecolor=TEXT, capsize=2, label=f"{convention}")
    ax.set_yticks(range(len(shown)), names)
    _ylabel(ax, groups)
    ax.invert_yaxis()
    ax.set_xlim(0, min(1.0, max(0.05, highest * 1.1)))
    _xlabel(fig, "EM rate (fraction of the convention's denominator), 95% interval")
    _legend(fig)
    _title(fig, "EM rate by group: betley (Betley et al.) and all (Turner et al.)", len(shown) - 1, len(groups))
    return fig


def deltas(entries: Sequence[dict[str, Any]], convention: str = "betley") -> Figure:
    """Treated minus control for one convention, with intervals: a difference, so the axis spans both signs."""
    defined = [e for e in entries if e["em"][convention] and e["em"][convention]["delta"] is not None]
    shown = defined[:TOP]
    names = [label(key_text(e["key"])) for e in shown]
    fig, ax = _figure(names)
    for i, e in enumerate(shown):
        d = e["em"][convention]
        ax.errorbar(d["delta"], i, xerr=[[d["delta"] - d["low"]], [d["high"] - d["delta"]]], fmt="o",
                    color=COLOURS[convention], ecolor=TEXT, capsize=3)
    ax.axvline(0, color=TEXT, linewidth=0.8)
    ax.set_yticks(range(len(shown)), names)
    _ylabel(ax, shown)
    ax.invert_yaxis()
    _xlabel(fig, f"treated − control EM rate ({convention}), 95% interval")
    _title(fig, "Difference from the control group", len(shown), len(defined))
    return fig


def generalization(overall: dict[str, Any], groups: Sequence[dict[str, Any]]) -> Figure:
    """Share of misaligned answers at each generalization level, stacked to 1 per group."""
    with_misaligned = [g for g in groups if g["generalization"]["misaligned"]]
    shown = [g for g in (overall, *_top(with_misaligned)) if g["generalization"]["misaligned"]]
    names = [label(f"{key_text(g['key'])} (n={g['generalization']['misaligned']})") for g in shown]
    fig, ax = _figure(names)
    levels = list(dict.fromkeys(lv for g in shown for lv in g["generalization"]["levels"]))
    left = [0.0] * len(shown)
    for level in levels:
        shares = [g["generalization"]["levels"].get(level, 0) / g["generalization"]["misaligned"] for g in shown]
        ax.barh(range(len(shown)), shares, left=left, color=LEVEL_COLOURS.get(level, OTHER_COLOUR), label=level)
        left = [a + b for a, b in zip(left, shares, strict=True)]
    ax.set_yticks(range(len(shown)), names)
    _ylabel(ax, groups)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    _xlabel(fig, "share of misaligned answers")
    if levels:
        _legend(fig)
    _title(fig, "Generalization of misaligned answers", len(shown) - 1, len(with_misaligned))
    return fig


def sweep(grid: Sequence[dict[str, Any]], convention: str) -> Figure:
    """The rate at every pair of thresholds; the paper's 30/50 cell outlined."""
    alignments = sorted({row["alignment_below"] for row in grid})
    coherences = sorted({row["coherence_above"] for row in grid})
    cell = {(row["alignment_below"], row["coherence_above"]): row[convention] for row in grid}
    fig, ax = _figure([""] * len(alignments), width=6.5)
    values = [[cell[(a, c)] if cell[(a, c)] is not None else float("nan") for c in coherences] for a in alignments]
    image = ax.imshow(values, cmap="Reds", vmin=0, vmax=max(0.01, max((v or 0.0) for v in cell.values())))
    for i, a in enumerate(alignments):
        for j, c in enumerate(coherences):
            v = cell[(a, c)]
            shade = 0.0 if v is None else v / (image.norm.vmax or 1)
            ax.text(j, i, "n/a" if v is None else f"{v:.1%}", ha="center", va="center", fontsize=9,
                    color="white" if shade > 0.55 else TEXT)
            if (a, c) == (30, 50):
                ax.add_patch(_outline(j, i, "white", 4.0))  # visible on dark cells
                ax.add_patch(_outline(j, i, TEXT, 1.8))  # and on light ones
    ax.set_xticks(range(len(coherences)), [f"> {c:g}" for c in coherences])
    ax.set_yticks(range(len(alignments)), [f"< {a:g}" for a in alignments])
    ax.set_xlabel("coherence above", color=TEXT)
    ax.set_ylabel("alignment below", color=TEXT)
    _title(fig, f"Threshold sweep, {convention} (outlined: the paper's 30/50)")
    fig.colorbar(image, ax=ax, label="EM rate")
    return fig


def _outline(x: float, y: float, colour: str, width: float) -> Any:
    from matplotlib.patches import Rectangle

    return Rectangle((x - 0.5, y - 0.5), 1, 1, fill=False, edgecolor=colour, linewidth=width)
