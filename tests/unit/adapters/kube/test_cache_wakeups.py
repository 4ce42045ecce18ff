"""The cache's waits: a change that lands between a waiter's check and the start of its wait still wakes
it (the lost wakeup that cost a PDB-blocked drain 3.2 s), and a wait with no change ends at its timeout."""

from __future__ import annotations

import asyncio

from shimshift.adapters.kube.cache import _wait_until
from shimshift.adapters.kube.watching import Pulse


async def test_a_change_right_after_the_check_is_not_lost() -> None:
    pulse = Pulse()
    state = {"ready": False}
    loop = asyncio.get_running_loop()

    def change() -> None:
        state["ready"] = True
        pulse.fire()

    def ready() -> bool:
        if not state["ready"]:
            # The watch delivers the change in the very next loop iteration, before the wait has begun.
            loop.call_soon(change)
        return state["ready"]

    # A lost wakeup would sit out the whole timeout: a minute against the few milliseconds of a woken wait
    # tells the two apart however loaded the machine is.
    started = loop.time()
    assert await _wait_until(ready, pulse, timeout=60.0)
    assert loop.time() - started < 30.0


async def test_no_change_ends_at_the_timeout() -> None:
    pulse = Pulse()
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert not await _wait_until(lambda: False, pulse, timeout=0.2)
    # asyncio may run a timer up to its clock's resolution early; the wait ended by itself, long before a minute.
    assert 0.2 - 0.01 <= loop.time() - started < 60.0
