"""The lab's sample workloads and CoreDNS's one setting the hardened demo decides: waited for, switched."""

from __future__ import annotations

import json

from shimshift.lab import render
from shimshift.lab.docker import wait_until
from shimshift.lab.kube import kubectl
from shimshift.lab.model import (
    DEMO_NAMESPACE,
    LabNode,
)


def set_coredns_no_new_privs(control_plane: str, *, hardened: bool) -> None:
    """CoreDNS's container with kubeadm's ``allowPrivilegeEscalation: false`` (hardened) or without it.

    kubeadm 1.23 deploys CoreDNS with that setting (cmd/kubeadm/app/phases/addons/dns/manifests.go@v1.23.17),
    and a kubelet before 1.24 on cri-dockerd refuses to start such a pod (Mirantis/cri-dockerd#167): an
    operator who migrates 1.23 kubelets without upgrading them must leave it out while they run, as the
    lab without its hardened demo does (docs/hardened-pods.md)."""
    container = {"name": "coredns", "securityContext": {"allowPrivilegeEscalation": False if hardened else None}}
    patch = json.dumps({"spec": {"template": {"spec": {"containers": [container]}}}})  # None: the field goes
    kubectl(control_plane, ["-n", "kube-system", "patch", "deployment/coredns", "--type=strategic", "-p", patch])
    kubectl(control_plane, ["-n", "kube-system", "rollout", "status", "deployment/coredns", "--timeout=180s"],
            timeout=200)
    if hardened:
        return

    def left() -> str | None:
        # The hardened-pods guard also counts pods still terminating (CoreDNS's lameduck keeps them a while).
        listing = kubectl(control_plane, ["-n", "kube-system", "get", "pods", "-l", "k8s-app=kube-dns", "-o", "json"])
        hardened_pods = [
            pod["metadata"]["name"]
            for pod in json.loads(listing.stdout)["items"]
            if any((c.get("securityContext") or {}).get("allowPrivilegeEscalation") is False
                   for c in pod["spec"]["containers"])
        ]
        return f"still there: {', '.join(hardened_pods)}" if hardened_pods else None

    wait_until("CoreDNS pods without allowPrivilegeEscalation: false only", left, timeout=120, interval=2)


def wait_workloads(cp: LabNode, *, first_worker: str, hardened_demo: bool) -> None:
    ns = ["-n", DEMO_NAMESPACE]
    deployments: tuple[str, ...] = ("deployment/web", "deployment/scratch")
    if hardened_demo:
        deployments += (f"deployment/{render.RESTRICTED_DEPLOYMENT}",)
    for what in (*deployments, "daemonset/node-agent", "statefulset/db"):
        kubectl(cp.name, ["rollout", "status", *ns, what, "--timeout=180s"], timeout=200)
    kubectl(cp.name, ["wait", *ns, "--for=condition=complete", "job/once", "--timeout=120s"], timeout=140)
    kubectl(cp.name, ["wait", *ns, "--for=condition=Ready", "pod/bare", "--timeout=120s"], timeout=140)
    mirror = f"{render.STATIC_POD_NAME}-{first_worker}"
    wait_until(
        f"static pod {mirror}",
        lambda: (
            None
            if kubectl(cp.name, ["get", *ns, "pod", mirror], check=False).returncode == 0
            else f"mirror pod {mirror} not there yet"
        ),
        timeout=120,
        interval=2,
    )
    kubectl(cp.name, ["wait", *ns, "--for=condition=Ready", f"pod/{mirror}", "--timeout=120s"], timeout=140)


