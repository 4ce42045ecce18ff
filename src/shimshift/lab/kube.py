"""The lab's API server, reached with kubectl inside the control-plane node (kubeadm's admin.conf), and the
waits `lab up` makes on it."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Sequence

from shimshift.lab import render
from shimshift.lab.docker import node_exec, wait_until
from shimshift.lab.model import (
    LabNode,
)

ADMIN_CONF = "/etc/kubernetes/admin.conf"


# What kubeadm's addons and the CNI daemon run, waited for before the lab counts as up.
SYSTEM_ROLLOUTS = (
    ("kube-system", "daemonset/kube-proxy"),
    (render.FLANNEL_NAMESPACE, f"daemonset/{render.FLANNEL_DAEMONSET}"),
    ("kube-system", "deployment/coredns"),
)


def kubectl(
    node: str,
    argv: Sequence[str],
    *,
    input: str | None = None,
    check: bool = True,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """kubectl inside the control-plane node with kubeadm's admin.conf."""
    return node_exec(
        node, ["kubectl", f"--kubeconfig={ADMIN_CONF}", *argv], input=input, check=check, timeout=timeout
    )


def rollout(cp: LabNode, namespace: str, what: str) -> None:
    kubectl(cp.name, ["rollout", "status", "-n", namespace, what, "--timeout=240s"], timeout=260)


def wait_pod_cidrs(cp: LabNode, nodes: Sequence[LabNode]) -> dict[str, str]:
    """Every node's podCIDR (flanneld, started before one is set, would wait for it anyway)."""
    cidrs: dict[str, str] = {}

    def probe() -> str | None:
        out = kubectl(cp.name, ["get", "nodes", "-o", "json"], check=False).stdout
        try:
            items = json.loads(out)["items"]
        except (ValueError, KeyError):
            return "API server not answering"
        cidrs.clear()
        cidrs.update({i["metadata"]["name"]: i["spec"].get("podCIDR", "") for i in items})
        missing = [n.name for n in nodes if not cidrs.get(n.name)]
        return f"no podCIDR yet for {', '.join(missing)}" if missing else None

    wait_until("a podCIDR on every node", probe, timeout=120)
    return cidrs


def nodes_not_ready(cp: LabNode, nodes: Sequence[LabNode]) -> str | None:
    out = kubectl(cp.name, ["get", "nodes", "-o", "json"], check=False).stdout
    try:
        items = json.loads(out)["items"]
    except (ValueError, KeyError):
        return "API server not answering"
    ready = {
        i["metadata"]["name"]
        for i in items
        if any(c["type"] == "Ready" and c["status"] == "True" for c in i["status"].get("conditions", []))
    }
    missing = [n.name for n in nodes if n.name not in ready]
    return f"not Ready: {', '.join(missing)}" if missing else None


