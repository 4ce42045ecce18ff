"""The cluster side against the lab: real kubelets, real controllers, and kubectl v1.23 as the reference.

Matrix: the audit classifies every lab node (all dockershim) and finds no socket mount in the demo
workloads; on every node and for four flag sets, our server dry run refuses and evicts exactly the pods
`kubectl drain --dry-run=server` (v1.23.17) refuses and evicts; a real drain of the first worker evicts
exactly what kubectl predicted on that same state (web under its PDB, the StatefulSet pod recreated
under the same name, the bare pod, the emptyDir pod, the finished Job pod), leaves the DaemonSet and
static pods, and the node is then restored (uncordoned, bare pod and Job re-created); a kubelet restart
passes the health gate with a heartbeat newer than the restart.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
import subprocess
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from shimshift.adapters.kube import (
    audit_cluster,
    drain_node,
    make_client,
    plan_drain,
    snapshot_node,
    uncordon_if_ours,
    wait_node_healthy,
)
from shimshift.core.drain import DrainOptions
from shimshift.core.runtime_detect import Runtime
from shimshift.lab import render, state
from shimshift.lab.model import DEMO_NAMESPACE
from tests.apiserver_fixture import k8s_binary

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from shimshift.lab.model import LabInfo
    from shimshift.lab.state import NodeStateGuard

pytestmark = pytest.mark.e2e

FLAG_SETS: dict[str, tuple[str, ...]] = {
    "defaults": (),
    "all-overrides": ("--ignore-daemonsets", "--delete-emptydir-data", "--force"),
    "no-emptydir": ("--ignore-daemonsets", "--force"),
    "pod-selector": ("--ignore-daemonsets", "--pod-selector", "app=web"),
}
_POD_KEY = re.compile(r"\b([a-z0-9][a-z0-9.-]*/[a-z0-9][a-z0-9.-]*)\b")


def options_for(flags: tuple[str, ...], **extra: Any) -> DrainOptions:
    selector = flags[flags.index("--pod-selector") + 1] if "--pod-selector" in flags else None
    return DrainOptions(
        ignore_daemonsets="--ignore-daemonsets" in flags,
        delete_emptydir_data="--delete-emptydir-data" in flags,
        force="--force" in flags,
        pod_selector=selector,
        **extra,
    )


def kubectl(lab: LabInfo, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """kubectl v1.23.17 on the lab (blocking; the lab tests accept that)."""
    return subprocess.run(
        [str(k8s_binary("kubectl")), "--kubeconfig", str(lab.kubeconfig), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def kubectl_prediction(lab: LabInfo, node: str, flags: tuple[str, ...]) -> tuple[set[str], set[str]]:
    """(evicted, refused) pod keys from `kubectl drain --dry-run=server` with ``flags``."""
    proc = kubectl(lab, "drain", node, "--dry-run=server", *flags)
    evicted = set(re.findall(r"evicting pod (\S+)", proc.stdout + proc.stderr))
    refused: set[str] = set()
    for line in proc.stderr.splitlines():
        if "unable to drain node" in line and "cannot delete" in line:
            refused |= set(_POD_KEY.findall(line.split("due to error:", 1)[-1]))
    assert (proc.returncode == 0) is (not refused), proc.stderr
    return {k.rstrip(",") for k in evicted}, refused


@pytest.fixture
async def lab_kube(lab: LabInfo) -> AsyncIterator[Any]:
    client = make_client(lab.kubeconfig)
    yield client
    await client.close()


def runtime_on_the_node(lab: LabInfo, node: str) -> Runtime:
    """The truth, from the node itself: the running kubelet's --container-runtime-endpoint."""
    argv = state.kubelet_cmdline(lab, node)
    endpoint = next(
        (arg.split("=", 1)[1] for arg in argv if arg.startswith("--container-runtime-endpoint=")), ""
    )
    if "cri-dockerd" in endpoint:
        return Runtime.CRI_DOCKERD
    if not endpoint or "dockershim" in endpoint:
        return Runtime.DOCKERSHIM
    return Runtime.UNKNOWN


