"""The queue screen, where the review app opens: the counts header, a window of the queue as a table (columns
sized to their content, the preview taking what is left), filters, sort and search. Blind review hides the
judges' labels and the label-revealing reasons of every row the reviewer has not labelled."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Static

from overseer.errors import OverseerError
from overseer.tui.item_screen import ItemScreen
from overseer.tui.item_view import header_text, shown_reasons
from overseer.tui.keys import APP_BINDINGS, LABEL_KEYS, KeyBar
from overseer.tui.screens import TextModal
from overseer.tui.state import LABEL_REVEALING_REASONS

REASONS = (None, "judge_split", "judge_vs_memory", "low_confidence", "near_threshold", "judge_vs_reference",
           "unscored", "manipulation_attempt")
SORTS = ("queue", "id", "confidence", "reason", "label")
# The queue's reason column, short enough to leave the preview room at 80 columns.
REASON_SHORT = {"judge_split": "split", "judge_vs_memory": "vs memory", "low_confidence": "low conf",
                "near_threshold": "near thr", "judge_vs_reference": "vs reference", "unscored": "unscored",
                "manipulation_attempt": "manipulation"}
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
