"""`shimshift upgrade --to` past one minor against a real kube-apiserver (v1.23.17, no kubelets): the journey
is planned and refused on its blocking findings before its first change (as the NoNewPrivs guard refuses
`migrate`), and chosen nodes are refused (the journey moves the whole cluster).

Matrix: `upgrade --to 1.37.2 --all` (1.36's WebSocket streaming blocks every cri-dockerd node: exit 2, each
blocking finding said, no node cordoned or annotated, no run left to resume); `upgrade --to 1.37.2 NODE`
(exit 2, nothing read from the nodes); `--binaries DIR` read as a folder per release (DIR/v1.24.17, even
when DIR/v1.37.2 exists); `rollback NODE` of a node a journey changed since its migration (exit 2, naming the
journey's run, the node untouched).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from click.testing import CliRunner, Result

from shimshift.adapters.journal import Journal, StepPhase
from shimshift.cli.main import main
from shimshift.core.journey.sequence import JOURNEY_RUN_KEY
from shimshift.orchestrator.session import Connection, cluster_identity
from tests.unit.orchestrator.test_upgrade_run import fake_binaries

if TYPE_CHECKING:
    from tests.apiserver_fixture import LocalApiServer
    from tests.kube_world import World

CONTROL_PLANE = {"node-role.kubernetes.io/control-plane": ""}


@pytest.fixture(autouse=True)
async def whole_cluster(world: World) -> None:
    """The journey takes the whole cluster: the nodes earlier tests left in this shared API server (one of
    them with a kubelet newer than the control plane) are removed, so only this test's nodes are in it."""
    nodes = await world.call("GET", "/api/v1/nodes")
    for node in nodes.get("items") or []:
        await world.call("DELETE", f"/api/v1/nodes/{node['metadata']['name']}", ok=(200, 202, 404))


async def invoke(apiserver: LocalApiServer, journal: Path, *args: str) -> Result:
    argv = [*args, "--kubeconfig", str(apiserver.kubeconfig), "--journal", str(journal)]
    return await asyncio.to_thread(CliRunner().invoke, main, argv)


async def test_blocking_findings_stop_the_journey_before_its_first_change(
    world: World, apiserver: LocalApiServer, tmp_path: Path
) -> None:
    control_plane = await world.node("cp", labels=CONTROL_PLANE)
    worker = await world.node("w")
    before = [await world.call("GET", f"/api/v1/nodes/{name}") for name in (control_plane, worker)]

    result = await invoke(
        apiserver, tmp_path / "journal.db", "upgrade", "--to", "1.37.2", "--all", "--install-command",
        "true {binary} {version}",
    )

    assert result.exit_code == 2, result.output
    assert "blocking finding(s) on the journey" in result.stderr
    assert f"node {worker}: error: kubectl exec and attach" in result.stderr
    after = [await world.call("GET", f"/api/v1/nodes/{name}") for name in (control_plane, worker)]
    assert [(n["spec"], n["metadata"]["annotations"]) for n in after] == [
        (n["spec"], n["metadata"]["annotations"]) for n in before
    ]
    journal = Journal(tmp_path / "journal.db")
    try:
        assert journal.runs() == []  # refused before a run began: nothing to resume
    finally:
        journal.close()


async def test_the_journey_refuses_chosen_nodes(world: World, apiserver: LocalApiServer, tmp_path: Path) -> None:
    await world.node("cp", labels=CONTROL_PLANE)
    worker = await world.node("w")
    result = await invoke(apiserver, tmp_path / "journal.db", "upgrade", "--to", "1.30.14", worker,
                          "--install-command", "true {binary} {version}")
    assert result.exit_code == 2, result.output
    assert "the journey moves the whole cluster" in result.stderr


async def test_binaries_are_looked_for_in_a_folder_per_release_under_the_directory_given(
    world: World, apiserver: LocalApiServer, tmp_path: Path
) -> None:
    await world.node("cp", labels=CONTROL_PLANE)
    (tmp_path / "bin").mkdir()
    fake_binaries(tmp_path / "bin" / "v1.37.2", "1.37.2")  # only the target's folder

    result = await invoke(
        apiserver, tmp_path / "journal.db", "upgrade", "--to", "1.37.2", "--all", "--binaries", str(tmp_path / "bin")
    )

    assert result.exit_code == 2, result.output
    assert f"{tmp_path / 'bin' / 'v1.24.17'}" in result.stderr  # DIR/v<release>, not DIR/v1.37.2/v<release>
    assert "v1.37.2/v1.24.17" not in result.stderr


async def test_rollback_refuses_a_node_a_journey_changed_since_its_migration(
    world: World, apiserver: LocalApiServer, tmp_path: Path
) -> None:
    """A node migrated, then taken past 1.24 by a journey: writing the migration's files back would leave its
    kubelet without dockershim. `rollback` refuses before it touches the node, naming the journey's run."""
    worker = await world.node("w")
    identity = cluster_identity(Connection(kubeconfig=apiserver.kubeconfig))
    times = iter([datetime(2026, 12, 1, hour, tzinfo=UTC) for hour in range(8, 20)])
    journal = Journal(tmp_path / "journal.db", clock=lambda: next(times))
    try:
        migration = journal.begin_run(identity, options={}).id
        journal.record(migration, worker, "preflight", StepPhase.STARTED)
        journal.record(migration, worker, "preflight", StepPhase.FINISHED, {"plan": {}})
        journal.finish_run(migration)
        journey = journal.begin_run(identity, options={JOURNEY_RUN_KEY: {}}).id
        journal.record(journey, worker, f"drain-1:v1.27.16:{worker}#1/drain", StepPhase.STARTED)
        journal.record(journey, worker, f"drain-1:v1.27.16:{worker}#1/drain", StepPhase.FINISHED)
        journal.finish_run(journey)
    finally:
        journal.close()
    before = await world.call("GET", f"/api/v1/nodes/{worker}")

    result = await invoke(apiserver, tmp_path / "journal.db", "rollback", worker)

    assert result.exit_code == 2, result.output
    assert f"node {worker} was changed by the journey run {journey} since its migration" in result.stderr
    assert len(result.stderr.strip().splitlines()) <= 2, result.stderr  # the refusal and its hint
    after = await world.call("GET", f"/api/v1/nodes/{worker}")
    assert (after["spec"], after["metadata"].get("annotations")) == (
        before["spec"],
        before["metadata"].get("annotations"),
    )
