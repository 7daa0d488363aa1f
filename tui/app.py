"""The review app: it opens on the queue screen (queue_screen.py); the item screen (item_screen.py) and the
smaller screens (screens.py) are pushed from there. Widgets only display the ReviewSession (state.py) and
forward keys to it. No key handler waits: store writes go to one writer thread (store_writes.py), memory writes
to another, and a due improvement round is recorded and run by a background `overseer improve` process
(improvements.py) — the app never calls a model."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterable
from typing import Any

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen

from overseer.errors import OverseerError
from overseer.prompt_store import PromptStore
from overseer.tui import improvements
from overseer.tui.item_screen import ITEM_BINDINGS, ItemScreen
from overseer.tui.keys import APP_BINDINGS, help_groups
from overseer.tui.memory_writes import FlushProblem
from overseer.tui.queue_screen import QUEUE_BINDINGS, QueueScreen
from overseer.tui.screens import (
    STATS_BINDINGS,
    VERSIONS_BINDINGS,
    HelpScreen,
    StatsScreen,
    VersionsScreen,
)
from overseer.tui.state import Decision, ReviewSession
from overseer.tui.store_writes import StoreWriter
from overseer.tui.versions import VersionsModel

__all__ = ["APP_BINDINGS", "ITEM_BINDINGS", "QUEUE_BINDINGS", "ItemScreen", "QueueScreen", "ReviewApp"]


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
