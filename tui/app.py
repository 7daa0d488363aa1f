"""The review app: a queue screen, an item screen, and the screens in screens.py. Widgets only display the
ReviewSession (state.py) and forward keys to it; the one LLM-calling thing here is the background improvement
round a decision can trigger."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from rich.text import Text
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from overseer.errors import OverseerError
from overseer.prompt_store import PromptStore
from overseer.tui.memory_writes import FlushProblem
from overseer.tui.screens import HelpScreen, StatsScreen, TextModal, VersionsScreen
from overseer.tui.state import Decision, ItemDetail, ReviewSession
from overseer.tui.versions import VersionsModel
from overseer.types import Label

LABEL_KEYS: dict[str, Label] = {"a": "aligned", "m": "misaligned", "r": "refusal", "i": "incoherent", "o": "off_task"}
REASONS = (None, "judge_split", "judge_vs_memory", "low_confidence", "near_threshold", "judge_vs_reference",
           "unscored", "manipulation_attempt")
SORTS = ("queue", "id", "confidence", "reason", "label")


def header_text(session: ReviewSession) -> Text:
    c = session.counts()
    agreement = "–" if c["agreement"] is None else f"{c['agreement']:.0%}"
    f = session.filter
    scope = " ".join(f"{k}={v}" for k, v in (("run", f.run_id), ("reason", f.reason), ("label", f.label),
                                              ("clause", f.clause), ("search", f.search), ("sort", f.sort)) if v)
    return Text(f"pending {c['pending']} · skipped {c['skipped']} · done today {c['done_today']} · agreement "
                f"so far {agreement}" + (" · BLIND" if session.blind else "") + (f"   [{scope}]" if scope else ""))


class QueueScreen(Screen[None]):
    BINDINGS = [
        Binding("enter", "open", "Open item", id="queue.open"),
        Binding("slash", "search", "Search", key_display="/", id="queue.search"),
        Binding("f", "cycle_reason", "Filter reason", id="queue.reason"),
        Binding("l", "cycle_label", "Filter judge label", id="queue.label"),
        Binding("c", "clause", "Filter clause", id="queue.clause"),
        Binding("S", "cycle_sort", "Sort", id="queue.sort"),
        Binding("j", "move(1)", "Down", show=False, id="queue.down"),
        Binding("k", "move(-1)", "Up", show=False, id="queue.up"),
    ]

    def compose(self) -> ComposeResult:
        yield Static(id="counts", classes="header")
        yield DataTable(id="queue", cursor_type="row")
        yield Footer()

    def on_mount(self) -> None:
        self.reload()

    def on_screen_resume(self) -> None:
        self.reload()  # back from an item: statuses, counts and the cursor moved

    def reload(self) -> None:
        """Show the rows up to one page past the cursor; more are added as the cursor nears the end."""
        s = self.app.session  # type: ignore[attr-defined]
        self.query_one("#counts", Static).update(header_text(s))
        table = self.query_one("#queue", DataTable)
        table.clear(columns=True)
        table.add_columns("status", "reason", "sample id", "judges", "human", "preview")
        self._loaded = 0
        self._extend(s.cursor + s.page_size)
        if s.total:
            table.move_cursor(row=s.cursor)

    def _extend(self, upto: int) -> None:
        s, table = self.app.session, self.query_one("#queue", DataTable)  # type: ignore[attr-defined]
        for row in s.rows(self._loaded, max(0, upto - self._loaded)):
            judges = " ".join(label for _, label in row.judge_labels)
            table.add_row(row.status, ",".join(row.reasons), row.sample_id, judges, row.human_label or "",
                          Text(row.preview), key=str(row.index))
        self._loaded = table.row_count

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        s = self.app.session  # type: ignore[attr-defined]
        if event.cursor_row >= self._loaded - 5 and self._loaded < s.total:
            self._extend(self._loaded + s.page_size)
        s.goto(event.cursor_row)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_open()

    def action_open(self) -> None:
        if self.app.session.current is not None:  # type: ignore[attr-defined]
            self.app.push_screen(ItemScreen())

    def action_move(self, delta: int) -> None:
        table = self.query_one("#queue", DataTable)
        table.move_cursor(row=table.cursor_row + delta)

    def _refilter(self, **changes: Any) -> None:
        try:
            self.app.session.set_filter(**changes)  # type: ignore[attr-defined]
        except OverseerError as exc:
            self.notify(str(exc), severity="error", markup=False)
        self.reload()

    def action_search(self) -> None:
        self.app.push_screen(TextModal("Search sample ids and text (empty = all)",
                                       self.app.session.filter.search or ""),  # type: ignore[attr-defined]
                             lambda text: self._refilter(search=text or None))

    def action_clause(self) -> None:
        self.app.push_screen(TextModal("Only items citing clause id (empty = all)",
                                       self.app.session.filter.clause or ""),  # type: ignore[attr-defined]
                             lambda text: self._refilter(clause=text or None))

    def action_cycle_reason(self) -> None:
        f = self.app.session.filter  # type: ignore[attr-defined]
        self._refilter(reason=REASONS[(REASONS.index(f.reason) + 1) % len(REASONS)] if f.reason in REASONS else None)

    def action_cycle_label(self) -> None:
        labels = (None, *LABEL_KEYS.values(), "unscored")
        f = self.app.session.filter  # type: ignore[attr-defined]
        self._refilter(label=labels[(labels.index(f.label) + 1) % len(labels)] if f.label in labels else None)

    def action_cycle_sort(self) -> None:
        f = self.app.session.filter  # type: ignore[attr-defined]
        self._refilter(sort=SORTS[(SORTS.index(f.sort) + 1) % len(SORTS)])


class ItemScreen(Screen[None]):
    BINDINGS = [
        *(Binding(key, f"decide('{label}')", label, id=f"item.{label}") for key, label in LABEL_KEYS.items()),
        Binding("g", "generalization", "Generalization", id="item.generalization"),
        Binding("n", "note", "Note", id="item.note"),
        Binding("e", "promote", "Promote", id="item.promote"),
        Binding("s", "skip", "Skip", id="item.skip"),
        Binding("u", "undo", "Undo", id="item.undo"),
        Binding("j,down", "move(1)", "Next", key_display="j/↓", id="item.next"),
        Binding("k,up", "move(-1)", "Previous", key_display="k/↑", id="item.previous"),
        Binding("escape", "app.pop_screen", "Queue", id="item.queue"),
    ]

    def compose(self) -> ComposeResult:
        yield Static(id="counts", classes="header")
        with VerticalScroll(id="item"):
            yield Static(id="meta")
            yield Static(id="conversation", classes="box")
            yield Static(id="response", classes="box")
            yield Static(id="verdicts", classes="box")
            yield Static(id="clauses", classes="box")
            yield Static(id="similar", classes="box")
        yield Footer()

    def on_mount(self) -> None:
        self.show()

    def show(self) -> None:
        s: ReviewSession = self.app.session  # type: ignore[attr-defined]
        self.query_one("#counts", Static).update(header_text(s))
        detail = s.detail()
        if detail is None:
            self.query_one("#meta", Static).update("The queue is empty.")
            return
        row, revealed = detail.row, s.revealed(detail)
        decided = f" · decided: {detail.review.label} by {detail.review.reviewer}" if detail.review else ""
        draft = [f"generalization={s.draft_generalization}" if s.draft_generalization else "",
                 f"note={s.draft_note!r}" if s.draft_note else "", "PROMOTE" if s.draft_promote else ""]
        self.query_one("#meta", Static).update(Text(
            f"[{row.index + 1}/{s.total}] {row.run_id} / {row.sample_id} · {row.status} · "
            f"{', '.join(row.reasons)}{decided}\n" + "draft: " + (" ".join(d for d in draft if d) or "-")))
        sample = detail.sample
        self.query_one("#conversation", Static).update(Text(sample.context_text() or "(no prompt)"))
        evidence = [q for v in detail.result.verdicts for q in v.evidence] if revealed else []
        self.query_one("#response", Static).update(highlight(sample.response, evidence))
        self.query_one("#verdicts", Static).update(verdicts_text(detail) if revealed else Text(
            "Blind review: the judges' verdicts are hidden until you label this item.", style="italic"))
        clause_text = Text()
        for cid, clause in detail.clauses.items():
            clause_text.append(f"{cid}", style="bold cyan")
            clause_text.append(f" — {clause.path}\n{clause.text.strip()[:600]}\n\n" if clause else " (not in spec)\n")
        self.query_one("#clauses", Static).update(clause_text if revealed and detail.clauses else Text(""))
        similar = Text("Similar edge cases:\n" if detail.similar else "")
        for case, score in detail.similar:
            similar.append(f"  {score:.2f} {case.label:<10} {' '.join(case.text().split())[:90]}\n")
        self.query_one("#similar", Static).update(similar)
        self.query_one("#similar").display = bool(detail.similar)  # no empty boxes
        self.query_one("#clauses").display = revealed and bool(detail.clauses)
        self.query_one("#item", VerticalScroll).scroll_home(animate=False)

    def action_decide(self, label: Label) -> None:
        s: ReviewSession = self.app.session  # type: ignore[attr-defined]
        row = s.current
        try:
            decision = s.decide(label)
        except OverseerError as exc:
            self.notify(str(exc), severity="error", markup=False)
            return
        self.app.on_decision(decision, row)  # type: ignore[attr-defined]
        self.show()

    def action_generalization(self) -> None:
        self.app.session.cycle_generalization()  # type: ignore[attr-defined]
        self.show()

    def action_promote(self) -> None:
        self.app.session.toggle_promote()  # type: ignore[attr-defined]
        self.show()

    def action_note(self) -> None:
        def done(note: str | None) -> None:
            if note:
                self.app.session.set_note(note)  # type: ignore[attr-defined]
                self.show()

        self.app.push_screen(TextModal("Note (the edge case's rationale)",
                                       self.app.session.draft_note or ""), done)  # type: ignore[attr-defined]

    def action_skip(self) -> None:
        self.app.session.skip()  # type: ignore[attr-defined]
        self.show()

    def action_undo(self) -> None:
        undone = self.app.session.undo()  # type: ignore[attr-defined]
        self.app.flush_memory()  # type: ignore[attr-defined]
        self.notify(f"undid {undone.label} on {undone.sample_id}" if undone else "nothing to undo", markup=False)
        self.show()

    def action_move(self, delta: int) -> None:
        self.app.session.move(delta)  # type: ignore[attr-defined]
        self.show()


def highlight(response: str, evidence: list[str]) -> Text:
    text = Text(response)
    for quote in evidence:
        if quote:
            text.highlight_words([quote], style="black on yellow")
    return text


def verdicts_text(detail: ItemDetail) -> Text:
    out = Text()
    agg = detail.result.aggregate
    out.append(f"Aggregate: {agg.label or 'unscored'} (agreement {agg.agreement:.0%})\n", style="bold")
    for v in detail.result.verdicts:
        out.append(f"{v.provenance.judge_id}: ", style="bold")
        out.append(f"{v.label or v.status} alignment={v.alignment} coherence={v.coherence} "
                   f"generalization={v.generalization} confidence={v.confidence} "
                   f"clauses={','.join(v.clause_ids) or '-'}\n")
        out.append(f"  {v.rationale or v.error or ''}\n", style="dim")
    return out


class ReviewApp(App[None]):
    CSS_PATH = "app.tcss"
    TITLE = "overseer review"
    BINDINGS = [
        Binding("q", "quit", "Quit", id="app.quit"),
        Binding("question_mark", "help", "Help", key_display="?", id="app.help"),
        Binding("t", "stats", "Stats", id="app.stats"),
        Binding("v", "versions", "Versions", id="app.versions"),
    ]

    def __init__(self, session: ReviewSession) -> None:
        super().__init__()
        self.session = session
        session.background_memory = True  # edge cases are written by flush_memory's thread worker
        self.improvements: list[str] = []  # outcomes of the background rounds, newest last
        self._memory_waiting = False  # told the reviewer the memory is locked; say it once per wait

    def on_mount(self) -> None:
        if self.session.with_memory:
            self.run_worker(self._resync_memory, thread=True, group="memory", exit_on_error=False)
        self.push_screen(QueueScreen())
        if self.session.current is not None and self.session.current.status == "pending":
            self.push_screen(ItemScreen())  # straight to the next pending item: resume where you stopped

    def on_decision(self, decision: Decision, row: Any) -> None:
        if self.session.blind and row is not None:  # the reveal: what the judges said, now that you decided
            judges = ", ".join(f"{j}={lab}" for j, lab in row.judge_labels) or "none"
            self.notify(f"{row.sample_id}: you {decision.review.label}; judges {judges}", markup=False)
        if decision.memory_error:
            self.notify(f"saved, but not in the memory: {decision.memory_error}", severity="warning", markup=False)
        self.flush_memory()
        if decision.improvement_due:
            self.notify("improvement round started in the background")
            self.run_worker(self._improve(), group="improve", exit_on_error=False)

    # --- the memory: written off the UI thread, in decision order ------------------------------------------
    def flush_memory(self) -> None:
        if self.session.memory_writes.pending:
            self.run_worker(self._flush_memory, thread=True, group="memory", exit_on_error=False)

    def _resync_memory(self) -> None:
        """On a worker thread: edge cases earlier sessions' decisions left out of the memory, written now."""
        try:
            missing = self.session.memory_writes.queue_missing(self.session.store.path)
        except OverseerError as exc:
            self.call_from_thread(self.notify, f"cannot check the memory: {exc}", severity="warning", markup=False)
            return
        if missing:
            self.call_from_thread(self.notify, f"writing {missing} edge case(s) that earlier decisions left out of "
                                  "the memory", markup=False)
            self._flush_memory()

    def _flush_memory(self) -> None:
        """On a worker thread: may wait for the memory's writer lock (tui/memory_writes.py)."""
        problem = self.session.memory_writes.flush()
        self.call_from_thread(self._memory_flushed, problem)

    def _memory_flushed(self, problem: FlushProblem | None) -> None:
        if problem is None:
            if self._memory_waiting:
                self.notify("the memory is free again: every edge case is written", markup=False)
            self._memory_waiting = False
        elif not problem.retry:
            self.notify(f"saved, but not in the memory: {problem.message}", severity="warning", markup=False)
        else:
            if not self._memory_waiting:
                self.notify(f"decisions are saved; their edge cases wait for the memory: {problem.message}",
                            severity="warning", markup=False)
            self._memory_waiting = True
            self.set_timer(1.0, self.flush_memory)

    async def action_quit(self) -> None:
        """Quitting loses nothing: edge cases still queued are written first (the decisions already are)."""
        writes = self.session.memory_writes
        message = None
        if writes.pending:
            self.notify(f"writing {writes.pending} edge case(s) to the memory before quitting…", markup=False)
            problem = await asyncio.to_thread(writes.flush)
            if problem is not None:
                message = (f"{writes.pending} reviewed edge case(s) are not in the memory: {problem.message}. "
                           "Your decisions are saved in the run store; the next `overseer review` writes them.")
        self.exit(message=message)

    async def _improve(self) -> None:
        try:
            message = await self.session.improve()
        except Exception as exc:  # an LLM or config failure must not take the review session down
            message = f"improvement round failed: {exc}"
        self.improvements.append(message)
        self.notify(message, title="improvement", timeout=15, markup=False)

    def action_help(self) -> None:
        shown = list(dict.fromkeys(a.binding for a in self.screen.active_bindings.values()))
        self.push_screen(HelpScreen([b for b in shown if b.description]))

    def action_stats(self) -> None:
        self.push_screen(StatsScreen(self.session.stats()))

    def action_versions(self) -> None:
        self.push_screen(VersionsScreen(VersionsModel(PromptStore(self.session.settings.workspace),
                                                      self.session.store)))

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand("Stats", "Judge vs human agreement, EM rates", self.action_stats)
        yield SystemCommand("Prompt versions", "κ per version, diff, activate, rollback", self.action_versions)
        yield SystemCommand("Help", "All keys of this screen", self.action_help)
