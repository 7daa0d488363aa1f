"""The review app: the queue screen (where it opens), the item screen, and the screens in screens.py. Widgets
only display the ReviewSession (state.py) and forward keys to it. No key handler waits: store writes go to one
writer thread (store_writes.py), memory writes to another, and a due improvement round is recorded and run by a
background `overseer improve` process (improvements.py) — the app never calls a model."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterable
from typing import Any

from rich.text import Text
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Static

from overseer.errors import OverseerError
from overseer.prompt_store import PromptStore
from overseer.tui import improvements
from overseer.tui.item_view import clauses_text, highlight, meta_text, shown_reasons, similar_text, verdicts_view
from overseer.tui.keys import KeyBar, help_groups
from overseer.tui.memory_writes import FlushProblem
from overseer.tui.screens import (
    STATS_BINDINGS,
    VERSIONS_BINDINGS,
    HelpScreen,
    StatsScreen,
    TextModal,
    VersionsScreen,
)
from overseer.tui.state import LABEL_REVEALING_REASONS, Decision, ReviewSession
from overseer.tui.store_writes import StoreWriter
from overseer.tui.versions import VersionsModel
from overseer.types import Label

LABEL_KEYS: dict[str, Label] = {"a": "aligned", "m": "misaligned", "r": "refusal", "i": "incoherent", "o": "off_task"}
REASONS = (None, "judge_split", "judge_vs_memory", "low_confidence", "near_threshold", "judge_vs_reference",
           "unscored", "manipulation_attempt")
SORTS = ("queue", "id", "confidence", "reason", "label")
# The queue's reason column, short enough to leave the preview room at 80 columns.
REASON_SHORT = {"judge_split": "split", "judge_vs_memory": "vs memory", "low_confidence": "low conf",
                "near_threshold": "near thr", "judge_vs_reference": "vs reference", "unscored": "unscored",
                "manipulation_attempt": "manipulation"}
APP_BINDINGS = [
    Binding("q", "quit", "Quit", id="app.quit"),
    Binding("question_mark", "help", "Help", key_display="?", id="app.help"),
    Binding("t", "stats", "Stats", id="app.stats"),
    Binding("v", "versions", "Versions", id="app.versions"),
]


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


def short_id(sample_id: str, width: int) -> str:
    """Long ids (content hashes) keep their head and tail: the part a reviewer recognises."""
    if len(sample_id) <= width:
        return sample_id
    head = (width - 1) // 2
    return f"{sample_id[:head]}…{sample_id[len(sample_id) - (width - 1 - head):]}"


QUEUE_BINDINGS = [
        Binding("enter", "open", "Open", id="queue.open"),
        Binding("slash", "search", "Search", key_display="/", id="queue.search"),
        Binding("f", "cycle_reason", "Reason", id="queue.reason"),
        Binding("l", "cycle_label", "Judge label", id="queue.label"),
        Binding("c", "clause", "Clause", id="queue.clause"),
        Binding("S", "cycle_sort", "Sort", id="queue.sort"),
        Binding("j", "move(1)", "Down", show=False, id="queue.down"),
        Binding("k", "move(-1)", "Up", show=False, id="queue.up"),
]


def clip(text: str, width: int) -> str:
    """One line of at most `width` characters, cut at a word boundary with an ellipsis."""
    flat = " ".join(text.split())
    if len(flat) <= width:
        return flat
    cut = flat[:width - 1]
    return (cut.rsplit(" ", 1)[0] if " " in cut else cut) + "…"


# The queue table holds a window: rows above the cursor, and rows below it (more are added as the cursor nears
# the end). A DataTable measures every row it holds, so the window is a few screens, not the whole queue.
WINDOW_BEFORE = 30
WINDOW_AFTER = 100


class QueueScreen(Screen[None]):
    BINDINGS = [*QUEUE_BINDINGS]
    FOOTER = ("app.quit", "app.help", "queue.open", "queue.search", "queue.reason", "app.stats", "app.versions",
              "queue.label", "queue.sort", "queue.clause")

    def compose(self) -> ComposeResult:
        yield Static(id="counts", classes="header")
        yield DataTable(id="queue", cursor_type="row")
        self._first = self._loaded = 0  # the table's first row is queue item `_first`
        self._width = 0
        yield KeyBar([*QUEUE_BINDINGS, *APP_BINDINGS], self.FOOTER)

    def on_mount(self) -> None:
        self._width = self.size.width

    def on_screen_resume(self) -> None:
        self.reload()  # shown first, or back from an item: statuses, counts and the cursor moved

    def on_resize(self) -> None:
        if self.size.width != self._width:  # the preview column takes what the others leave
            self._width = self.size.width
            self.reload()

    def reload(self) -> None:
        """Show a window of rows: a few before the cursor and one page after it (the table holds the window, not
        the whole queue: resuming at item 5,000 of 10,000 must not build 5,000 rows). Moving past either end of
        the window reloads it around the cursor."""
        s = self.app.session  # type: ignore[attr-defined]
        self.query_one("#counts", Static).update(header_text(s))
        table = self.query_one("#queue", DataTable)
        table.clear(columns=True)
        self._first = max(0, s.cursor - WINDOW_BEFORE)
        rows = s.rows(self._first, s.cursor - self._first + WINDOW_AFTER)
        self._widths = self._column_widths(rows)
        for name, width in zip(("status", "reason", "id", "judges", "human", "preview"), self._widths, strict=True):
            table.add_column(name, width=width)
        self._loaded = self._first
        self._extend(s.cursor + WINDOW_AFTER)
        if s.total:
            table.move_cursor(row=s.cursor - self._first)

    def _column_widths(self, rows: list[Any]) -> list[int]:
        s = self.app.session  # type: ignore[attr-defined]
        status = 7
        reason = min(14, max([6, *(len(self._reason(r)) for r in rows)]))
        sample = min(16, max([2, *(len(r.sample_id) for r in rows)]))
        judges = min(14, max([6, *(len(self._judges(r)) for r in rows)]))
        human = max([5, *(len(r.human_label or "") for r in rows)]) if any(r.human_label for r in rows) or \
            s.blind else 5
        fixed = status + reason + sample + judges + human
        # Each column has one cell of padding either side; one column more for the scrollbar.
        preview = max(10, self.size.width - fixed - 2 * 6 - 2)
        return [status, reason, sample, judges, human, preview]

    def _reason(self, row: Any) -> str:
        reasons = shown_reasons(row.reasons, self._revealed(row))
        if not reasons:
            return "hidden" if row.reasons else ""
        first = REASON_SHORT.get(reasons[0], reasons[0])
        return first + (f" +{len(reasons) - 1}" if len(reasons) > 1 else "")

    def _revealed(self, row: Any) -> bool:
        return not self.app.session.blind or row.human_label is not None  # type: ignore[attr-defined]

    def _judges(self, row: Any) -> str:
        if not self._revealed(row):
            return "hidden"
        labels = [label for _, label in row.judge_labels]
        if len(set(labels)) <= 1:
            return (labels[0] if labels else "-") + (f" ×{len(labels)}" if len(labels) > 1 else "")
        return "/".join(labels)

    def _extend(self, upto: int) -> None:
        s, table = self.app.session, self.query_one("#queue", DataTable)  # type: ignore[attr-defined]
        width = self._widths
        for row in s.rows(self._loaded, max(0, upto - self._loaded)):
            table.add_row(s.status_of(row), self._reason(row), short_id(row.sample_id, width[2]),
                          self._judges(row)[:width[3]], row.human_label or "", Text(clip(row.preview, width[5])),
                          key=str(row.index))
        self._loaded = self._first + table.row_count

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        s = self.app.session  # type: ignore[attr-defined]
        if event.row_key.value is None:
            return
        # The row key is the queue index: right even for a message a reload posted before it cleared the table
        # (messages arrive in order, so the reload's own cursor move comes last).
        index = int(event.row_key.value)
        table = self.query_one("#queue", DataTable)
        if index >= self._loaded - 5 and self._loaded < s.total:
            self._extend(self._loaded + WINDOW_AFTER)
        s.goto(index)
        if table.cursor_row == 0 and self._first > 0 and index == self._first:
            self.call_after_refresh(self.reload)  # at the top of the window: earlier rows around the cursor

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_open()

    def action_open(self) -> None:
        if self.app.session.current is None:  # type: ignore[attr-defined]
            self.notify("the queue is empty (with this filter): nothing to open", markup=False)
            return
        self.app.push_screen(ItemScreen())

    def action_move(self, delta: int) -> None:
        table = self.query_one("#queue", DataTable)
        if table.cursor_row + delta < 0 and self._first == 0 or self._first + table.cursor_row + delta >= \
                self.app.session.total:  # type: ignore[attr-defined]
            self.notify("first item of the queue" if delta < 0 else "last item of the queue", markup=False)
            return
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
        s = self.app.session  # type: ignore[attr-defined]
        choices = [r for r in REASONS if not (s.blind and r in LABEL_REVEALING_REASONS)]
        at = choices.index(s.filter.reason) if s.filter.reason in choices else -1
        self._refilter(reason=choices[(at + 1) % len(choices)])

    def action_cycle_label(self) -> None:
        s = self.app.session  # type: ignore[attr-defined]
        if s.blind:
            self.notify("blind review: filtering by the judges' label would reveal it", markup=False)
            return
        labels = (None, *LABEL_KEYS.values(), "unscored")
        self._refilter(label=labels[(labels.index(s.filter.label) + 1) % len(labels)]
                       if s.filter.label in labels else None)

    def action_cycle_sort(self) -> None:
        s = self.app.session  # type: ignore[attr-defined]
        choices = [x for x in SORTS if not (s.blind and x in ("label", "confidence"))]  # those order by the judges
        at = choices.index(s.filter.sort) if s.filter.sort in choices else -1
        self._refilter(sort=choices[(at + 1) % len(choices)])


ITEM_BINDINGS = [
        *(Binding(key, f"decide('{label}')", label.replace("_", "-"), id=f"item.{label}")
          for key, label in LABEL_KEYS.items()),
        Binding("escape", "app.pop_screen", "Queue", key_display="esc", id="item.queue"),
        Binding("n", "note", "Note", id="item.note"),
        Binding("g", "generalization", "Generalization", id="item.generalization"),
        Binding("e", "promote", "Promote", id="item.promote"),
        Binding("s", "skip", "Skip", id="item.skip"),
        Binding("u", "undo", "Undo", id="item.undo"),
        Binding("j,down", "move(1)", "Next", key_display="j", id="item.next"),
        Binding("k,up", "move(-1)", "Previous", key_display="k", id="item.previous"),
]


class ItemScreen(Screen[None]):
    BINDINGS = [*ITEM_BINDINGS]
    FOOTER = ("app.quit", "app.help", "item.aligned", "item.misaligned", "item.refusal", "item.incoherent",
              "item.off_task", "item.queue", "item.note", "item.skip", "item.undo", "item.generalization",
              "item.promote", "item.next", "item.previous", "app.stats", "app.versions")

    def compose(self) -> ComposeResult:
        yield Static(id="counts", classes="header")
        with VerticalScroll(id="item"):
            yield Static(id="meta")
            yield Static(id="conversation", classes="box")
            yield Static(id="response", classes="box")
            yield Static(id="verdicts", classes="box")
            yield Static(id="clauses", classes="box")
            yield Static(id="similar", classes="box")
        yield KeyBar([*ITEM_BINDINGS, *APP_BINDINGS], self.FOOTER)

    def on_mount(self) -> None:
        for box, title in (("conversation", "prompt"), ("response", "response"), ("verdicts", "verdicts"),
                           ("clauses", "cited clauses"), ("similar", "similar cases")):
            self.query_one(f"#{box}").border_title = title
        self.show()

    def show(self, *, scroll_home: bool = True) -> None:
        s: ReviewSession = self.app.session  # type: ignore[attr-defined]
        self.query_one("#counts", Static).update(header_text(s))
        try:
            detail = s.detail()
        except OverseerError as exc:
            self.notify(str(exc), severity="error", markup=False)
            detail = None
        if detail is None:
            self.query_one("#meta", Static).update("The queue is empty: esc for the queue, q to quit.")
            for box in ("conversation", "response", "verdicts", "clauses", "similar"):
                self.query_one(f"#{box}").display = False
            return
        revealed = s.revealed(detail)
        self.query_one("#meta", Static).update(meta_text(s, detail))
        self.query_one("#conversation", Static).update(Text(detail.sample.context_text() or "(no prompt)"))
        evidence = [q for v in detail.result.verdicts for q in v.evidence] if revealed else []
        self.query_one("#response", Static).update(highlight(detail.sample.response, evidence))
        self.query_one("#verdicts", Static).update(verdicts_view(detail) if revealed else Text(
            "Blind review: the judges' verdicts are hidden until you label this item.", style="italic"))
        self.query_one("#clauses", Static).update(clauses_text(detail) if revealed else Text(""))
        self.query_one("#similar", Static).update(similar_text(detail, revealed, self.size.width))
        for box in ("conversation", "response", "verdicts"):
            self.query_one(f"#{box}").display = True
        self.query_one("#similar").display = bool(detail.similar)  # no empty boxes
        self.query_one("#clauses").display = revealed and bool(detail.clauses)
        if scroll_home:
            self.query_one("#item", VerticalScroll).scroll_home(animate=False)

    def refresh_header(self) -> None:
        self.query_one("#counts", Static).update(header_text(self.app.session))  # type: ignore[attr-defined]

    def action_decide(self, label: Label) -> None:
        s: ReviewSession = self.app.session  # type: ignore[attr-defined]
        row = s.current
        try:
            s.decide(label, done=lambda result: self.app.on_decision(result, row))  # type: ignore[attr-defined]
        except OverseerError as exc:
            self.notify(str(exc), severity="error", markup=False)
            return
        self.show()

    def action_generalization(self) -> None:
        if self._empty():
            return
        level = self.app.session.cycle_generalization()  # type: ignore[attr-defined]
        self.notify(f"generalization: {level or 'none'} (g again for the next level; kept until you label)",
                    markup=False)
        self.show(scroll_home=False)

    def action_promote(self) -> None:
        if self._empty():
            return
        app = self.app
        on = app.session.toggle_promote()  # type: ignore[attr-defined]
        if not getattr(app, "promote_explained", False):
            app.promote_explained = True  # type: ignore[attr-defined]
            self.notify("promote: this decision's edge case is flagged as an exemplary case in the memory, for "
                        "curating it (every decision becomes a reviewed edge case either way). e again to unmark.",
                        timeout=10, markup=False)
        else:
            self.notify("promote: on" if on else "promote: off", markup=False)
        self.show(scroll_home=False)

    def action_note(self) -> None:
        if self._empty():
            return

        def done(note: str | None) -> None:
            if note:
                self.app.session.set_note(note)  # type: ignore[attr-defined]
                self.show(scroll_home=False)

        self.app.push_screen(TextModal("Note (the edge case's rationale; kept as a draft until you label)",
                                       self.app.session.draft_note or ""), done)  # type: ignore[attr-defined]

    def action_skip(self) -> None:
        s: ReviewSession = self.app.session  # type: ignore[attr-defined]
        if self._empty():
            return
        draft = s.draft()
        skipped = s.skip(done=self.app.on_write_failed)  # type: ignore[attr-defined]
        if skipped is not None and not draft.empty():
            self.notify(f"skipped {skipped.sample_id}; its draft (note / generalization / promote) is kept on it",
                        markup=False)
        self.show()

    def action_undo(self) -> None:
        def done(result: Any) -> None:
            if isinstance(result, Exception):
                self.notify(f"undo failed: {result}", severity="error", markup=False)
                return
            self.app.flush_memory()  # type: ignore[attr-defined]
            self.notify(f"undid {result.label} on {result.sample_id}" if result else
                        "nothing to undo: no decision of yours is active in this queue", markup=False)
            if self.is_current:
                self.show()

        self.app.session.undo(done=done)  # type: ignore[attr-defined]

    def action_move(self, delta: int) -> None:
        s: ReviewSession = self.app.session  # type: ignore[attr-defined]
        before = s.cursor
        s.move(delta)
        if s.cursor == before:
            self.notify("first item of the queue" if delta < 0 else "last item of the queue", markup=False)
            return
        self.show()

    def _empty(self) -> bool:
        if self.app.session.current is None:  # type: ignore[attr-defined]
            self.notify("the queue is empty: nothing to do here", markup=False)
            return True
        return False


class ReviewApp(App[None]):
    CSS_PATH = "app.tcss"
    TITLE = "overseer review"
    BINDINGS = [*APP_BINDINGS]

    def __init__(self, session: ReviewSession) -> None:
        super().__init__()
        self.session = session
        session.background_memory = True  # edge cases are written by flush_memory's thread worker
        self.improvements: list[str] = []  # outcomes of the background rounds, newest last
        self._memory_waiting = False  # told the reviewer the memory is locked; say it once per wait
        self._store_waiting = False  # the same for the run store
        self._quitting = threading.Event()
        self.promote_explained = False
        self.notices: list[str] = []  # every notification shown, oldest first (what the reviewer was told)

    def notify(self, message: str, *args: Any, **kwargs: Any) -> None:
        self.notices.append(message)
        super().notify(message, *args, **kwargs)

    def on_mount(self) -> None:
        self.session.writer = StoreWriter(self.session.store.path, on_locked=self._store_locked)
        self.session.call_in_ui = self.call_from_thread
        if self.session.with_memory:
            self.run_worker(self._resync_memory, thread=True, group="memory", exit_on_error=False)
        self.push_screen(QueueScreen())  # the cursor is on the next pending item: enter resumes there
        self._resume_rounds()
        # The stats screen's slow half (every result of the runs in scope), ready before the reviewer asks.
        self.run_worker(self.session.run_stats, thread=True, group="stats", exit_on_error=False)

    # --- the run store: written by the session's writer thread ----------------------------------------------
    def _store_locked(self, pending: int) -> None:
        """On the writer thread, once per lock wait."""
        self._store_waiting = True
        self.call_from_thread(self.notify, f"the run store is locked by another process: {pending} write(s) wait "
                              "and will be saved in order when it frees", severity="warning", markup=False)

    def on_decision(self, result: Decision | Exception, row: Any) -> None:
        """On the UI thread, once the decision is committed (or failed)."""
        if isinstance(result, Exception):
            self.notify(f"NOT saved: {row.sample_id if row else 'decision'}: {result}", severity="error",
                        markup=False)
            self._refresh_screen()
            return
        if self._store_waiting:
            self._store_waiting = False
            self.notify("the run store is free again: decisions saved", markup=False)
        if self.session.blind and row is not None:  # the reveal: what the judges said, now that you decided
            judges = ", ".join(f"{j}={lab}" for j, lab in row.judge_labels) or "none"
            self.notify(f"{row.sample_id}: you {result.review.label}; judges {judges}", markup=False)
        if result.memory_error:
            self.notify(f"saved, but not in the memory: {result.memory_error}", severity="warning", markup=False)
        self.flush_memory()
        if result.improvement_due:
            self.request_improvement()
        self._refresh_screen()

    def on_write_failed(self, result: Any) -> None:
        if isinstance(result, Exception):
            self.notify(f"NOT saved: {result}", severity="error", markup=False)
        self._refresh_screen()

    def _refresh_screen(self) -> None:
        screen = self.screen
        if isinstance(screen, ItemScreen):
            screen.refresh_header()
        elif isinstance(screen, QueueScreen):
            screen.reload()

    # --- improvement rounds: recorded here, run by `overseer improve` in the background ----------------------
    def request_improvement(self) -> None:
        s = self.session
        reviews = s.store.count_reviews()

        def recorded(request_id: Any) -> None:
            if isinstance(request_id, Exception):
                self.notify(f"could not record the improvement round: {request_id}", severity="error", markup=False)
                return
            try:
                round_ = s.start_improvement(request_id, reviews)
            except (OSError, OverseerError) as exc:
                self.notify(f"improvement round not started: {exc}; run `overseer improve` yourself",
                            severity="error", markup=False)
                return
            self.notify(f"improvement round started in the background (`overseer improve`, pid {round_.pid})",
                        markup=False)
            self._watch(round_)

        s.write(lambda store: store.request_improvement(reviews), recorded)

    def _resume_rounds(self) -> None:
        """Rounds an earlier session started: watch those still running, report those that ended meanwhile."""
        from pathlib import Path

        for request in self.session.store.improvement_requests("running"):
            if request.log_path:
                self._watch(improvements.Round(request.id, Path(request.log_path), pid=request.pid))

    def _watch(self, round_: improvements.Round) -> None:
        def wait() -> None:
            code = improvements.wait(round_, self._quitting.is_set)
            if code is not None:
                self.call_from_thread(self._round_finished, round_, code)

        self.run_worker(wait, thread=True, group="improve", exit_on_error=False)

    def _round_finished(self, round_: improvements.Round, code: int) -> None:
        status, message = self.session.finish_improvement(round_, code)
        self.improvements.append(message)
        self.notify(message, title="improvement", timeout=15, markup=False,
                    severity="error" if status == "failed" else "information")

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
        if not self._quitting.is_set():
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
        """Quitting loses nothing: the decisions still queued are committed first, then their edge cases are
        written to the memory. A background improvement round goes on; the next session shows its outcome."""
        writer = self.session.writer
        if writer is not None and writer.pending:
            self.notify(f"saving {writer.pending} decision(s) before quitting…", markup=False)
            await asyncio.to_thread(writer.drain)
        self._quitting.set()
        writes = self.session.memory_writes
        message = None
        if writes.pending:
            self.notify(f"writing {writes.pending} edge case(s) to the memory before quitting…", markup=False)
            problem = await asyncio.to_thread(writes.flush)
            if problem is not None:
                message = (f"{writes.pending} reviewed edge case(s) are not in the memory: {problem.message}. "
                           "Your decisions are saved in the run store; the next `overseer review` writes them.")
        await asyncio.to_thread(self.session.close)
        self.exit(message=message)

    def action_help(self) -> None:
        screen = self.screen
        groups: list[tuple[str, list[Binding]]] = [
            ("Item screen (one item: label it)", ITEM_BINDINGS),
            ("Queue screen (where the app opens)", QUEUE_BINDINGS),
            ("Stats screen", STATS_BINDINGS),
            ("Prompt versions screen", VERSIONS_BINDINGS),
        ]
        current = {ItemScreen: 0, QueueScreen: 1, StatsScreen: 2, VersionsScreen: 3}.get(type(screen), 0)
        everywhere = ("Everywhere", [*APP_BINDINGS, Binding("ctrl+p", "command_palette",
                                                            "Command palette (themes too)")])
        # This screen's keys, then the app's (t, v, q, ?), then the other screens': the first page has both.
        groups = [groups.pop(current), everywhere, *groups]
        self.push_screen(HelpScreen(help_groups(groups)))

    def action_stats(self) -> None:
        self.push_screen(StatsScreen(self.session.review_stats(), self.session.run_stats))

    def action_versions(self) -> None:
        self.push_screen(VersionsScreen(VersionsModel(PromptStore(self.session.settings.workspace),
                                                      self.session.store)))

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand("Stats", "Judge vs human agreement, EM rates", self.action_stats)
        yield SystemCommand("Prompt versions", "κ per version, diff, activate, rollback", self.action_versions)
        yield SystemCommand("Help", "All keys, grouped by screen", self.action_help)
