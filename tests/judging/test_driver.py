"""The judge driver: its FIFO call gate (a cap on calls in flight that survives cancelled waiters), and the GC
thresholds it raises while judging and gives back."""

from __future__ import annotations

import asyncio
import gc

from overseer.run import CallGate, _rarer_gc


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


def test_judging_gives_the_gc_thresholds_back_even_when_it_fails() -> None:
    before = gc.get_threshold()
    try:
        with _rarer_gc():
            assert gc.get_threshold() != before
            raise RuntimeError("a 401")
    except RuntimeError:
        pass
    assert gc.get_threshold() == before
