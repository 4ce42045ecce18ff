"""The CLI against a real kube-apiserver: exact `-o json` shape, exit codes, kubectl-like text, flags.

Matrix: drain -o json (drained node, refused node, several nodes), text output with warnings and the
pending-nodes summary, --delete-local-data still accepted, --dry-run=server leaves the node alone, a
missing node changes nothing, a bad --timeout is a usage error; audit as json, yaml and table; cordon and
uncordon (someone else's cordon left alone); --context selects the kubeconfig context.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

import yaml
from click.testing import CliRunner, Result

from shimshift.cli.main import main

if TYPE_CHECKING:
    from tests.apiserver_fixture import LocalApiServer
    from tests.kube_world import World

DRAIN_KEYS = {"node", "evict", "ignored", "refused", "blocked", "drained"}


async def invoke(apiserver: LocalApiServer, *args: str) -> Result:
    # The CLI runs its own event loop (asyncio.run), so it runs in a thread next to the test's loop.
    return await asyncio.to_thread(
        CliRunner().invoke, main, [*args, "--kubeconfig", str(apiserver.kubeconfig)]
    )


async def test_drain_json_has_the_exact_shape(world: World, apiserver: LocalApiServer) -> None:
    node = await world.node("a")
    refused = await world.node("b")
    await world.pod("web", node=node, owner=await world.owner("ReplicaSet", "web"))
    agent = await world.owner("DaemonSet", "agent")
    await world.pod("agent", node=node, owner=agent)
    await world.pod("naked", node=refused)
    result = await invoke(
        apiserver, "drain", node, refused, "--ignore-daemonsets", "--grace-period", "0", "-o", "json"
    )
    assert result.exit_code == 1, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert [set(line) for line in lines] == [DRAIN_KEYS, DRAIN_KEYS]
    assert lines[0] == {
        "node": node,
        "evict": [f"{world.namespace}/web"],
        "ignored": [f"{world.namespace}/agent"],
        "refused": [],
        "blocked": [],
        "drained": True,
    }
    assert lines[1] == {
        "node": refused,
        "evict": [],
        "ignored": [],
        "refused": [
            {
                "pod": f"{world.namespace}/naked",
                "reason": "Pods declare no controller (use --force to override)",
            }
        ],
        "blocked": [],
        "drained": False,
    }


async def test_drain_text_reads_like_kubectl(world: World, apiserver: LocalApiServer) -> None:
    node = await world.node("a")
    await world.pod("web", node=node, owner=await world.owner("ReplicaSet", "web"))
    await world.pod("agent", node=node, owner=await world.owner("DaemonSet", "agent"))
    await world.pod("scratch", node=node, owner=await world.owner("ReplicaSet", "s"), emptydir=True)
    refused = await invoke(apiserver, "drain", node, "--grace-period", "0")
    assert refused.exit_code == 1
    assert f"node/{node} cordoned" in refused.stdout
    assert "cannot delete DaemonSet-managed Pods (use --ignore-daemonsets to ignore)" in refused.stderr
    assert "There are pending nodes to be drained:" in refused.stderr
    assert await world.get_pod("web") is not None
    drained = await invoke(
        apiserver,
        "drain",
        node,
        "--grace-period",
        "0",
        "--ignore-daemonsets",
        "--delete-local-data",
        "--timeout",
        "30s",
    )
    assert drained.exit_code == 0, drained.output
    assert f"WARNING: ignoring DaemonSet-managed Pods: {world.namespace}/agent" in drained.stderr
    assert f"evicting pod {world.namespace}/web" in drained.stdout
    assert "pod/web evicted" in drained.stdout and f"node/{node} drained" in drained.stdout
    assert await world.get_pod("scratch") is None


async def test_drain_server_dry_run_leaves_everything(world: World, apiserver: LocalApiServer) -> None:
    node = await world.node("a")
    await world.pod("web", node=node, owner=await world.owner("ReplicaSet", "web"))
    result = await invoke(apiserver, "drain", node, "--dry-run", "server", "-o", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["evict"] == [f"{world.namespace}/web"]
    assert await world.get_pod("web") is not None
    assert not (await world.get_node(node))["spec"].get("unschedulable")


async def test_missing_node_and_bad_flags(world: World, apiserver: LocalApiServer) -> None:
    node = await world.node("a")
    missing = await invoke(apiserver, "drain", node, "no-such-node")
    # Every node is looked up before any is changed: an unknown one refuses the input (exit 2).
    assert missing.exit_code == 2 and "no-such-node does not exist" in missing.stderr
    assert not (await world.get_node(node))["spec"].get("unschedulable")  # nothing happened to the other
    bad = await invoke(apiserver, "drain", node, "--timeout", "soon")
    assert bad.exit_code == 2 and "not a duration" in bad.output


async def test_audit_outputs(world: World, apiserver: LocalApiServer) -> None:
    node = await world.node("a")
    await world.pod("dind", node=node, host_paths=("/var/run/docker.sock",))
    selector = f"shimshift-test={world.suffix}"
    as_json = await invoke(apiserver, "audit", "-l", selector, "-o", "json")
    assert as_json.exit_code == 0, as_json.output
    report = json.loads(as_json.stdout)
    assert [(n["name"], n["runtime"], n["pods"]) for n in report["nodes"]] == [(node, "dockershim", 1)]
    assert report["socketMounts"][0]["workload"] == f"Pod/{world.namespace}/dind"
    as_yaml = await invoke(apiserver, "audit", "-l", selector, "-o", "yaml")
    assert yaml.safe_load(as_yaml.stdout) == report
    table = await invoke(apiserver, "audit", "-l", selector)
    assert node in table.stdout and "dockershim" in table.stdout and "/var/run/docker.sock" in table.stdout


async def test_cordon_and_uncordon_commands(world: World, apiserver: LocalApiServer, kube: Any) -> None:
    ours, theirs = await world.node("a"), await world.node("b")
    await world.call(
        "PATCH",
        f"/api/v1/nodes/{theirs}",
        {"spec": {"unschedulable": True}},
        content_type="application/merge-patch+json",
    )
    cordoned = await invoke(apiserver, "cordon", ours, theirs)
    assert cordoned.exit_code == 0
    assert f"node/{ours} cordoned" in cordoned.stdout
    assert f"node/{theirs} already cordoned (by someone else" in cordoned.stdout
    uncordoned = await invoke(apiserver, "uncordon", ours, theirs)
    assert f"node/{ours} uncordoned" in uncordoned.stdout
    assert f"node/{theirs} left cordoned" in uncordoned.stdout
    assert not (await world.get_node(ours))["spec"].get("unschedulable")
    assert (await world.get_node(theirs))["spec"]["unschedulable"] is True


async def test_context_option(world: World, apiserver: LocalApiServer) -> None:
    node = await world.node("a")
    unknown = await invoke(apiserver, "cordon", node, "--context", "nope")
    assert unknown.exit_code == 2 and "kubeconfig" in unknown.stderr
    known = await invoke(apiserver, "cordon", node, "--context", "local", "--dry-run", "client")
    assert known.exit_code == 0 and "(dry run)" in known.stdout


async def test_server_dry_run_of_a_refused_node_only_checks_budgets(
    world: World, apiserver: LocalApiServer
) -> None:
    node = await world.node("a")
    await world.pod("web", node=node, owner=await world.owner("ReplicaSet", "web"))
    await world.pod("naked", node=node)
    result = await invoke(apiserver, "drain", node, "--dry-run", "server")
    assert result.exit_code == 1
    assert f"node/{node} cordoned (server dry run)" in result.stdout
    assert f"checking PodDisruptionBudgets for pod {world.namespace}/web (server dry run)" in result.stdout
    assert "evicting pod" not in result.stdout