async def test_audit_classifies_every_lab_node(lab: LabInfo, lab_kube: Any) -> None:
    # Other sessions may be migrating a node right now: compare with each kubelet's real endpoint,
    # allowing a migration in flight a minute to settle.
    for _attempt in range(12):
        truth = {n.name: await asyncio.to_thread(runtime_on_the_node, lab, n.name) for n in lab.nodes}
        report = await audit_cluster(lab_kube)
        verdicts = {n.name: n.runtime.runtime for n in report.nodes}
        if verdicts == truth:
            break
        await asyncio.sleep(5)
    assert verdicts == truth
    assert {n.name: n.role for n in report.nodes} == {n.name: n.role for n in lab.nodes}
    assert all(n.ready and n.kubelet_version == "v1.23.17" for n in report.nodes)
    assert not [m for m in report.socket_mounts if m.pod.startswith(f"{DEMO_NAMESPACE}/")]


@pytest.mark.parametrize("flag_set", list(FLAG_SETS))
async def test_dry_run_matches_kubectl_on_every_node(flag_set: str, lab: LabInfo, lab_kube: Any) -> None:
    flags = FLAG_SETS[flag_set]
    for node in lab.nodes:
        kubectl_evicted, kubectl_refused = kubectl_prediction(lab, node.name, flags)
        ours = await plan_drain(lab_kube, node.name, options_for(flags))
        ours_refused = {item.pod for item in ours.refused}
        assert ours_refused == kubectl_refused, (node.name, flag_set)
        if not kubectl_refused:
            assert set(ours.evict) | {b.pod for b in ours.blocked} == kubectl_evicted, (node.name, flag_set)
        node_obj = json.loads(kubectl(lab, "get", "node", node.name, "-o", "json").stdout)
        assert not node_obj["spec"].get("unschedulable"), "a dry run must not cordon"


async def _restore_demo(lab: LabInfo, lab_kube: Any, node: str) -> None:
    """Undo a drain of ``node``: uncordon (ours only), re-create the bare pod and the one-shot Job."""
    await uncordon_if_ours(lab_kube, node)
    docs = [doc for doc in yaml.safe_load_all(render.workloads(first_worker=lab.workers[0].name)) if doc]
    wanted = [
        doc for doc in docs if (doc["kind"], doc["metadata"]["name"]) in {("Pod", "bare"), ("Job", "once")}
    ]
    if kubectl(lab, "get", "pod", "bare", "-n", DEMO_NAMESPACE).returncode == 0:
        wanted = [doc for doc in wanted if doc["kind"] != "Pod"]
    kubectl(lab, "delete", "job", "once", "-n", DEMO_NAMESPACE, "--wait=true")
    created = kubectl(lab, "create", "-f", "-", stdin=yaml.safe_dump_all(wanted))
    assert created.returncode == 0, created.stderr
    for args in (
        ("wait", "--for=condition=Ready", "pod/bare"),
        ("wait", "--for=condition=complete", "job/once"),
        ("rollout", "status", "deployment/web"),
        ("rollout", "status", "statefulset/db"),
    ):
        done = kubectl(lab, *args, "-n", DEMO_NAMESPACE, "--timeout=180s")
        assert done.returncode == 0, done.stderr


