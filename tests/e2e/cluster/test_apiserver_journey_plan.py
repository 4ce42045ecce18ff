"""`shimshift plan --to` against a real kube-apiserver (v1.23.17, no kubelets): the whole journey with no
binaries given, as text and JSON, under each skew rule set; nothing in the cluster changes.

Matrix: `plan --to` and `audit --to`; 1.23 -> 1.37.2 with kubeadm's checks (8 drains per node), with
--skew kubernetes (5) and with --skew lockstep, kubeadm's guide (14, a drain between every two applies);
the findings every cri-dockerd node meets on that road (blocking: exit 1); a target below the cluster's
release refused (exit 2, nothing planned); the nodes neither cordoned nor annotated afterwards; nodes
whose files cannot be read said as findings, the plan still made.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import TYPE_CHECKING

from click.testing import CliRunner, Result

from shimshift.cli.journey_text import TOGETHER
from shimshift.cli.main import main
from tests.unit.orchestrator.test_upgrade_run import fake_binaries

if TYPE_CHECKING:
    from tests.apiserver_fixture import LocalApiServer
    from tests.kube_world import World

CONTROL_PLANE = {"node-role.kubernetes.io/control-plane": ""}


async def invoke(apiserver: LocalApiServer, *args: str) -> Result:
    return await asyncio.to_thread(CliRunner().invoke, main, [*args, "--kubeconfig", str(apiserver.kubeconfig)])


def selected(world: World) -> tuple[str, str]:
    return ("-l", f"shimshift-test={world.suffix}")


async def fleet(world: World) -> tuple[str, str]:
    return await world.node("cp", labels=CONTROL_PLANE), await world.node("w")


async def test_plan_to_1_37_prints_the_whole_journey_without_binaries(world: World, apiserver: LocalApiServer) -> None:
    control_plane, worker = await fleet(world)
    before = [await world.call("GET", f"/api/v1/nodes/{name}") for name in (control_plane, worker)]

    result = await invoke(
        apiserver, "plan", "--to", "1.37.2", "-l", f"shimshift-test={world.suffix}", "--skip-node-files"
    )

    assert result.exit_code == 1, result.output  # 1.36's WebSocket streaming blocks until its gate is off
    lines = result.stdout.splitlines()
    assert lines[0] == (
        "journey: control plane v1.23.17 -> v1.37.2, skew rules: kubeadm (14 control-plane step(s), 16 drain(s))"
    )
    assert lines[1] == f"drains per node: {control_plane} 8, {worker} 8"
    assert f"  1. control plane -> v1.24.17: kubeadm upgrade apply v1.24.17 on {control_plane}" in lines
    assert (
        f"  2. drain {control_plane} (control-plane node), its drain 1 of 8: kubelet v1.23.17 -> v1.24.17, "
        "and from dockershim to cri-dockerd [alone: it runs kubeadm upgrade apply on the node]"
    ) in lines
    assert f"drain {worker} (worker), its drain 8 of 8: kubelet v1.36.5 -> v1.37.2 [together 7]" in result.stdout
    assert TOGETHER in lines  # which drains may run at once, within --max-unavailable
    assert "blocking: node " + worker + ": error: kubectl exec and attach" in result.stdout
    assert "binaries: not given" in result.stdout
    after = [await world.call("GET", f"/api/v1/nodes/{name}") for name in (control_plane, worker)]
    assert [(n["spec"], n["metadata"]["annotations"]) for n in after] == [
        (n["spec"], n["metadata"]["annotations"]) for n in before
    ]


async def test_plan_to_with_the_skew_policy_takes_five_drains_as_json(world: World, apiserver: LocalApiServer) -> None:
    control_plane, worker = await fleet(world)

    policy = ("--to", "1.37.2", "--skew", "kubernetes", *selected(world), "-o", "json")
    result = await invoke(apiserver, "plan", *policy, "--skip-node-files")

    data = json.loads(result.stdout)
    assert data["nodes"] == []
    journey = data["journey"]
    assert (journey["rules"], journey["control_plane"], journey["target"]) == ("kubernetes", "v1.23.17", "v1.37.2")
    assert journey["drains"] == {control_plane: 5, worker: 5}
    forced = [step["release"] for step in journey["steps"] if step["kind"] == "control-plane" and step["force"]]
    assert forced == ["v1.25.16", "v1.27.16", "v1.28.15"]
    assert {f["code"] for f in journey["findings"]} >= {"websocket-streaming", "dockershim-under-new-control-plane"}


async def test_plan_to_an_older_release_is_refused(world: World, apiserver: LocalApiServer) -> None:
    await fleet(world)
    result = await invoke(
        apiserver, "plan", "--to", "1.22.17", "-l", f"shimshift-test={world.suffix}", "--skip-node-files"
    )
    assert result.exit_code == 2
    assert "older than the control plane" in result.stderr


async def test_nodes_that_cannot_be_reached_are_said_and_the_plan_goes_on(
    world: World, apiserver: LocalApiServer
) -> None:
    control_plane, worker = await fleet(world)  # node names no SSH host answers to
    result = await invoke(apiserver, "plan", "--to", "1.24.17", "-l", f"shimshift-test={world.suffix}")
    assert result.exit_code == 0, result.output
    assert f"node {worker}: warning: its files could not be read" in result.stdout
    assert f"drains per node: {control_plane} 1, {worker} 1" in result.stdout


async def test_audit_to_adds_the_journey_from_the_api_alone(world: World, apiserver: LocalApiServer) -> None:
    control_plane, worker = await fleet(world)
    policy = ("--to", "1.37.2", "--skew", "kubernetes", *selected(world), "-o", "json")
    result = await invoke(apiserver, "audit", *policy)

    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [node["name"] for node in data["nodes"]] == [control_plane, worker]
    assert data["journey"]["drains"] == {control_plane: 5, worker: 5}
    assert "node-not-read" not in {finding["code"] for finding in data["journey"]["findings"]}


async def test_plan_and_audit_to_in_lockstep_drain_every_node_at_every_minor(
    world: World, apiserver: LocalApiServer
) -> None:
    control_plane, worker = await fleet(world)
    lockstep = ("--to", "1.37.2", "--skew", "lockstep", *selected(world), "-o", "json")

    for command in (("plan", *lockstep, "--skip-node-files"), ("audit", *lockstep)):
        result = await invoke(apiserver, *command)
        journey = json.loads(result.stdout)["journey"]
        assert journey["rules"] == "lockstep", command
        assert journey["drains"] == {control_plane: 14, worker: 14}, command
        kinds = [step["kind"] for step in journey["steps"]]
        assert kinds == ["control-plane", *(["drain", "drain", "control-plane"] * 13), "drain", "drain"], command
        assert not any(step.get("force") for step in journey["steps"]), command


async def test_a_one_minor_plan_with_binaries_checks_them_and_goes_on_to_the_per_node_plan(
    world: World, apiserver: LocalApiServer, tmp_path: Path
) -> None:
    control_plane, worker = await fleet(world)
    fake_binaries(tmp_path / "v1.24.17", "1.24.17")  # a folder per release, as the journey keeps them

    result = await invoke(
        apiserver, "plan", control_plane, worker, "--to", "1.24.17", "--binaries", str(tmp_path), *selected(world)
    )

    assert "binaries checked: v1.24.17" in result.stdout, result.output
    # Then `upgrade`'s own per-node plan, which reads the API servers' releases from their static pods:
    # this API server runs without them, and that plan is refused after the journey was printed.
    assert result.exit_code == 2
    assert "no kube-apiserver version is known" in result.stderr
