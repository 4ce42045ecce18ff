"""The health gate's decision (pure) and the CLI's duration parsing.

Matrix: healthy; Ready False; no Ready condition; heartbeat a second before / older than T; heartbeat
in T's own second; a condition that was good and turned bad vs one that was already bad in the
baseline; a DaemonSet pod not Running; a DaemonSet of the baseline with no pod; terminating DaemonSet
pods ignored; kubectl-style durations.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import click
import pytest

from shimshift.cli.cluster_cmd import parse_duration
from shimshift.core.health_gate import NodeBaseline, control_plane_problems, evaluate_health

T = dt.datetime(2026, 11, 26, 12, 0, 0, tzinfo=dt.UTC)


def node(*, ready: str = "True", beat: str = "2026-11-26T12:00:05Z", **conditions: str) -> dict[str, Any]:
    statuses = {"Ready": ready, "DiskPressure": "False", **conditions}
    return {
        "metadata": {"name": "w"},
        "status": {
            "conditions": [
                {"type": kind, "status": status, "lastHeartbeatTime": beat, "message": f"{kind} {status}"}
                for kind, status in statuses.items()
            ]
        },
    }


def ds_pod(name: str, phase: str = "Running", ds: str = "agent", deleting: bool = False) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "name": name,
        "namespace": "kube-system",
        "ownerReferences": [{"kind": "DaemonSet", "name": ds, "controller": True}],
    }
    if deleting:
        metadata["deletionTimestamp"] = "2026-11-26T12:00:00Z"
    return {"metadata": metadata, "status": {"phase": phase}}


def test_healthy() -> None:
    report = evaluate_health(node(), [ds_pod("agent-1")], since=T)
    assert report.healthy and report.missing == () and report.daemonset_pods == ("kube-system/agent-1",)


@pytest.mark.parametrize(
    ("facts", "code", "fragment"),
    [
        (node(ready="False"), "node-not-ready", "Ready is False"),
        (node(beat="2026-11-26T11:59:59Z"), "no-heartbeat-since-restart", "no heartbeat since"),
        (node(beat="2026-11-26T11:59:00Z"), "no-heartbeat-since-restart", "(last 11:59:00Z)"),
        (node(DiskPressure="True"), "node-condition-turned-bad", "condition DiskPressure turned True"),
        ({"metadata": {"name": "w"}, "status": {}}, "node-not-ready", "no Ready condition"),
    ],
)
def test_what_is_missing(facts: dict[str, Any], code: str, fragment: str) -> None:
    report = evaluate_health(facts, [], since=T)
    assert not report.healthy
    assert any(item.code == code and fragment in item.message for item in report.missing), report.missing
    assert all(item.blocking and str(item.subject) == "node w" for item in report.missing)


def test_a_condition_bad_before_is_not_blamed_on_the_restart() -> None:
    baseline = NodeBaseline(conditions={"Ready": "True", "DiskPressure": "True"})
    assert evaluate_health(node(DiskPressure="True"), [], since=T, baseline=baseline).healthy
    fresh = NodeBaseline(conditions={"Ready": "True", "DiskPressure": "False"})
    assert not evaluate_health(node(DiskPressure="True"), [], since=T, baseline=fresh).healthy


def test_daemonset_pods() -> None:
    report = evaluate_health(node(), [ds_pod("agent-1", phase="Pending")], since=T)
    assert [(item.code, item.message) for item in report.missing] == [
        ("daemonset-pod-not-running", "DaemonSet pod kube-system/agent-1 is Pending")
    ]
    baseline = NodeBaseline(conditions={}, daemonsets=frozenset({"kube-system/agent", "kube-system/proxy"}))
    report = evaluate_health(
        node(), [ds_pod("agent-1"), ds_pod("proxy-1", ds="proxy", deleting=True)], since=T, baseline=baseline
    )
    assert [(item.code, item.message) for item in report.missing] == [
        ("daemonset-pod-gone", "DaemonSet kube-system/proxy has no Running pod on the node")
    ]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("0", 0.0),
        ("30", 30.0),
        ("0s", 0.0),
        ("90s", 90.0),
        ("5m", 300.0),
        ("1h30m", 5400.0),
        ("1.5s", 1.5),
        ("250ms", 0.25),
    ],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "5 m", "-1s", "1d"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(click.BadParameter):
        parse_duration(text)


def test_heartbeat_in_the_same_second_as_t_counts() -> None:
    # Heartbeats carry whole seconds; the restarted kubelet's first post is stamped 12:00:00 when T,
    # taken after the restart, is 12:00:00.4. Waiting for a later one would take minutes with leases.
    since = T.replace(microsecond=400_000)
    assert evaluate_health(node(beat="2026-11-26T12:00:00Z"), [], since=since).healthy


def _static_pod(component: str, node: str, ready: bool) -> dict[str, Any]:
    return {
        "metadata": {"name": f"{component}-{node}", "labels": {"component": component, "tier": "control-plane"}},
        "spec": {"nodeName": node},
        "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]},
    }


def test_control_plane_settles_only_with_every_static_pod_ready_on_the_node() -> None:
    components = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")
    pods = [_static_pod(name, "cp1", True) for name in components]
    assert control_plane_problems(pods, "cp1") == []
    restarting = [*pods[:1], _static_pod("kube-apiserver", "cp1", False), *pods[2:]]
    (apiserver,) = control_plane_problems(restarting, "cp1")
    assert (apiserver.code, apiserver.message) == ("control-plane-pod-not-ready", "kube-apiserver is not Ready on cp1")
    assert [item.message for item in control_plane_problems(pods[1:], "cp1")] == ["etcd is not Ready on cp1"]
    elsewhere = control_plane_problems([_static_pod(name, "cp2", True) for name in components], "cp1")
    assert [item.message for item in elsewhere] == [f"{name} is not Ready on cp1" for name in components]
