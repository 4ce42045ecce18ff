"""Which pods a kubelet < 1.24 on cri-dockerd refuses, grouped by workload, and the migrate guard.

Matrix: the predicate of ``noNewPrivsRequired`` / ``procMountIsDefault`` (k8s v1.23.17 lifecycle/handlers.go)
for each container list (containers: yes; initContainers and ephemeralContainers: never walked) and each
value (false / true / unset; Default / Unmasked / unset); the pod template of every controller kind
(Deployment, ReplicaSet, StatefulSet, DaemonSet, Job, CronJob) and bare pods; grouping (pods under their
controller, ReplicaSet → Deployment, Job → CronJob, an old ReplicaSet revision of a fixed Deployment not
reported, mirror pods, finished pods ignored); kubelet versions; the guard's decision and its findings.
"""

from __future__ import annotations

from typing import Any

import pytest

from shimshift.core.findings import Severity, SubjectKind
from shimshift.core.hardened_pods import (
    TEMPLATE_PATHS,
    AdmitReason,
    HardenedScan,
    HardenedWorkload,
    decide_guard,
    kubelet_checks_runtime_version,
    refused_containers,
    workload_findings,
)

NS = "apps"


def container(name: str = "c", **context: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name, "image": "busybox"}
    if context:
        body["securityContext"] = context
    return body


def spec(*containers: dict[str, Any], **lists: list[dict[str, Any]]) -> dict[str, Any]:
    return {"containers": list(containers), **lists}


HARDENED = spec(container("app", allowPrivilegeEscalation=False, runAsNonRoot=True))
PLAIN = spec(container("app", runAsNonRoot=True))


def owner(kind: str, name: str, *, controller: bool = True) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": kind, "name": name, "uid": "u", "controller": controller}


def pod(
    name: str, pod_spec: dict[str, Any], *, owned_by: dict[str, Any] | None = None, phase: str = "Running"
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "namespace": NS}
    if owned_by is not None:
        metadata["ownerReferences"] = [owned_by]
    return {"metadata": metadata, "spec": pod_spec, "status": {"phase": phase}}


def workload(kind: str, name: str, pod_spec: dict[str, Any], *, owned_by: dict[str, Any] | None = None) -> Any:
    body: dict[str, Any] = {"metadata": {"name": name, "namespace": NS}}
    if owned_by is not None:
        body["metadata"]["ownerReferences"] = [owned_by]
    # Build the nesting from TEMPLATE_PATHS so every kind is placed where the API puts its template.
    node = body
    *parents, last = TEMPLATE_PATHS[kind]
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = pod_spec
    return body


def scan(pods: list[dict[str, Any]], workloads: list[tuple[str, dict[str, Any]]]) -> list[HardenedWorkload]:
    collector = HardenedScan()
    for item in pods:
        collector.add_pod(item)
    for kind, item in workloads:
        collector.add_workload(kind, item)
    return collector.result()


# -- the predicate --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("context", "expected"),
    [
        ({"allowPrivilegeEscalation": False}, [AdmitReason.NO_NEW_PRIVS]),
        ({"allowPrivilegeEscalation": True}, []),
        ({}, []),
        ({"privileged": False, "runAsNonRoot": True}, []),
        ({"procMount": "Unmasked"}, [AdmitReason.PROC_MOUNT]),
        ({"procMount": "Default"}, []),
        (
            {"allowPrivilegeEscalation": False, "procMount": "Unmasked"},
            [AdmitReason.NO_NEW_PRIVS, AdmitReason.PROC_MOUNT],
        ),
    ],
)
def test_predicate_on_containers(context: dict[str, Any], expected: list[AdmitReason]) -> None:
    hits = refused_containers(spec(container("plain"), container("x", **context)))
    assert [hit.reason for hit in hits] == expected
    assert all(hit.container == "x" for hit in hits)


@pytest.mark.parametrize("field", ["initContainers", "ephemeralContainers"])
@pytest.mark.parametrize("context", [{"allowPrivilegeEscalation": False}, {"procMount": "Unmasked"}])
def test_init_and_ephemeral_containers_are_not_walked(field: str, context: dict[str, Any]) -> None:
    # noNewPrivsRequired and procMountIsDefault range over pod.Spec.Containers only.
    assert refused_containers(spec(container("app"), **{field: [container("x", **context)]})) == ()
    assert refused_containers(spec(container("app", **context), **{field: [container("x")]}))


def test_no_containers_and_null_security_context() -> None:
    assert refused_containers({}) == ()
    assert refused_containers({"containers": [{"name": "a", "securityContext": None}]}) == ()


