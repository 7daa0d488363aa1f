"""The key bar (the footer) and the help screen's key groups. Textual's footer shows every binding in order and
cuts the line at the edge, mid-word; this bar picks the bindings by importance until the width is used, whole
words only, and always keeps `?` (help, which lists the rest) and `q`."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.binding import Binding
from textual.widgets import Static

from overseer.types import Label

# Between two keys on the bar.
GAP = "  "
# One key per label on the item screen (the queue's label filter cycles through the same labels).
LABEL_KEYS: dict[str, Label] = {"a": "aligned", "m": "misaligned", "r": "refusal", "i": "incoherent", "o": "off_task"}
# The app's own keys, on every screen.
APP_BINDINGS = [
    Binding("q", "quit", "Quit", id="app.quit"),
    Binding("question_mark", "help", "Help", key_display="?", id="app.help"),
    Binding("t", "stats", "Stats", id="app.stats"),
    Binding("v", "versions", "Versions", id="app.versions"),
]


def binding_text(binding: Binding) -> str:
    return f"{binding.key_display or binding.key} {binding.description}"


def fit(bindings: Sequence[Binding], priority: Sequence[str], width: int) -> list[Binding]:
    """The bindings whose ids are in `priority`, most important first, as many as fit in `width` columns;
    returned in their own (screen) order so the bar reads the same at every width."""
    by_id = {b.id: b for b in bindings if b.id}
    chosen: set[str] = set()
    used = 0
    for binding_id in priority:
        binding = by_id.get(binding_id)
        if binding is None:
            continue
        need = len(binding_text(binding)) + (len(GAP) if chosen else 0)
        if used + need <= width:
            chosen.add(binding_id)
            used += need
    return [b for b in bindings if b.id in chosen]


class KeyBar(Static):
    """The footer: `priority` lists binding ids, most important first."""

    DEFAULT_CSS = "KeyBar { dock: bottom; height: 1; padding: 0 1; background: $panel; }"

    def __init__(self, bindings: Sequence[Binding], priority: Sequence[str]) -> None:
        super().__init__(id="keybar")
        self.all_bindings, self.priority = list(bindings), list(priority)

    def on_resize(self) -> None:
        self.refresh()

    def render(self) -> Text:
        out = Text(no_wrap=True, overflow="crop")
        for n, binding in enumerate(fit(self.all_bindings, self.priority, max(0, self.size.width - 2))):
            if n:
                out.append(GAP)
            out.append(binding.key_display or binding.key, style="bold reverse")
            out.append(f" {binding.description}")
        return out


def help_groups(groups: Sequence[tuple[str, Sequence[Binding]]]) -> Text:
    """Every overseer key, grouped by screen (the current screen's group first), then the notes that explain
    the less obvious ones."""
    out = Text()
    for title, bindings in groups:
        out.append(f"{title}\n", style="bold underline")
        for b in bindings:
            if b.description:
                out.append(f"  {(b.key_display or b.key):<8}", style="bold")
                out.append(f" {b.description}\n")
        out.append("\n")
    out.append("Notes\n", style="bold underline")
    for note in NOTES:
        out.append(f"  {note}\n")
    return out


NOTES = (
    "A decision is saved by a background writer: the key returns at once, the header says when it is saved,",
    "  and q waits for every decision to be saved before quitting.",
    "e (promote) marks the decision as an exemplary case: its edge case in the memory is flagged promoted, for",
    "  curating the memory. Every decision becomes a reviewed edge case either way.",
    "n (note) and g (generalization) are a draft on the item until you label it: moving on or s (skip) keeps it.",
    "--blind hides the judges' labels, the reference label and the reasons that reveal them until you label.",
    "Every --learn-every decisions an improvement round is recorded and run by a background `overseer improve`;",
    "  the app shows its outcome when it lands (or run `overseer improve` yourself).",
)
