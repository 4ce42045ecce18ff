"""Node-level API semantics against a real kube-apiserver v1.23.17 (no kubelets; we write their status).

Matrix: audit verdicts for every runtime + socket-mount findings + pagination; cordon ownership (ours,
someone else's, already ours after a crash, missing node); cri-socket set/restore (with and without a
previous value, twice, after a "crash"); a real 409 on a concurrent node change, retried; Events visible
to `kubectl describe node`; the health gate (stale heartbeat, fresh heartbeat, DaemonSet pod not Running,
a condition turned bad, timeout report); a user with no rights gets a clear failure.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import subprocess
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from shimshift.adapters.kube import (
    ApiFailure,
    audit_cluster,
    cordon,
    cordoned_by,
    emit_node_event,
    get_cri_socket,
    make_client,
    restore_cri_socket,
    set_cri_socket,
    snapshot_node,
    uncordon_if_ours,
    wait_node_healthy,
)
from shimshift.adapters.kube.client import raw_request
from shimshift.adapters.kube.nodes import update_node
from shimshift.core.errors import Refusal
from shimshift.core.runtime_detect import Runtime
from shimshift.core.wellknown import (
    CORDONED_BY_ANNOTATION,
    CRI_DOCKERD_ENDPOINT,
    CRI_SOCKET_ANNOTATION,
    PREVIOUS_CRI_SOCKET_ANNOTATION,
)
from tests.apiserver_fixture import LocalApiServer, k8s_binary

if TYPE_CHECKING:
    from tests.kube_world import World


async def test_audit_classifies_every_runtime_and_finds_socket_mounts(world: World, kube: Any) -> None:
    shim = await world.node("shim", labels={"node-role.kubernetes.io/control-plane": ""})
    dockerd = await world.node("dockerd", cri_socket=CRI_DOCKERD_ENDPOINT)
    containerd = await world.node(
        "ctrd", runtime="containerd://1.6.20", cri_socket="unix:///run/containerd/containerd.sock"
    )
    crio = await world.node("crio", runtime="cri-o://1.24.1", cri_socket="unix:///var/run/crio/crio.sock")
    odd = await world.node("odd", runtime="", cri_socket=None, ready=False)
    agent = await world.owner("DaemonSet", "agent")
    await world.pod("agent-1", node=shim, owner=agent, host_paths=("/var/run",))
    await world.pod("agent-2", node=dockerd, owner=agent, host_paths=("/var/run/",))
    await world.pod("dind", node=dockerd, host_paths=("/var/run/docker.sock",))
    await world.pod("logs", node=containerd, host_paths=("/var/log",))
    await world.pod("done", node=crio, phase="Succeeded")

    report = await audit_cluster(kube, selector=f"shimshift-test={world.suffix}", chunk_size=2)
    by_name = {node.name: node for node in report.nodes}
    assert {name: by_name[name].runtime.runtime for name in by_name} == {
        shim: Runtime.DOCKERSHIM,
        dockerd: Runtime.CRI_DOCKERD,
        containerd: Runtime.CONTAINERD,
        crio: Runtime.CRIO,
        odd: Runtime.UNKNOWN,
    }
    assert by_name[shim].role == "control-plane" and by_name[dockerd].role == "worker"
    assert by_name[odd].ready is False and by_name[shim].ready is True
    assert (by_name[dockerd].pods, by_name[crio].pods, by_name[crio].pods_running) == (2, 1, 0)
    assert by_name[dockerd].cri_socket == CRI_DOCKERD_ENDPOINT
    mounts = {(m.workload, m.kind) for m in report.socket_mounts}
    # The DaemonSet on two nodes is one finding; /var/log is none.
    assert mounts == {
        (f"DaemonSet/{world.namespace}/{world.name('agent')}", "parent-dir"),
        (f"Pod/{world.namespace}/dind", "socket"),
    }


async def test_audit_pages_through_every_pod(world: World, kube: Any) -> None:
    """More nodes than the per-node listing limit: one paged list of all pods, chunk size 3."""
    nodes = [await world.node(f"n{index}") for index in range(22)]
    for index in range(7):
        await world.pod(f"p{index}", node=nodes[index % 2], owner=await world.owner("ReplicaSet", "rs"))
    report = await audit_cluster(kube, selector=f"shimshift-test={world.suffix}", chunk_size=3)
    assert len(report.nodes) == 22
    assert sum(node.pods for node in report.nodes) == 7
    assert report.pods_seen == 7


async def test_cordon_records_ownership_and_uncordon_respects_it(world: World, kube: Any) -> None:
    node = await world.node("w")
    assert await cordon(kube, node) is True
    current = await world.get_node(node)
    assert current["spec"]["unschedulable"] is True
    assert current["metadata"]["annotations"][CORDONED_BY_ANNOTATION] == "shimshift"
    assert await cordoned_by(kube, node) == "shimshift"
    # A rerun after a crash recognises its own cordon.
    assert await cordon(kube, node) is True
    assert await uncordon_if_ours(kube, node) is True
    current = await world.get_node(node)
    assert not current["spec"].get("unschedulable")
    assert CORDONED_BY_ANNOTATION not in (current["metadata"].get("annotations") or {})
    assert await uncordon_if_ours(kube, node) is False


async def test_someone_elses_cordon_is_never_undone(world: World, kube: Any) -> None:
    node = await world.node("w")
    await world.call(
        "PATCH",
        f"/api/v1/nodes/{node}",
        {"spec": {"unschedulable": True}},
        content_type="application/merge-patch+json",
    )
    assert await cordon(kube, node) is False
    assert await cordoned_by(kube, node) is None
    assert await uncordon_if_ours(kube, node) is False
    assert (await world.get_node(node))["spec"]["unschedulable"] is True
    # Another tool's ownership annotation is not ours either.
    other = await world.node("w2")
    assert await cordon(kube, other, owner="other-tool") is True
    assert await uncordon_if_ours(kube, other) is False
    assert (await world.get_node(other))["spec"]["unschedulable"] is True


async def test_cordon_dry_run_changes_nothing(world: World, kube: Any) -> None:
    node = await world.node("w")
    assert await cordon(kube, node, dry_run=True) is True
    assert not (await world.get_node(node))["spec"].get("unschedulable")


async def test_missing_node_is_a_refusal(kube: Any) -> None:
    with pytest.raises(Refusal, match="does not exist"):
        await cordon(kube, "no-such-node")


async def test_cri_socket_set_and_restore(world: World, kube: Any) -> None:
    node = await world.node("w", cri_socket="/var/run/dockershim.sock")
    assert await get_cri_socket(kube, node) == "/var/run/dockershim.sock"
    assert await set_cri_socket(kube, node) == "/var/run/dockershim.sock"
    assert await get_cri_socket(kube, node) == CRI_DOCKERD_ENDPOINT
    # Twice: the original is kept, not our own value.
    assert await set_cri_socket(kube, node) == CRI_DOCKERD_ENDPOINT
    annotations = (await world.get_node(node))["metadata"]["annotations"]
    assert annotations[PREVIOUS_CRI_SOCKET_ANNOTATION] == "/var/run/dockershim.sock"
    # Restore after a "crash": the recorded value comes back and our record goes.
    assert await restore_cri_socket(kube, node) == "/var/run/dockershim.sock"
    annotations = (await world.get_node(node))["metadata"]["annotations"]
    assert annotations[CRI_SOCKET_ANNOTATION] == "/var/run/dockershim.sock"
    assert PREVIOUS_CRI_SOCKET_ANNOTATION not in annotations


async def test_cri_socket_restore_removes_what_was_not_there(world: World, kube: Any) -> None:
    node = await world.node("w", cri_socket=None)
    assert await set_cri_socket(kube, node) is None
    assert await restore_cri_socket(kube, node) is None
    assert CRI_SOCKET_ANNOTATION not in ((await world.get_node(node))["metadata"].get("annotations") or {})
    with pytest.raises(Refusal):
        await set_cri_socket(kube, node, "tcp://1.2.3.4:5")


async def test_a_real_409_is_retried_without_losing_the_other_change(
    world: World, kube: Any, apiserver: LocalApiServer
) -> None:
    node = await world.node("w")
    first = await world.get_node(node)
    await world.call(
        "PATCH",
        f"/api/v1/nodes/{node}",
        {"metadata": {"labels": {"bump": "1"}}},
        content_type="application/merge-patch+json",
    )
    stale = await raw_request(
        kube,
        "PATCH",
        f"/api/v1/nodes/{node}",
        body={"metadata": {"resourceVersion": first["metadata"]["resourceVersion"], "labels": {"x": "y"}}},
        content_type="application/merge-patch+json",
    )
    assert stale.status == 409  # the API server enforces the resourceVersion precondition

    calls = 0

    def decide(current: dict[str, Any]) -> dict[str, Any]:
        nonlocal calls
        calls += 1
        if calls == 1:
            # Someone else changes the node between our read and our write (kubectl, synchronously).
            subprocess.run(
                [
                    str(k8s_binary("kubectl")),
                    "--kubeconfig",
                    str(apiserver.kubeconfig),
                    "label",
                    "node",
                    node,
                    "other=yes",
                ],
                check=True,
                capture_output=True,
                timeout=60,
            )
        return {"metadata": {"annotations": {"shimshift.io/test": str(calls)}}}

    update = await update_node(kube, node, decide)
    final = await world.get_node(node)
    assert (update.conflicts, calls) == (1, 2)
    assert final["metadata"]["labels"]["other"] == "yes"
    assert final["metadata"]["annotations"]["shimshift.io/test"] == "2"


async def test_events_show_in_kubectl_describe_node(
    world: World, kube: Any, apiserver: LocalApiServer
) -> None:
    node = await world.node("w")
    await cordon(kube, node)
    await emit_node_event(kube, node, reason="ShimshiftTest", message="hello from the test", type="Warning")
    described = (
        await asyncio.to_thread(
            subprocess.run,
            [str(k8s_binary("kubectl")), "--kubeconfig", str(apiserver.kubeconfig), "describe", "node", node],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
    ).stdout
    assert "ShimshiftCordon" in described
    assert "hello from the test" in described


async def test_health_gate(world: World, kube: Any) -> None:
    node = await world.node("w", heartbeat_offset=-120)
    agent = await world.owner("DaemonSet", "agent")
    await world.pod("agent", node=node, owner=agent)
    baseline = await snapshot_node(kube, node)
    assert baseline.daemonsets == {f"{world.namespace}/{world.name('agent')}"}
    since = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=60)

    stale = await wait_node_healthy(kube, node, since=since, timeout=0.5, baseline=baseline)
    assert not stale.healthy
    assert any("no heartbeat since" in item.message for item in stale.missing)
    # Timeout 0 is `shimshift verify`'s "check once": still an answer about the node, not "not seen yet".
    once = await wait_node_healthy(kube, node, since=since, timeout=0, baseline=baseline)
    assert any("no heartbeat since" in item.message for item in once.missing), once.missing

    await world.node_status(node)  # the "restarted kubelet" reports in
    await world.pod_status("agent", phase="Pending", ready=False)
    pending = await wait_node_healthy(kube, node, since=since, timeout=0.5, baseline=baseline)
    assert [item for item in pending.missing if "DaemonSet" in item.message]
    assert not any("heartbeat" in item.message for item in pending.missing)

    await world.pod_status("agent")
    await world.node_status(node, conditions={"DiskPressure": "True"})
    pressure = await wait_node_healthy(kube, node, since=since, timeout=0.5, baseline=baseline)
    assert [(item.code, item.message) for item in pressure.missing] == [
        ("node-condition-turned-bad", "condition DiskPressure turned True: DiskPressure True")
    ]

    await world.node_status(node)
    healthy = await wait_node_healthy(kube, node, since=since, timeout=5, baseline=baseline)
    assert healthy.healthy, healthy.missing
    assert healthy.daemonset_pods == (f"{world.namespace}/agent",)


async def test_a_user_without_rights_gets_a_clear_failure(
    world: World, apiserver: LocalApiServer, tmp_path: Any
) -> None:
    node = await world.node("w")
    limited = make_client(apiserver.kubeconfig_for(tmp_path / "limited", apiserver.limited_token))
    try:
        with pytest.raises(ApiFailure, match="403"):
            await cordon(limited, node)
    finally:
        await limited.close()
    assert not (await world.get_node(node))["spec"].get("unschedulable")


def test_a_bad_kubeconfig_is_a_refusal(tmp_path: Any) -> None:
    with pytest.raises(Refusal, match="kubeconfig"):
        make_client(tmp_path / "missing")
    (tmp_path / "cfg").write_text("apiVersion: v1\nkind: Config\nclusters: []\nusers: []\ncontexts: []\n")
    with pytest.raises(Refusal):
        make_client(tmp_path / "cfg", context="nope")


async def test_an_exec_plugin_of_api_version_v1_authenticates(
    apiserver: LocalApiServer, tmp_path: Any
) -> None:
    """lightkube alone refuses client.authentication.k8s.io/v1 exec plugins; ours reads them as v1beta1."""
    plugin = tmp_path / "token-plugin"
    credential = json.dumps(
        {
            "apiVersion": "client.authentication.k8s.io/v1",
            "kind": "ExecCredential",
            "status": {"token": apiserver.token},
        }
    )
    plugin.write_text(f"#!/bin/sh\ncat <<'JSON'\n{credential}\nJSON\n")
    plugin.chmod(0o700)
    config = yaml.safe_load(apiserver.kubeconfig.read_text())
    config["users"][0]["user"] = {
        "exec": {
            "apiVersion": "client.authentication.k8s.io/v1",
            "command": str(plugin),
            "interactiveMode": "Never",
        }
    }
    (tmp_path / "kubeconfig").write_text(yaml.safe_dump(config))
    client = make_client(tmp_path / "kubeconfig")
    try:
        response = await raw_request(client, "GET", "/api/v1/namespaces/default")
        assert response.status == 200, response.body
    finally:
        await client.close()
