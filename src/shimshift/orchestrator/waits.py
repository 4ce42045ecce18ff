"""Every wait longer than a few seconds says what it waits for and since when.

A resumed run once printed its node list and then nothing for 107 s before the control plane's verify
began: it was waiting (for the API server, for a node's sshd, for a node to be healthy) without a word.
``announced`` wraps such a wait: if it lasts more than ``after`` seconds it tells ``say`` (the terminal)
and the log (``-v``) what it waits for and since when, and again every ``every`` seconds until it ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

from shimshift.adapters.kube.cache import ClusterCache

_log = logging.getLogger(__name__)

AFTER_SECONDS = 5.0
EVERY_SECONDS = 15.0


def waiting_text(what: str, since: datetime, now: datetime) -> str:
    return f"waiting for {what} (since {since:%H:%M:%S} UTC, {int((now - since).total_seconds())} s)"


@contextlib.asynccontextmanager
async def announced(
    what: str,
    say: Callable[[str], None] | None,
    *,
    after: float | None = None,
    every: float | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> AsyncIterator[None]:
    """Run the block; while it lasts longer than ``after`` seconds, say what it waits for, every ``every``.

    A timer, not a task: most blocks (a node command, a read) end long before ``after``, and the fleet
    runs thousands of them."""
    after = AFTER_SECONDS if after is None else after
    every = EVERY_SECONDS if every is None else every
    since = clock()
    loop = asyncio.get_running_loop()
    timer: asyncio.TimerHandle | None = None

    def tell() -> None:
        nonlocal timer
        text = waiting_text(what, since, clock())
        _log.info(text)
        if say is not None:
            say(text)
        timer = loop.call_later(every, tell)

    timer = loop.call_later(after, tell)
    try:
        yield
    finally:
        timer.cancel()  # the last one scheduled
        elapsed = (clock() - since).total_seconds()
        if elapsed >= after:
            _log.info("waited %.1f s for %s", elapsed, what)


@contextlib.asynccontextmanager
async def started_cache(client: Any, say: Callable[[str], None] | None) -> AsyncIterator[ClusterCache]:
    """The fleet's cache of pods and budgets, its first lists announced: after a control-plane node's kubelet
    restart its API server may take a minute to answer, and the lists wait for it (reads are retried)."""
    cache = ClusterCache(client)
    async with announced("the API server to list the cluster's pods and PodDisruptionBudgets", say):
        await cache.start()
    try:
        yield cache
    finally:
        await cache.close()


__all__ = ["announced", "started_cache", "waiting_text"]
