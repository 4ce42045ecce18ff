"""The kwok scale rig at CI size: 50 fake dockershim nodes, about 30 pods each, for the module.

Run under the shared API-server lock (`flock /tmp/work/lab-e2e.lock ...`): the rig starts its own
kube-apiserver, controllers, scheduler and kwok, which the 2-core machine can carry only one of at a time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from shimshift.adapters.kube.client import make_client
from tests.scale.rig import KwokRig, Workload, populate

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

CI_NODES = 50


@pytest.fixture(scope="session")
def rig() -> Iterator[KwokRig]:
    with KwokRig() as started:
        yield started


@pytest.fixture(scope="session")
async def rig_client(rig: KwokRig) -> AsyncIterator[Any]:
    client = make_client(rig.kubeconfig)
    try:
        await populate(client, Workload(CI_NODES), timeout=600)
    except TimeoutError as error:
        logs = f"kwok:\n{rig.log_tail('kwok')}\nscheduler:\n{rig.log_tail('kube-scheduler')}"
        raise AssertionError(f"{error}\n{logs}") from error
    yield client
    await client.close()
