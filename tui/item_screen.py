"""The item screen: one queued item — why it is queued, the reference label, the conversation, the response with
evidence highlighted, each judge's verdict, the cited clauses, similar reviewed cases — and one key per label.
A decision goes to the session's writer thread; the key returns at once and the next item is shown."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Static

from overseer.errors import OverseerError
from overseer.tui.item_view import clauses_text, header_text, highlight, meta_text, similar_text, verdicts_view
from overseer.tui.keys import APP_BINDINGS, LABEL_KEYS, KeyBar
from overseer.tui.screens import TextModal
from overseer.tui.state import ReviewSession
from overseer.types import Label

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
