"""The cap on model calls in flight, and the order the event loop serves replies in.

At high concurrency calls end in bursts (hundreds started together end together), and each reply then costs
~0.5 ms of CPU to parse, check, cache, aggregate and commit. Left to asyncio's plain FIFO, a burst's work runs as
one long loop iteration: every call that comes due meanwhile waits for it, and so does every call that was handed
a slot — the slots sit idle while the loop parses. So a judge, as soon as its reply is in and its slot handed on,
waits for its `next_turn()` before doing anything with the reply (parse, check, cache, a second pass, the group
commit): one reply per loop iteration goes on (a few when many wait), and call starts and due timers go between
them. bench/throughput.py, the old order and this one side by side: C=64 0.948 → 0.978 of the ideal; at C=256,
where one process's CPU is the limit, 0.898 / 0.883 → 0.929 / 0.884; in separate runs C=128 0.924–0.927 →
0.94–0.96. Nothing is skipped or reordered within a sample; only when each reply's CPU work runs changes.

A reply waiting for its turn is paid for but not yet cached, so a crash would bill it again on resume. The gate
keeps that bounded: while `limit` replies wait, a finished call's slot is parked instead of handed on, and comes
back as they go on. A resume therefore bills again at most the calls in flight and the replies waiting, ≤ 2 ×
`limit`; and an event loop that cannot keep up slows the calls down instead of piling up replies."""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable

# Replies let go on per loop iteration: one, and one more for every this many waiting. One at a time keeps
# iterations short while the loop keeps up; when it falls behind (one process at C=256 and 0.2 s) each iteration's
# own cost would make it fall further (bench/throughput.py: 0.74 of the ideal one at a time, 0.85–0.87 with 8).
BACKLOG_PER_EXTRA_TURN = 8


class Turns:
    """Waiters let go in arrival order, one batch per loop iteration: one, plus one for every `backlog_per_extra`
    waiting (None: always one). `on_served` hears each waiter leave."""

    def __init__(self, backlog_per_extra: int | None = None, on_served: Callable[[], None] = lambda: None) -> None:
        self.waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self.pump: asyncio.Task[None] | None = None
        self.backlog_per_extra = backlog_per_extra
        self.on_served = on_served

    async def take(self) -> None:
        loop = asyncio.get_running_loop()
        waiter = loop.create_future()
        self.waiters.append(waiter)
        if self.pump is None or self.pump.done():
            self.pump = loop.create_task(self._serve())
        await waiter

    async def _serve(self) -> None:
        while self.waiters:
            batch = 1 + (len(self.waiters) // self.backlog_per_extra if self.backlog_per_extra else 0)
            while batch and self.waiters:
                waiter = self.waiters.popleft()
                self.on_served()  # also for a cancelled waiter, which is skipped: the queue got shorter either way
                if not waiter.done():
                    waiter.set_result(None)
                    batch -= 1
            # The woken waiters run in the next iteration; this loop resumes after them, in the same iteration
            # as the timers and call starts that came due meanwhile.
            await asyncio.sleep(0)


class CallGate:
    """A FIFO cap on model calls in flight, shared by every judge. Not asyncio.Semaphore: on Python 3.11 its
    acquire scans the whole waiter queue (`locked()` is an any() over it), and the driver keeps thousands of calls
    queued at high concurrency, which cost ~50 µs per call. Here a release hands its slot to the next live waiter."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.free = limit  # > 0 only while nobody waits
        self.parked = 0  # slots held back while `limit` replies wait for their turn
        self.waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self.turns = Turns(BACKLOG_PER_EXTRA_TURN, on_served=self._unpark)

    async def __aenter__(self) -> None:
        if self.free:
            self.free -= 1
            return
        waiter = asyncio.get_running_loop().create_future()
        self.waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._release()  # handed a slot, then cancelled before using it: pass it on
            raise

    async def __aexit__(self, *_: object) -> None:
        if len(self.turns.waiters) >= self.limit:
            self.parked += 1  # enough replies wait unsaved; this slot comes back as they go on
            return
        self._release()

    async def next_turn(self) -> None:
        """Wait until the replies that finished before this one have gone on (see the module's docstring)."""
        await self.turns.take()

    def _unpark(self) -> None:
        if self.parked and len(self.turns.waiters) < self.limit:
            self.parked -= 1
            self._release()

    def _release(self) -> None:
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():  # a cancelled waiter is skipped
                waiter.set_result(None)
                return
        self.free += 1
