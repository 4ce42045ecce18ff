"""Following the cluster by watch instead of polling: one named object, and the change counter that
waits on a watch share.

The scale benchmark counts API requests per node (docs/benchmarks.md): a wait that asks every second
costs a request a second for as long as the node takes, and under load that was most of them. A list of
the one name, then a watch from the list's resourceVersion, costs two.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from shimshift.adapters.kube.client import retry_watch

if TYPE_CHECKING:
    from lightkube import AsyncClient


class Pulse:
    """Counts changes and wakes their waiters. Waiting is "for a change after generation N", never "for
    the next change": a change that lands between a caller's check and the start of its wait would
    otherwise be lost, and the caller would sleep until its timeout (seen: 3.2 s of a 5 s retry delay)."""

    def __init__(self) -> None:
        self.generation = 0
        self._event = asyncio.Event()

    def fire(self) -> None:
        self.generation += 1
        self._event.set()
        self._event = asyncio.Event()

    async def wait_past(self, generation: int) -> None:
        while self.generation <= generation:
            await self._event.wait()


async def follow_one(
    client: AsyncClient, resource: Any, name: str, *, namespace: str | None = None
) -> AsyncIterator[Any | None]:
    """The object ``name`` as it is now (None: there is none), then again at each change, for as long as
    the caller reads. A watch that fails is resumed from where it was (:func:`retry_watch`); an error of
    the first list is the caller's."""
    where: dict[str, Any] = {} if namespace is None else {"namespace": namespace}
    fields: dict[str, Any] = {"metadata.name": name}
    listing = client.list(resource, fields=fields, **where)
    current = None
    async for item in listing:
        current = item
    yield current
    events = client.watch(
        resource, fields=fields, resource_version=listing.resourceVersion, on_error=retry_watch, **where
    )
    async for kind, item in events:
        yield None if kind == "DELETED" else item
