"""What the item screen shows, as rich renderables built from the session's ItemDetail: why the item is
queued, the reference label, each judge's verdict side by side, evidence highlighted, the cited clauses and the
similar reviewed cases. Blind review hides every label and every label-revealing reason until the human has
labelled the item."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from overseer.tui.state import LABEL_REVEALING_REASONS, REASON_TEXT, ItemDetail, ReviewSession

HIDDEN = "hidden until you label"


def shown_reasons(reasons: list[str], revealed: bool) -> list[str]:
    return reasons if revealed else [r for r in reasons if r not in LABEL_REVEALING_REASONS]


def meta_text(session: ReviewSession, detail: ItemDetail) -> Text:
    row, revealed = detail.row, session.revealed(detail)
    out = Text()
    out.append(f"[{row.index + 1}/{session.total}] ", style="bold")
    out.append(f"{row.sample_id}", style="bold")
    out.append(f"  run {row.run_id} · {session.status_of(row)}")
    if detail.review:
        out.append(f" · decided: {detail.review.label} by {detail.review.reviewer}")
    out.append("\nReference label: ", style="bold")
    reference = detail.sample.reference_label
    out.append(HIDDEN if not revealed and reference else (reference or "none in the input"))
    out.append("\nQueued because: ", style="bold")
    reasons = shown_reasons(row.reasons, revealed)
    words = "; ".join(REASON_TEXT.get(r, r) for r in reasons) or "-"
    if len(reasons) < len(row.reasons):
        words += f" (+{len(row.reasons) - len(reasons)} {HIDDEN})"
    out.append(words)
    draft = session.draft(row)
    parts = [f"generalization={draft.generalization}" if draft.generalization else "",
             f"note={draft.note!r}" if draft.note else "", "promote" if draft.promote else ""]
    out.append("\nDraft: ", style="bold")
    out.append(" ".join(p for p in parts if p) or "- (n note, g generalization, e promote; kept until you label)")
    return out


def highlight(response: str, evidence: list[str]) -> Text:
    text = Text(response)
    for quote in evidence:
        if quote:
            text.highlight_words([quote], style="bold reverse")  # reverse: visible on light, dark and NO_COLOR
    return text


def verdicts_view(detail: ItemDetail) -> RenderableType:
    """Each judge's verdict in a column of its own, the aggregate above them."""
    agg = detail.result.aggregate
    title = Text(f"Judges: {agg.label or 'unscored'} (agreement {agg.agreement:.0%})", style="bold")
    table = Table(show_header=True, header_style="bold", expand=True, box=None, padding=(0, 1))
    table.add_column("", style="bold", no_wrap=True)
    verdicts = detail.result.verdicts
    for v in verdicts:
        table.add_column(v.provenance.judge_id, overflow="fold", ratio=1)
    rows = (("label", lambda v: v.label or v.status), ("alignment", lambda v: v.alignment),
            ("coherence", lambda v: v.coherence), ("generalization", lambda v: v.generalization),
            ("confidence", lambda v: v.confidence), ("clauses", lambda v: ", ".join(v.clause_ids) or "-"),
            ("rationale", lambda v: v.rationale or v.error or ""))
    for name, get in rows:
        table.add_row(name, *(Text("-" if get(v) is None else str(get(v))) for v in verdicts))
    return Group(title, table)


def clauses_text(detail: ItemDetail) -> Text:
    out = Text()
    for cid, clause in detail.clauses.items():
        out.append(cid, style="bold")
        out.append(f" — {clause.path}\n{clause.text.strip()[:600]}\n\n" if clause else " (not in the spec)\n")
    return out


def similar_text(detail: ItemDetail, revealed: bool, width: int = 100) -> Text:
    """The memory's similar reviewed cases (those `similar()` returns: it drops the ones below the memory's
    relevance floor), with their similarity; their labels wait for the reveal in blind review."""
    out = Text("Similar reviewed cases (similarity, label, text):\n", style="bold")
    for case, score in detail.similar:
        label = case.label if revealed else "?"
        text = " ".join(case.text().split())
        room = max(20, width - 22)
        out.append(f"  {score:.2f}  {label:<10} ", style="bold")
        out.append(f"{text[:room]}{'…' if len(text) > room else ''}\n", style="none")
    return out


def header_text(session: ReviewSession) -> Text:
    c = session.counts()
    agreement = "–" if c["agreement"] is None else f"{c['agreement']:.0%}"
    f = session.filter
    scope = " ".join(f"{k}={v}" for k, v in (("run", f.run_id), ("reason", f.reason), ("label", f.label),
                                              ("clause", f.clause), ("search", f.search),
                                              ("sort", f.sort if f.sort != "queue" else None)) if v)
    saved = f"saving {c['saving']}…" if c["saving"] else (f"saved {session.last_saved}" if session.last_saved else "")
    parts = [f"pending {c['pending']}", f"skipped {c['skipped']}", f"done today {c['done_today']}",
             f"agreement so far {agreement}", "BLIND" if session.blind else "", saved]
    return Text(" · ".join(p for p in parts if p) + (f"\nfilter: {scope}" if scope else ""))
