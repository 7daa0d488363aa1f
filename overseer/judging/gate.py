"""The cap on model calls in flight, and the order the event loop serves replies in.

At high concurrency calls end in bursts (hundreds started together end together), and each reply then costs
~0.5 ms of CPU to parse, check, cache, aggregate and commit. Left to asyncio's plain FIFO, a burst's work runs as
one long loop iteration: every call that comes due meanwhile waits for it, and so does every call that was handed
a slot — the slots sit idle while the loop parses (bench/throughput.py at C=256: calls of 0.2 s held their slot
~0.23 s). So a judge, once a reply is parsed and cached (the part a crash must not lose: a resume bills at most
the calls in flight again), waits for its `next_turn()` before the rest (a second pass, aggregation, the group
commit): one reply per loop iteration goes on, and call starts and due timers go between them. Nothing is skipped
or reordered within a sample; only when each reply's remaining CPU work runs changes."""

from __future__ import annotations

import asyncio
import collections


class Turns:
    """Post-processing one at a time, one per loop iteration, in arrival order."""

    def __init__(self) -> None:
        self.waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self.pump: asyncio.Task[None] | None = None

    async def take(self) -> None:
        loop = asyncio.get_running_loop()
        waiter = loop.create_future()
        self.waiters.append(waiter)
        if self.pump is None or self.pump.done():
            self.pump = loop.create_task(self._serve())
        await waiter

    async def _serve(self) -> None:
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():  # a cancelled waiter is skipped
                waiter.set_result(None)
                # The woken waiter runs in the next iteration; this loop resumes after it, in the same iteration
                # as the timers and call starts that came due meanwhile.
                await asyncio.sleep(0)


class CallGate:
    """A FIFO cap on model calls in flight, shared by every judge. Not asyncio.Semaphore: on Python 3.11 its
    acquire scans the whole waiter queue (`locked()` is an any() over it), and the driver keeps thousands of calls
    queued at high concurrency, which cost ~50 µs per call. Here a release hands its slot to the next live waiter."""

    def __init__(self, limit: int) -> None:
        self.free = limit  # > 0 only while nobody waits
        self.waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self.turns = Turns()

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
        self._release()

    async def next_turn(self) -> None:
        """Wait until the replies that finished before this one have gone on (see the module's docstring)."""
        await self.turns.take()

    def _release(self) -> None:
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():  # a cancelled waiter is skipped
                waiter.set_result(None)
                return
        self.free += 1