def test_pod_level_security_context_does_not_count() -> None:
    # The pod-level PodSecurityContext has no allowPrivilegeEscalation; seccomp/runAsNonRoot there are fine.
    assert refused_containers({**PLAIN, "securityContext": {"runAsNonRoot": True}}) == ()


# -- every controller kind ----------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", sorted(TEMPLATE_PATHS))
def test_every_controller_kind_template(kind: str) -> None:
    found = scan([], [(kind, workload(kind, "hard", HARDENED)), (kind, workload(kind, "soft", PLAIN))])
    assert [(w.kind, w.name, w.template, w.pods) for w in found] == [(kind, "hard", True, 0)]
    assert found[0].settings() == "app (allowPrivilegeEscalation: false)"


@pytest.mark.parametrize("kind", ["StatefulSet", "DaemonSet", "Job"])
def test_pods_grouped_under_their_controller(kind: str) -> None:
    pods = [pod(f"hard-{i}", HARDENED, owned_by=owner(kind, "hard")) for i in range(3)]
    found = scan(pods, [(kind, workload(kind, "hard", HARDENED))])
    assert [(w.kind, w.name, w.template, w.pods) for w in found] == [(kind, "hard", True, 3)]
    assert found[0].example_pod == f"{NS}/hard-0"


def test_replicaset_of_a_deployment_reports_the_deployment() -> None:
    pods = [pod(f"web-abc-{i}", HARDENED, owned_by=owner("ReplicaSet", "web-abc")) for i in range(2)]
    found = scan(
        pods,
        [
            ("Deployment", workload("Deployment", "web", HARDENED)),
            ("ReplicaSet", workload("ReplicaSet", "web-abc", HARDENED, owned_by=owner("Deployment", "web"))),
        ],
    )
    assert [(w.kind, w.name, w.template, w.pods) for w in found] == [("Deployment", "web", True, 2)]


def test_old_replicaset_revision_of_a_fixed_deployment_is_not_reported() -> None:
    found = scan(
        [pod("web-new-0", PLAIN, owned_by=owner("ReplicaSet", "web-new"))],
        [
            ("Deployment", workload("Deployment", "web", PLAIN)),
            ("ReplicaSet", workload("ReplicaSet", "web-old", HARDENED, owned_by=owner("Deployment", "web"))),
            ("ReplicaSet", workload("ReplicaSet", "web-new", PLAIN, owned_by=owner("Deployment", "web"))),
        ],
    )
    assert found == []


def test_hardened_pods_of_a_plain_deployment_are_reported_under_it() -> None:
    # e.g. a mutating webhook added allowPrivilegeEscalation: false, or a rollout in progress.
    found = scan(
        [pod("web-abc-0", HARDENED, owned_by=owner("ReplicaSet", "web-abc"))],
        [
            ("Deployment", workload("Deployment", "web", PLAIN)),
            ("ReplicaSet", workload("ReplicaSet", "web-abc", PLAIN, owned_by=owner("Deployment", "web"))),
        ],
    )
    assert [(w.kind, w.name, w.template, w.pods) for w in found] == [("Deployment", "web", False, 1)]


def test_standalone_replicaset_is_judged_itself() -> None:
    found = scan([], [("ReplicaSet", workload("ReplicaSet", "alone", HARDENED))])
    assert [(w.kind, w.name) for w in found] == [("ReplicaSet", "alone")]


def test_job_of_a_cronjob_reports_the_cronjob() -> None:
    found = scan(
        [pod("nightly-1-x", HARDENED, owned_by=owner("Job", "nightly-1"))],
        [
            ("CronJob", workload("CronJob", "nightly", HARDENED)),
            ("Job", workload("Job", "nightly-1", HARDENED, owned_by=owner("CronJob", "nightly"))),
        ],
    )
    assert [(w.kind, w.name, w.template, w.pods) for w in found] == [("CronJob", "nightly", True, 1)]


def test_bare_pod_mirror_pod_and_unknown_controller() -> None:
    found = scan(
        [
            pod("bare", HARDENED),
            pod("static-agent-node1", HARDENED, owned_by=owner("Node", "node1")),
            pod("rollout-x", HARDENED, owned_by=owner("Rollout", "canary")),
            pod("not-controller", HARDENED, owned_by=owner("ConfigMap", "cm", controller=False)),
        ],
        [],
    )
    assert [(w.kind, w.name, w.pods) for w in found] == [
        ("Pod", "bare", 1),
        ("Pod", "not-controller", 1),
        ("Pod", "static-agent-node1", 1),
        ("Rollout", "canary", 1),
    ]
    assert found[0].subject.kind is SubjectKind.POD and str(found[0].subject) == f"pod {NS}/bare"


