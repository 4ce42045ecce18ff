"""Hardened pods against a real kube-apiserver: the workload scan, audit's report, and migrate's guard.

Matrix: the scan (in pages of 2) finds the hardened template of every controller kind the API server
stores (Deployment, ReplicaSet, StatefulSet, DaemonSet, Job, CronJob) and a bare pod, reports a
Deployment's ReplicaSet and pods as the Deployment, ignores an init-container-only pod and a plain
Deployment; `audit` shows them in json, yaml and the table; `migrate` of a 1.23 node is refused with exit
2 and one screen, the node untouched and no run in the journal; with the opt-in the run begins, records
the opt-in and the accepted workloads in the journal and the report (the node is then refused at SSH,
before anything is done to it); a 1.24 node is not guarded; `plan` shows the blocking finding per node.
"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml
from click.testing import CliRunner, Result

from shimshift.adapters.kube.workloads import scan_hardened_workloads
from shimshift.cli.findings import LIST_CAP
from shimshift.cli.main import main
from shimshift.core.wellknown import CORDONED_BY_ANNOTATION
from tests.apiserver_fixture import free_port
from tests.e2e.migrate.helpers import recorded_runs

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from tests.apiserver_fixture import LocalApiServer
    from tests.kube_world import World

HARDENED = {"allowPrivilegeEscalation": False, "runAsNonRoot": True}


def pod_spec(*, hardened: bool = True, init_only: bool = False) -> dict[str, Any]:
    context = HARDENED if hardened and not init_only else {}
    spec: dict[str, Any] = {"containers": [{"name": "app", "image": "busybox", "securityContext": context}]}
    if init_only:
        spec["initContainers"] = [{"name": "init", "image": "busybox", "securityContext": HARDENED}]
    return spec


def template(labels: dict[str, str], spec: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"labels": labels}, "spec": spec}


async def create(world: World, path: str, body: dict[str, Any]) -> dict[str, Any]:
    return await world.call("POST", path.format(ns=world.namespace), body)


# Every collection hardened_objects fills; the API server is shared by the whole session, and other tests'
# `migrate` runs must not meet this module's hardened workloads in the guard.
COLLECTIONS = (
    "/apis/apps/v1/namespaces/{ns}/deployments",
    "/apis/apps/v1/namespaces/{ns}/replicasets",
    "/apis/apps/v1/namespaces/{ns}/statefulsets",
    "/apis/apps/v1/namespaces/{ns}/daemonsets",
    "/apis/batch/v1/namespaces/{ns}/jobs",
    "/apis/batch/v1/namespaces/{ns}/cronjobs",
    "/api/v1/namespaces/{ns}/pods",
)


@pytest.fixture
async def world(world: World) -> AsyncIterator[World]:
    yield world
    for path in COLLECTIONS:
        # No kubelet and no garbage collector here: delete every object now, pods without a grace period,
        # and Jobs not orphaning (batch/v1's default adds an orphan finalizer only the collector removes).
        await world.call(
            "DELETE",
            path.format(ns=world.namespace),
            {"apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0, "propagationPolicy": "Background"},
        )


async def hardened_objects(world: World) -> None:
    """One hardened object of each kind in the test's namespace, plus things that must not be reported."""
    apps = "/apis/apps/v1/namespaces/{ns}"
    labels = {"app": "web"}
    deployment = await create(
        world,
        f"{apps}/deployments",
        {
            "metadata": {"name": "web"},
            "spec": {"selector": {"matchLabels": labels}, "template": template(labels, pod_spec())},
        },
    )
    owner = {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": deployment["metadata"]["uid"]}
    rs_labels = {**labels, "pod-template-hash": "abc"}
    replica_set = await create(
        world,
        f"{apps}/replicasets",
        {
            "metadata": {"name": "web-abc", "labels": rs_labels, "ownerReferences": [{**owner, "controller": True}]},
            "spec": {"selector": {"matchLabels": rs_labels}, "template": template(rs_labels, pod_spec())},
        },
    )
    rs_owner = {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "name": "web-abc",
        "uid": replica_set["metadata"]["uid"],
        "controller": True,
    }
    for index in range(2):
        await create(
            world,
            "/api/v1/namespaces/{ns}/pods",
            {"metadata": {"name": f"web-abc-{index}", "ownerReferences": [rs_owner]}, "spec": pod_spec()},
        )
    for kind in ("ReplicaSet", "StatefulSet", "DaemonSet"):
        name = kind.lower()
        selector = {"matchLabels": {"app": name}}
        spec: dict[str, Any] = {"selector": selector, "template": template({"app": name}, pod_spec())}
        if kind == "StatefulSet":
            spec["serviceName"] = name
        await create(world, f"{apps}/{name}s", {"metadata": {"name": name}, "spec": spec})
    job_spec = {**pod_spec(), "restartPolicy": "Never"}
    job = {"metadata": {"name": "job"}, "spec": {"template": {"spec": job_spec}}}
    await create(world, "/apis/batch/v1/namespaces/{ns}/jobs", job)
    await create(
        world,
        "/apis/batch/v1/namespaces/{ns}/cronjobs",
        {
            "metadata": {"name": "cron"},
            "spec": {"schedule": "0 0 1 1 *", "jobTemplate": {"spec": {"template": {"spec": job_spec}}}},
        },
    )
    await create(world, "/api/v1/namespaces/{ns}/pods", {"metadata": {"name": "bare"}, "spec": pod_spec()})
    await create(
        world, "/api/v1/namespaces/{ns}/pods", {"metadata": {"name": "init-only"}, "spec": pod_spec(init_only=True)}
    )
    await create(
        world,
        f"{apps}/deployments",
        {
            "metadata": {"name": "plain"},
            "spec": {
                "selector": {"matchLabels": {"app": "plain"}},
                "template": template({"app": "plain"}, pod_spec(hardened=False)),
            },
        },
    )


EXPECTED = [
    ("CronJob", "cron", True, 0),
    ("Deployment", "web", True, 2),
    ("StatefulSet", "statefulset", True, 0),
    ("DaemonSet", "daemonset", True, 0),
    ("Job", "job", True, 0),
    ("ReplicaSet", "replicaset", True, 0),
    ("Pod", "bare", False, 1),
]


async def invoke(apiserver: LocalApiServer, *args: str) -> Result:
    return await asyncio.to_thread(CliRunner().invoke, main, [*args, "--kubeconfig", str(apiserver.kubeconfig)])


async def test_scan_finds_every_kind_in_pages(world: World, kube: Any) -> None:
    await hardened_objects(world)
    found = [w for w in await scan_hardened_workloads(kube, chunk_size=2) if w.namespace == world.namespace]
    assert [(w.kind, w.name, w.template, w.pods) for w in found] == EXPECTED
    web = next(w for w in found if w.name == "web")
    assert web.settings() == "app (allowPrivilegeEscalation: false)"
    assert web.example_pod == f"{world.namespace}/web-abc-0"


async def test_audit_shows_them(world: World, apiserver: LocalApiServer) -> None:
    node = await world.node("a")
    await hardened_objects(world)
    selector = f"shimshift-test={world.suffix}"
    as_json = await invoke(apiserver, "audit", "-l", selector, "-o", "json")
    assert as_json.exit_code == 0, as_json.output
    report = json.loads(as_json.stdout)
    hardened = report["hardenedPods"]
    ours = [w for w in hardened["workloads"] if w["namespace"] == world.namespace]
    assert [(w["kind"], w["name"], w["template"], w["pods"]) for w in ours] == EXPECTED
    assert hardened["count"] >= len(EXPECTED) and hardened["refusingNodes"] == [node]
    web = next(f for f in report["findings"] if f["subject"]["name"] == f"Deployment {world.namespace}/web")
    assert (web["severity"], web["code"]) == ("error", "hardened-pods-refused")
    assert web["setting"] == "allowPrivilegeEscalation"
    as_yaml = await invoke(apiserver, "audit", "-l", selector, "-o", "yaml")
    assert yaml.safe_load(as_yaml.stdout) == report
    table = await invoke(apiserver, "audit", "-l", selector)
    assert "Hardened workloads" in table.stdout and f"Deployment {world.namespace}/web" in table.stdout
    assert f"Nodes that refuse them on cri-dockerd (kubelet < 1.24): {node}" in table.stdout


def unreachable_ssh_config(directory: Path) -> Path:
    """Every host on a closed loopback port: a node is refused at SSH before anything is done to it."""
    path = directory / "ssh_config"
    path.write_text(f"Host *\n  HostName 127.0.0.1\n  Port {free_port()}\n")
    return path


async def test_migrate_guard_refuses_and_changes_nothing(
    world: World, apiserver: LocalApiServer, kube: Any, tmp_path: Path
) -> None:
    old = await world.node("old")
    await hardened_objects(world)
    journal = tmp_path / "journal.sqlite"
    ssh_config = unreachable_ssh_config(tmp_path)
    reports = tmp_path / "reports"
    common = ["--journal", str(journal), "--ssh-config", str(ssh_config), "--report-dir", str(reports)]
    refused = await invoke(apiserver, "migrate", old, *common)
    assert refused.exit_code == 2, refused.output
    screen = refused.stderr
    assert screen.startswith("shimshift: refused, nothing changed: 1 node(s) with a kubelet before 1.24")
    assert f"Nodes refused (kubelet < 1.24): {old} (v1.23.17)" in screen
    # Earlier tests' namespaces hold hardened workloads too: the list is capped, the count is all of them.
    total = len(await scan_hardened_workloads(kube))
    assert f"would refuse the pods of {total} hardened workload(s)" in screen and total >= len(EXPECTED)
    listed = [line for line in screen.splitlines() if re.match(r"  \S+ \S+/\S+: (\d+ pod\(s\)|no pod) now", line)]
    assert len(listed) == min(total, LIST_CAP)
    assert (total <= LIST_CAP) is (f"... and {total - LIST_CAP} more" not in screen)
    assert "--accept-refused-hardened-pods" in screen and len(screen.splitlines()) <= 40
    body = await world.get_node(old)
    assert not body["spec"].get("unschedulable")
    assert CORDONED_BY_ANNOTATION not in (body["metadata"].get("annotations") or {})
    assert not reports.exists()
    assert recorded_runs(journal) == []


async def test_migrate_opt_in_is_recorded(world: World, apiserver: LocalApiServer, tmp_path: Path) -> None:
    old = await world.node("old")
    await hardened_objects(world)
    journal = tmp_path / "journal.sqlite"
    reports = tmp_path / "reports"
    common = ["--journal", str(journal), "--ssh-config", str(unreachable_ssh_config(tmp_path))]
    accepted = await invoke(
        apiserver, "migrate", old, "--accept-refused-hardened-pods", "--report-dir", str(reports), *common
    )
    # Past the guard; the node is then refused at SSH (no lab here), before cordon.
    assert accepted.exit_code == 1, accepted.output
    assert not (await world.get_node(old))["spec"].get("unschedulable")
    (run,) = recorded_runs(journal)
    assert run.options["accept_refused_hardened_pods"] is True
    assert f"Deployment {world.namespace}/web" in run.options["accepted_hardened_workloads"]
    report = json.loads(next(reports.glob("shimshift-*.json")).read_text())
    assert report["options"]["accept_refused_hardened_pods"] is True
    markdown = (await invoke(apiserver, "report", *common)).stdout
    assert "**Opt-in `--accept-refused-hardened-pods`**" in markdown
    assert f"`Deployment {world.namespace}/web`" in markdown


async def test_kubelet_124_is_not_guarded_and_plan_shows_the_finding(
    world: World, apiserver: LocalApiServer, tmp_path: Path
) -> None:
    old, new = await world.node("old"), await world.node("new", kubelet="v1.24.17")
    await hardened_objects(world)
    common = ["--journal", str(tmp_path / "journal.sqlite"), "--ssh-config", str(unreachable_ssh_config(tmp_path))]
    plan = await invoke(apiserver, "plan", old, new, "-o", "json", *common)
    assert plan.exit_code == 1, plan.output
    by_node = {item["node"]: item for item in json.loads(plan.stdout)}
    finding, unreachable = by_node[old]["findings"]
    assert (finding["severity"], finding["code"], finding["subject"]) == (
        "error",
        "hardened-pods-refused",
        {"kind": "node", "name": old},
    )
    # No lab here: preflight is refused at SSH, and says so in the same shape, with the SSH rule's own code.
    assert (unreachable["code"], unreachable["subject"]) == ("ssh-connect-failed", {"kind": "node", "name": old})
    assert [f["code"] for f in by_node[new]["findings"]] == ["ssh-connect-failed"]
    text = await invoke(apiserver, "plan", old, *common)
    assert f"blocking: node {old}: error: kubelet v1.23.17 on cri-dockerd would refuse" in text.stdout
    accepted = await invoke(apiserver, "plan", old, "-o", "json", "--accept-refused-hardened-pods", *common)
    assert [(f["code"], f["severity"]) for f in json.loads(accepted.stdout)[0]["findings"]] == [
        ("hardened-pods-accepted", "warning"),
        ("ssh-connect-failed", "error"),
    ]
    migrate_new = await invoke(apiserver, "migrate", new, *common, "--report-dir", str(tmp_path / "reports"))
    assert migrate_new.exit_code == 1, migrate_new.output  # not refused by the guard: refused at SSH
    assert "refused, nothing changed" not in migrate_new.stderr
