"""The smaller screens: typed modals (note, search, confirm), help, stats and prompt versions."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable, Footer, Input, Label, Static

from overseer.errors import OverseerError
from overseer.providers.scripted import synthetic_note
from overseer.tui.versions import VersionsModel


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
    BINDINGS = [Binding("escape,question_mark,q", "close", "Close", id="help.close")]

    def __init__(self, bindings: list[Binding]) -> None:
        super().__init__()
        self.bindings_shown = bindings

    def compose(self) -> ComposeResult:
        table = Table(title="Keys", show_header=False)
        for b in self.bindings_shown:
            table.add_row(b.key_display or b.key, b.description)
        with VerticalScroll(classes="dialog"):
            yield Static(table)

    def action_close(self) -> None:
        self.dismiss(None)


class StatsScreen(Screen[None]):
    BINDINGS = [Binding("escape,q", "app.pop_screen", "Back", id="stats.back")]

    def __init__(self, stats: dict[str, Any]) -> None:
        super().__init__()
        self.stats = stats

    def compose(self) -> ComposeResult:
        s = self.stats
        kappa = f"{s['kappa']:.3f}" if s["kappa"] is not None else f"undefined ({s['kappa_undefined']})"
        agreement = "n/a" if s["agreement"] is None else f"{s['agreement']:.1%}"
        lines = [f"Judge vs human: {s['n_reviews']} reviews, agreement {agreement}, Cohen's κ {kappa}"]
        for name, key in (("EM rate (betley: refusals, coherence ≤ 50 excluded)", "em_rate_betley"),
                          ("EM rate (all responses)", "em_rate_all"), ("EM rate (emergent only)",
                                                                        "em_rate_emergent_only"),
                          ("Incoherence rate", "incoherence")):
            lines.append(f"{name}: {s[key]}")
        lines.extend(s["em_notes"])
        if s.get("scripted_verdicts"):
            lines.append(synthetic_note(f"{s['scripted_verdicts']} of the judge verdicts in scope are"))
        yield Static(Text("\n".join(lines)), id="stats-summary")
        matrix = Table(title="Confusion (rows = human, columns = judge)")
        matrix.add_column("")
        for label in s["labels"]:
            matrix.add_column(label[:9], justify="right")
        for label, row in zip(s["labels"], s["confusion"], strict=False):
            matrix.add_row(label, *map(str, row))
        yield Static(matrix, id="stats-confusion")
        yield Footer()


class VersionsScreen(Screen[None]):
    BINDINGS = [
        Binding("escape,q", "app.pop_screen", "Back", id="versions.back"),
        Binding("space", "mark", "Mark for diff", id="versions.mark"),
        Binding("d", "diff", "Diff (marked or parent)", id="versions.diff"),
        Binding("A", "activate", "Activate", id="versions.activate"),
        Binding("R", "rollback", "Rollback", id="versions.rollback"),
    ]

    def __init__(self, model: VersionsModel) -> None:
        super().__init__()
        self.model = model
        self.marked: int | None = None

    def compose(self) -> ComposeResult:
        yield DataTable(id="versions", cursor_type="row")
        yield VerticalScroll(Static(id="diff"), id="diff-pane")
        yield Footer()

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
        self.refresh_rows()

    def action_diff(self) -> None:
        version = self._highlighted()
        if version is None:
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

        def done(yes: bool | None) -> None:
            if yes:
                self._apply(lambda: self.model.activate(version))

        self.app.push_screen(ConfirmModal(f"Activate judge prompt v{version}? New verdicts will use it."), done)

    def action_rollback(self) -> None:
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
