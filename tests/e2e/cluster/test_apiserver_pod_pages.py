"""The audit's pod pages against a real kube-apiserver: every pod once, pages of the size asked, the next
page asked for ahead, a refused list named, and nothing left running when the caller stops early."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import pytest

from shimshift.adapters.kube.audit import pod_pages
from shimshift.adapters.kube.client import ApiFailure

if TYPE_CHECKING:
    from tests.kube_world import World

pytestmark = pytest.mark.e2e


async def in_namespace(world: World, count: int) -> dict[str, str]:
    node = await world.node("pages")
    names = [world.name(f"p{index}") for index in range(count)]
    for name in names:
        await world.pod(name, node=node)
    return {"fieldSelector": f"metadata.namespace={world.namespace}"}


async def test_every_pod_once_in_pages_of_the_size_asked(kube: Any, world: World) -> None:
    only_here = await in_namespace(world, 5)
    pages = [[pod.metadata.name for pod in page if pod.metadata] async for page in pod_pages(
        kube, chunk_size=2, params=only_here)]
    assert [len(page) for page in pages] == [2, 2, 1]
    assert sorted(name for page in pages for name in page) == sorted(world.name(f"p{i}") for i in range(5))


async def test_a_refused_list_names_the_request(kube: Any) -> None:
    with pytest.raises(ApiFailure, match=r"GET /api/v1/pods: HTTP 400") as refused:
        async for _ in pod_pages(kube, chunk_size=2, params={"fieldSelector": "spec.noSuchField=x"}):
            pass
    assert refused.value.status == 400


async def test_stopping_after_the_first_page_leaves_nothing_running(kube: Any, world: World) -> None:
    only_here = await in_namespace(world, 3)
    pages = pod_pages(kube, chunk_size=1, params=only_here)
    first = await anext(pages)
    assert len(first) == 1
    await asyncio.sleep(0)  # the next page's request is under way
    assert any("fetch" in repr(task.get_coro()) for task in asyncio.all_tasks())
    await pages.aclose()
    assert not any("fetch" in repr(task.get_coro()) for task in asyncio.all_tasks() if not task.done())