async def test_real_drain_evicts_what_kubectl_predicts_then_the_node_is_restored(
    lab: LabInfo, lab_kube: Any, node_state: NodeStateGuard
) -> None:
    worker = lab.workers[0].name
    node_state.capture(worker)
    flags = FLAG_SETS["all-overrides"]
    predicted, refused = kubectl_prediction(lab, worker, flags)
    assert not refused
    plan = await plan_drain(lab_kube, worker, options_for(flags))
    assert set(plan.evict) | {b.pod for b in plan.blocked} == predicted
    db_before = json.loads(
        kubectl(lab, "get", "pods", "-n", DEMO_NAMESPACE, "-l", "app=db", "-o", "json").stdout
    )
    db_here = [p for p in db_before["items"] if p["spec"]["nodeName"] == worker]
    before = json.loads(
        kubectl(lab, "get", "pods", "-A", "--field-selector", f"spec.nodeName={worker}", "-o", "json").stdout
    )
    on_node_before_kinds = {
        f"{p['metadata']['namespace']}/{p['metadata']['name']}": (
            "mirror"
            if "kubernetes.io/config.mirror" in (p["metadata"].get("annotations") or {})
            else next(
                (ref["kind"] for ref in p["metadata"].get("ownerReferences") or [] if ref.get("controller")),
                "",
            )
        )
        for p in before["items"]
        if not p["metadata"].get("deletionTimestamp")
    }
    on_node_before = set(on_node_before_kinds)
    try:
        result = await drain_node(lab_kube, worker, options_for(flags, timeout=240, eviction_retry_delay=2))
        assert result.drained, result
        assert set(result.evict) == predicted
        # Every pod that was on the node went one way or the other; mirror and DaemonSet pods stayed.
        assert on_node_before <= set(result.evict) | set(result.ignored)
        assert {key for key, kind in on_node_before_kinds.items() if kind in ("mirror", "DaemonSet")} == set(
            result.ignored
        )
        left = json.loads(
            kubectl(
                lab, "get", "pods", "-A", "--field-selector", f"spec.nodeName={worker}", "-o", "json"
            ).stdout
        )
        leftover = {
            f"{p['metadata']['namespace']}/{p['metadata']['name']}"
            for p in left["items"]
            if not p["metadata"].get("deletionTimestamp")
        }
        assert leftover <= set(result.ignored)
        for pod in db_here:  # recreated under the same name, elsewhere, with a new UID
            name = pod["metadata"]["name"]
            done = kubectl(
                lab, "wait", "--for=condition=Ready", f"pod/{name}", "-n", DEMO_NAMESPACE, "--timeout=180s"
            )
            assert done.returncode == 0, done.stderr
            now = json.loads(kubectl(lab, "get", "pod", name, "-n", DEMO_NAMESPACE, "-o", "json").stdout)
            assert now["metadata"]["uid"] != pod["metadata"]["uid"] and now["spec"]["nodeName"] != worker
    finally:
        await _restore_demo(lab, lab_kube, worker)
    node_state.assert_as_found(worker)


DAEMONSETS = ("node-agent", "kube-proxy", "kube-flannel-ds")


async def test_real_kubectl_drain_evicts_what_we_predict(
    lab: LabInfo, lab_kube: Any, node_state: NodeStateGuard
) -> None:
    """The other direction: our server dry run, then kubectl v1.23's real drain on that same state."""
    worker = lab.workers[0].name
    node_state.capture(worker)
    flags = FLAG_SETS["all-overrides"]
    plan = await plan_drain(lab_kube, worker, options_for(flags))
    assert not plan.refused
    try:
        proc = await asyncio.to_thread(kubectl, lab, "drain", worker, *flags, "--timeout=240s")
        assert proc.returncode == 0, proc.stderr
        evicted = set(re.findall(r"evicting pod (\S+)", proc.stdout + proc.stderr))
        assert evicted == set(plan.evict) | {b.pod for b in plan.blocked}
        # kubectl joins its warnings with "; " on one line.
        warning = re.search(r"ignoring DaemonSet-managed Pods: ([^;\n]*)", proc.stderr)
        ignored = set(_POD_KEY.findall(warning.group(1))) if warning else set()
        # The DaemonSets' pods: the demo's node-agent, kubeadm's kube-proxy and flannel's.
        assert ignored == {key for key in plan.ignored if any(f"/{ds}-" in key for ds in DAEMONSETS)}
    finally:
        # kubectl's cordon carries no shimshift annotation, so kubectl undoes it.
        await asyncio.to_thread(kubectl, lab, "uncordon", worker)
        await _restore_demo(lab, lab_kube, worker)
    node_state.assert_as_found(worker)


async def test_kubelet_restart_passes_the_health_gate(
    lab: LabInfo, lab_kube: Any, node_state: NodeStateGuard
) -> None:
    worker = lab.workers[-1].name
    node_state.capture(worker)
    baseline = await snapshot_node(lab_kube, worker)
    assert baseline.daemonsets  # node-agent at least
    await asyncio.sleep(1.1)  # heartbeats have 1 s resolution: T must be strictly after any earlier beat
    since = dt.datetime.now(dt.UTC)
    restart = await asyncio.to_thread(lab.exec, worker, ["systemctl", "restart", "kubelet"])
    assert restart.returncode == 0, restart.stderr
    report = await wait_node_healthy(lab_kube, worker, since=since, timeout=150, baseline=baseline)
    assert report.healthy, report.missing
    # The API server keeps heartbeats to the second: a beat in the same second as T counts (the gate's
    # own rule), one from an earlier second does not.
    assert report.heartbeat is not None and report.heartbeat >= since.replace(microsecond=0)
    node_state.assert_as_found(worker)
