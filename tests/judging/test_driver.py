"""The judge driver: its FIFO call gate (a cap on calls in flight that survives cancelled waiters), and the GC
thresholds it raises while judging and gives back."""

from __future__ import annotations

import asyncio
import gc

from overseer.judging.gate import CallGate
from overseer.run import _rarer_gc


async def test_at_most_limit_inside_and_waiters_enter_in_arrival_order() -> None:
    gate, inside, peak, order = CallGate(3), 0, 0, []

    async def call(n: int) -> None:
        nonlocal inside, peak
        async with gate:
            order.append(n)
            inside += 1
            peak = max(peak, inside)
            await asyncio.sleep(0.001 * (n % 4))
            inside -= 1

    await asyncio.gather(*(call(n) for n in range(40)))
    assert peak == 3 and order == list(range(40)) and gate.free == 3


async def test_a_cancelled_waiter_never_takes_or_loses_a_slot() -> None:
    gate = CallGate(1)
    release = asyncio.Event()

    async def holder() -> None:
        async with gate:
            await release.wait()

    entered = []

    async def waiter(n: int) -> None:
        async with gate:
            entered.append(n)

    first = asyncio.create_task(holder())
    await asyncio.sleep(0)
    doomed, kept = asyncio.create_task(waiter(1)), asyncio.create_task(waiter(2))
    await asyncio.sleep(0)
    doomed.cancel()
    release.set()
    await asyncio.gather(first, kept)
    assert entered == [2] and gate.free == 1 and doomed.cancelled()


async def test_a_waiter_cancelled_after_it_was_handed_the_slot_passes_it_on() -> None:
    gate = CallGate(1)
    entered = []

    async def waiter(n: int) -> None:
        async with gate:
            entered.append(n)

    await gate.__aenter__()
    handed, next_one = asyncio.create_task(waiter(1)), asyncio.create_task(waiter(2))
    await asyncio.sleep(0)
    await gate.__aexit__()  # hands the slot to `handed`, which has not resumed yet
    handed.cancel()
    await asyncio.gather(handed, next_one, return_exceptions=True)
    assert entered == [2] and gate.free == 1


async def test_a_finished_call_hands_its_slot_on_before_it_goes_on() -> None:
    """The next call starts before the finished one's reply is processed: at C=256 the old order left handed-over
    slots idle for a whole burst of post-processing."""
    gate, events = CallGate(1), []

    async def call(n: int) -> None:
        async with gate:
            events.append(f"start {n}")
            await asyncio.sleep(0)
        await gate.next_turn()  # what a judge does once the reply is cached
        events.append(f"after {n}")

    await asyncio.gather(*(call(n) for n in range(4)))
    for n in range(3):
        assert events.index(f"start {n + 1}") < events.index(f"after {n}"), events
    assert sorted(events) == sorted([f"{what} {n}" for n in range(4) for what in ("start", "after")])
    assert gate.free == 1


async def test_replies_are_processed_one_per_loop_iteration() -> None:
    """Fifty calls that end together: between any two of them going on, the loop runs another iteration (where
    due timers and call starts are served), instead of all fifty in one long iteration."""
    gate, ticks, seen = CallGate(50), [0], []
    loop = asyncio.get_running_loop()

    def tick() -> None:
        ticks[0] += 1
        if len(seen) < 50:
            loop.call_soon(tick)

    async def call() -> None:
        async with gate:
            await asyncio.sleep(0.01)
        await gate.next_turn()
        seen.append(ticks[0])

    loop.call_soon(tick)
    await asyncio.gather(*(call() for _ in range(50)))
    assert len(set(seen)) == 50, seen  # no two went on within the same iteration


def test_judging_gives_the_gc_thresholds_back_even_when_it_fails() -> None:
    before = gc.get_threshold()
    try:
        with _rarer_gc():
            assert gc.get_threshold() != before
            raise RuntimeError("a 401")
    except RuntimeError:
        pass
    assert gc.get_threshold() == before
