"""The smaller screens: typed modals (note, search, confirm), help, stats and prompt versions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich import box
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable, Input, Label, Static

from overseer.errors import OverseerError
from overseer.providers.scripted import synthetic_note
from overseer.tui.keys import KeyBar
from overseer.tui.versions import VersionsModel

# The app's own keys, at the end of every screen's key bar (the app module defines the bindings).
APP_IDS = ("app.quit", "app.help")


class TextModal(ModalScreen[str]):
    """One line of text (a note, a search); escape dismisses with the empty string (= no change)."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="modal.cancel")]

    def __init__(self, title: str, value: str = "") -> None:
        super().__init__()
        self.title_text, self.value = title, value

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.title_text)
            yield Input(value=self.value, id="text")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss("")


class ConfirmModal(ModalScreen[bool]):
    BINDINGS = [Binding("y", "answer(True)", "Yes", id="confirm.yes"),
                Binding("n,escape", "answer(False)", "No", id="confirm.no")]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.question)
            yield Label("y = yes, n = no", classes="hint")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class HelpScreen(ModalScreen[None]):
    """overseer's keys grouped by screen (keys.help_groups), the current screen's first."""

    BINDINGS = [Binding("escape,question_mark,q", "close", "Close", id="help.close")]

    def __init__(self, text: Text) -> None:
        super().__init__()
        self.text = text

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog", id="help"):
            yield Static(Text("Keys — esc, ? or q closes\n", style="bold"))
            yield Static(self.text)

    def action_close(self) -> None:
        self.dismiss(None)


def _kappa(value: float | None, undefined: str | None) -> str:
    return f"{value:.3f}" if value is not None else f"undefined ({undefined})"


def _share(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


STATS_BINDINGS = [Binding("escape", "app.pop_screen", "Back", key_display="esc", id="stats.back")]


class StatsScreen(Screen[None]):
    """Opens at once with the review numbers; the EM rates (every result of the runs in scope) arrive from a
    worker thread."""

    BINDINGS = [*STATS_BINDINGS]

    def __init__(self, review: dict[str, Any], run: Callable[[], dict[str, Any]]) -> None:
        super().__init__()
        self.review, self.run = review, run

    def compose(self) -> ComposeResult:
        s = self.review
        with VerticalScroll(id="stats"):
            yield Static(self._summary(), id="stats-summary")
            # box.SIMPLE_HEAD and one space of padding: seven full label names fit in 80 columns.
            matrix = Table(title="Confusion (rows = human, columns = judge)", title_justify="left",
                           box=box.SIMPLE_HEAD, padding=(0, 1), pad_edge=False)
            matrix.add_column("human", no_wrap=True)
            for label in s["labels"]:
                matrix.add_column(label.replace("_", "-"), justify="right", no_wrap=True, min_width=len(label))
            for label, row in zip(s["labels"], s["confusion"], strict=False):
                matrix.add_row(label.replace("_", "-"), *map(str, row))
            yield Static(matrix, id="stats-confusion")
            for title, key, first in (("Per reviewer", "by_reviewer", "reviewer"),
                                      ("Per review reason", "by_reason", "reason")):
                table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, padding=(0, 1),
                              pad_edge=False)
                for column in (first, "reviews", "agreement", "κ"):
                    table.add_column(column, no_wrap=True, justify="left" if column == first else "right")
                for g in s.get(key, []):
                    table.add_row(g["name"], str(g["n"]), _share(g["agreement"]),
                                  _kappa(g["kappa"], g["kappa_undefined"]))
                yield Static(table, id=f"stats-{key.replace('_', '-')}")
            yield Static(Text("EM rates of the runs in scope: computing…", style="italic"), id="stats-rates")
        yield KeyBar([*STATS_BINDINGS, *self.app.BINDINGS], ("stats.back", *APP_IDS))  # type: ignore[list-item]

    def _summary(self, scripted: int = 0) -> Text:
        s = self.review
        text = Text(f"Judge vs human: {s['n_reviews']} reviews, agreement {_share(s['agreement'])}, Cohen's κ "
                    f"{_kappa(s['kappa'], s['kappa_undefined'])}")
        if scripted:  # next to the κ it qualifies
            text.append("\n" + synthetic_note(f"{scripted} of the judge verdicts in scope are"))
        return text

    def on_mount(self) -> None:
        self.run_worker(self._compute_rates, thread=True, group="stats", exit_on_error=False)

    def _compute_rates(self) -> None:
        try:
            run = self.run()
        except Exception as exc:  # the review numbers above stay useful; say why the rates are missing
            self.app.call_from_thread(self._show_rates, Text(f"EM rates unavailable: {exc}"), 0)
            return
        self.app.call_from_thread(self._show_rates, rates_text(run), run.get("scripted_verdicts") or 0)

    def _show_rates(self, text: Text, scripted: int) -> None:
        if self.is_attached:  # the reviewer may have left the screen meanwhile
            self.query_one("#stats-rates", Static).update(text)
            self.query_one("#stats-summary", Static).update(self._summary(scripted))