@pytest.mark.parametrize("phase", ["Succeeded", "Failed"])
def test_finished_pods_are_ignored(phase: str) -> None:
    assert scan([pod("done", HARDENED, phase=phase)], []) == []
    assert scan([pod("pending", HARDENED, phase="Pending")], [])


def test_pods_must_come_first() -> None:
    collector = HardenedScan()
    collector.add_workload("Deployment", workload("Deployment", "web", PLAIN))
    with pytest.raises(RuntimeError):
        collector.add_pod(pod("late", HARDENED))


def test_order_and_json() -> None:
    found = scan(
        [pod("bare", HARDENED)],
        [
            ("DaemonSet", workload("DaemonSet", "agent", HARDENED)),
            ("CronJob", workload("CronJob", "nightly", spec(container("job", procMount="Unmasked")))),
            ("Deployment", workload("Deployment", "web", HARDENED)),
        ],
    )
    assert [w.kind for w in found] == ["CronJob", "Deployment", "DaemonSet", "Pod"]
    assert found[0].to_json() == {
        "kind": "CronJob",
        "namespace": NS,
        "name": "nightly",
        "reasons": ["ProcMount"],
        "containers": [{"name": "job", "reason": "ProcMount", "setting": "procMount: Unmasked"}],
        "template": True,
        "pods": 0,
        "examplePod": None,
    }


# -- kubelet versions and the guard -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("version", "checks"),
    [("v1.23.17", True), ("v1.20.0", True), ("1.23", True), ("v1.24.0", False), ("v1.24.17", False),
     ("v1.30.1", False), ("", True), ("garbage", True)],
)
def test_kubelet_versions(version: str, checks: bool) -> None:
    assert kubelet_checks_runtime_version(version) is checks


def restricted() -> list[HardenedWorkload]:
    return scan([], [("Deployment", workload("Deployment", "restricted", HARDENED))])


def test_guard_refuses_every_old_kubelet_node() -> None:
    decision = decide_guard(
        nodes=[("cp", "v1.23.17"), ("w1", "v1.23.17"), ("w2", "v1.24.17")], workloads=restricted(), accepted=False
    )
    assert decision.blocked
    assert decision.refused_nodes == (("cp", "v1.23.17"), ("w1", "v1.23.17"))
    assert [(f.severity, f.code, str(f.subject)) for f in decision.findings] == [
        (Severity.ERROR, "hardened-pods-refused", "node cp"),
        (Severity.ERROR, "hardened-pods-refused", "node w1"),
    ]
    assert "Deployment apps/restricted" in decision.findings[0].message
    assert "--accept-refused-hardened-pods" in decision.findings[0].hint


def test_guard_opt_in_turns_refusals_into_warnings() -> None:
    decision = decide_guard(nodes=[("w1", "v1.23.17")], workloads=restricted(), accepted=True)
    assert not decision.blocked
    assert [(f.severity, f.code) for f in decision.findings] == [(Severity.WARNING, "hardened-pods-accepted")]


@pytest.mark.parametrize(
    ("nodes", "workloads"),
    [([("w1", "v1.23.17")], []), ([("w1", "v1.24.0")], None), ([], None)],
)
def test_guard_lets_through(nodes: list[tuple[str, str]], workloads: list[HardenedWorkload] | None) -> None:
    decision = decide_guard(nodes=nodes, workloads=restricted() if workloads is None else workloads, accepted=False)
    assert not decision.blocked and decision.findings == ()


def test_guard_names_at_most_three_workloads() -> None:
    many = scan([], [("Deployment", workload("Deployment", f"d{i}", HARDENED)) for i in range(5)])
    message = decide_guard(nodes=[("w1", "v1.23.17")], workloads=many, accepted=False).findings[0].message
    assert "d0, " in message and "d2 and 2 more" in message and "d3" not in message


def test_workload_findings_severity_follows_affected_nodes() -> None:
    assert [f.severity for f in workload_findings(restricted(), affected_nodes=2)] == [Severity.ERROR]
    warning = workload_findings(restricted(), affected_nodes=0)[0]
    assert warning.severity is Severity.WARNING and warning.setting == "allowPrivilegeEscalation"
    assert str(warning.subject) == "Deployment apps/restricted"
