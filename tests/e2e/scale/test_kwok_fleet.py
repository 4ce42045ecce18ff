"""The kwok rig at CI size, so it cannot rot: a whole-fleet migration, then drains held by a PDB.

Matrix: `migrate --all` at --max-unavailable 10% over 50 kwok nodes (every node migrated, annotated,
uncordoned, its kubelet restarted on the cri-dockerd endpoint, every Deployment whole again); a drain
held by a PDB that the operator then relaxes, with the fleet's cache and without it (the CLI's drain),
each retrying within a fraction of kubectl's fixed 5 s.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import pytest
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.core_v1 import Node

from shimshift.adapters.kube.cache import ClusterCache
from shimshift.adapters.kube.drain import drain_node
from shimshift.core.drain import DrainOptions
from shimshift.orchestrator.node_migration import OutcomeStatus
from shimshift.orchestrator.session import Connection, MigrateOptions, migrate
from tests.e2e.scale.conftest import CI_NODES
from tests.scale.rig import NAMESPACE, held_pod, node_name, observe_release, patched_session, release_after

if TYPE_CHECKING:
    from pathlib import Path

    from tests.scale.rig import KwokRig

CRI_DOCKERD = "unix:///var/run/cri-dockerd.sock"
DRAIN = DrainOptions(ignore_daemonsets=True, delete_emptydir_data=True, force=True, timeout=300)


async def test_fleet_migrates_every_kwok_node(rig: KwokRig, rig_client: Any, tmp_path: Path) -> None:
    connection = Connection(kubeconfig=rig.kubeconfig, journal=tmp_path / "journal.sqlite")
    options = MigrateOptions(all_nodes=True, max_unavailable="10%", drain=DRAIN, health_timeout=120,
                             report_dir=tmp_path)
    with patched_session(rig_client) as fake_nodes:
        summary = await migrate(connection, options)
    statuses = {outcome.node: outcome.status for outcome in summary.result.outcomes}
    problems = {outcome.node: outcome.message for outcome in summary.result.outcomes
                if outcome.status is not OutcomeStatus.MIGRATED}
    assert not problems, problems
    assert sorted(statuses) == [node_name(index) for index in range(CI_NODES)]
    for name in statuses:
        node = await rig_client.get(Node, name)
        assert node.metadata.annotations["kubeadm.alpha.kubernetes.io/cri-socket"] == CRI_DOCKERD
        assert not node.spec.unschedulable, f"{name} left cordoned"
        assert f"--container-runtime-endpoint={CRI_DOCKERD}" in fake_nodes[name].kubelet_argv
    # Every evicted Deployment pod came back somewhere: the PDBs were honoured, nothing was lost.
    for _ in range(150):
        short = [item.metadata.name async for item in rig_client.list(Deployment, namespace=NAMESPACE)
                 if (item.status.readyReplicas or 0) < item.spec.replicas]
        if not short:
            break
        await asyncio.sleep(0.2)
    assert not short, f"Deployments not whole again: {short}"


@pytest.mark.parametrize("with_cache", [True, False], ids=["fleet-cache", "cli-pdb-watch"])
async def test_blocked_drain_retries_as_soon_as_the_pdb_allows(rig_client: Any, with_cache: bool) -> None:
    name = f"held-{'cache' if with_cache else 'watch'}"
    node = node_name(3 if with_cache else 4)
    pod = await held_pod(rig_client, name, node)
    cache = ClusterCache(rig_client) if with_cache else None
    if cache is not None:
        await cache.start()
    try:
        observer = asyncio.create_task(observe_release(rig_client, name, pod, timeout=120))
        release = asyncio.create_task(release_after(rig_client, name, 2.0))
        result = await drain_node(rig_client, node, DRAIN, cache=cache)
        allowed, evicted = await observer
        await release
    finally:
        if cache is not None:
            await cache.close()
    assert result.drained, result
    assert f"{NAMESPACE}/{pod}" in result.evict
    # kubectl sleeps 5 s after each 429; waiting for the PDB's status retries within a moment of it.
    assert evicted - allowed < 1.0, f"evicted {evicted - allowed:.2f}s after the PDB allowed it"