def rates_text(s: dict[str, Any]) -> Text:
    lines = []
    for name, key in (("EM rate (betley: refusals, coherence ≤ 50 excluded)", "em_rate_betley"),
                      ("EM rate (all responses)", "em_rate_all"), ("EM rate (emergent only)", "em_rate_emergent_only"),
                      ("Incoherence rate", "incoherence")):
        lines.append(f"{name}: {s[key]}")
    lines.extend(s["em_notes"])
    return Text("\n".join(lines))


VERSIONS_BINDINGS = [
        Binding("escape", "app.pop_screen", "Back", key_display="esc", id="versions.back"),
        Binding("space", "mark", "Mark for diff", id="versions.mark"),
        Binding("d", "diff", "Diff (marked or parent)", id="versions.diff"),
        Binding("A", "activate", "Activate", id="versions.activate"),
        Binding("R", "rollback", "Rollback", id="versions.rollback"),
]


class VersionsScreen(Screen[None]):
    BINDINGS = [*VERSIONS_BINDINGS]
    FOOTER = ("versions.back", *APP_IDS, "versions.diff", "versions.activate", "versions.rollback", "versions.mark")

    def __init__(self, model: VersionsModel) -> None:
        super().__init__()
        self.model = model
        self.marked: int | None = None

    def compose(self) -> ComposeResult:
        yield DataTable(id="versions", cursor_type="row")
        yield VerticalScroll(Static(id="diff"), id="diff-pane")
        yield KeyBar([*VERSIONS_BINDINGS, *self.app.BINDINGS], self.FOOTER)  # type: ignore[list-item]

    def on_mount(self) -> None:
        self.refresh_rows()

    def refresh_rows(self) -> None:
        table = self.query_one("#versions", DataTable)
        table.clear(columns=True)
        table.add_columns("version", "parent", "by", "κ (validation)", "status", "ref")
        for r in self.model.rows():
            table.add_row(f"v{r.version}" + (" *" if r.version == self.marked else ""), r.parent or "-",
                          r.created_by, "-" if r.kappa is None else f"{r.kappa:.3f}", r.status, r.ref,
                          key=str(r.version))
        rejected = self.model.rejected()
        if rejected:
            self.query_one("#diff", Static).update(Text("rejected candidates:\n" + "\n".join(
                f"  {c['round_id']}: {c['status']} — {c['reason']}" for c in rejected[-5:])))

    def _highlighted(self) -> int | None:
        table = self.query_one("#versions", DataTable)
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return int(key) if key else None

    def action_mark(self) -> None:
        self.marked = self._highlighted()
        self.notify(f"v{self.marked} marked: move to another version and press d to diff the two", markup=False)
        self.refresh_rows()

    def action_diff(self) -> None:
        version = self._highlighted()
        if version is None:
            self.notify("no prompt versions to diff", markup=False)
            return
        other = self.marked if self.marked not in (None, version) else self.model.prompts.get(version).parent
        if other is None:
            self.notify("v1 has no parent: mark another version with space first")
            return
        self.query_one("#diff", Static).update(Text(self.model.diff(other, version)))

    def action_activate(self) -> None:
        version = self._highlighted()
        if version is None:
            return
        if version == self.model.prompts.active().version:
            self.notify(f"v{version} is already the active judge prompt", markup=False)
            return

        def done(yes: bool | None) -> None:
            if yes:
                self._apply(lambda: self.model.activate(version))

        self.app.push_screen(ConfirmModal(f"Activate judge prompt v{version}? New verdicts will use it."), done)

    def action_rollback(self) -> None:
        if not self.model.can_roll_back():
            self.notify(f"only v{self.model.prompts.active().version} has been active: nothing to roll back to",
                        markup=False)
            return

        def done(yes: bool | None) -> None:
            if yes:
                self._apply(self.model.rollback)

        self.app.push_screen(ConfirmModal("Roll back to the previously active judge prompt?"), done)

    def _apply(self, change: Any) -> None:
        try:
            prompt = change()
        except OverseerError as exc:
            self.notify(str(exc), severity="error", markup=False)
            return
        self.notify(f"active judge prompt: v{prompt.version}")
        self.refresh_rows()
