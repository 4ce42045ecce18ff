"""Migration tests drain nodes for real, with --force and --delete-emptydir-data as an operator of the
lab would: the bare pod and the completed Job's pod are then gone for good. Each module puts the demo
workloads back afterwards so later tests find the lab as `lab up` left it.

The `restricted` Deployment (allowPrivilegeEscalation: false) makes `migrate` refuse every 1.23 node, and
once its pods are refused on a migrated node its PodDisruptionBudget can block the drains of the nodes
after it. Modules about the migration's mechanics therefore start without it (it comes back with the
rest); a module that is about it sets ``KEEPS_RESTRICTED_DEMO = True``.

kubeadm's own CoreDNS Deployment is such a workload too: kubeadm 1.23 gives its container
``allowPrivilegeEscalation: false`` (k8s.io/kubernetes v1.23.17 cmd/kubeadm/app/phases/addons/dns/manifests.go),
so on a real 1.23 cluster `migrate` refuses every node, and CoreDNS pods rescheduled onto a migrated node stay
Pending. The mechanics modules do what an operator who migrates without upgrading the kubelet has to do: they
leave that one setting out of CoreDNS for the module (a rollout) and put it back afterwards."""

from __future__ import annotations

import subprocess
from typing import TYPE_CHECKING

import pytest

from shimshift.lab import cluster, render

from .helpers import DEMO, KUBECTL, kubectl, wait_until

if TYPE_CHECKING:
    from collections.abc import Iterator

    from shimshift.lab.model import LabInfo


def restore_demo_workloads(lab: LabInfo) -> None:
    base = [str(KUBECTL), "--kubeconfig", str(lab.kubeconfig)]
    manifests = render.workloads(first_worker=lab.workers[0].name)
    # A finished Job is not re-run by apply; delete it so its completed pod comes back too.
    subprocess.run(
        [*base, "-n", DEMO, "delete", "job", "once", "--ignore-not-found", "--wait"],
        check=True,
        capture_output=True,
        timeout=120,
    )
    subprocess.run(
        [*base, "apply", "-f", "-"], input=manifests, text=True, check=True, capture_output=True, timeout=120
    )
    deployments = ("deployment/web", "deployment/scratch", f"deployment/{render.RESTRICTED_DEPLOYMENT}")
    for what in (*deployments, "daemonset/node-agent", "statefulset/db"):
        subprocess.run(
            [*base, "-n", DEMO, "rollout", "status", what, "--timeout=240s"],
            check=True,
            capture_output=True,
            timeout=260,
        )
    subprocess.run(
        [*base, "-n", DEMO, "wait", "--for=condition=complete", "job/once", "--timeout=180s"],
        check=True,
        capture_output=True,
        timeout=200,
    )
    subprocess.run(
        [*base, "-n", DEMO, "wait", "--for=condition=Ready", "pod/bare", "--timeout=180s"],
        check=True,
        capture_output=True,
        timeout=200,
    )


def remove_restricted_demo(lab: LabInfo) -> None:
    base = [str(KUBECTL), "--kubeconfig", str(lab.kubeconfig), "-n", DEMO]
    for kind in ("deployment", "poddisruptionbudget"):
        subprocess.run(
            [*base, "delete", kind, render.RESTRICTED_DEPLOYMENT, "--ignore-not-found", "--wait"],
            check=True,
            capture_output=True,
            timeout=120,
        )
    # Its pods are gone before the module's first drain or audit looks at the namespace (`kubectl wait
    # --for=delete -l` fails when nothing matches, so poll).
    selector = f"app={render.RESTRICTED_DEPLOYMENT}"
    wait_until(
        lambda: not kubectl(lab, "-n", DEMO, "get", "pods", "-l", selector, "-o", "name").strip(),
        timeout=120,
        what="the restricted Deployment's pods to be gone",
    )


def set_coredns_no_new_privs(lab: LabInfo, *, hardened: bool) -> None:
    cluster.set_coredns_no_new_privs(lab.control_plane.name, hardened=hardened)


def restricted_demo_present(lab: LabInfo) -> bool:
    name = f"deployment/{render.RESTRICTED_DEPLOYMENT}"
    found = kubectl(lab, "-n", DEMO, "get", name, "--ignore-not-found", "-o", "name")
    return bool(found.strip())


@pytest.fixture(scope="module", autouse=True)
def demo_workloads_restored(lab: LabInfo, request: pytest.FixtureRequest) -> Iterator[None]:
    # A lab built before the restricted Deployment existed is left without it, as found.
    had_restricted = restricted_demo_present(lab)
    keeps = getattr(request.module, "KEEPS_RESTRICTED_DEMO", False)
    if not keeps:
        remove_restricted_demo(lab)
        set_coredns_no_new_privs(lab, hardened=False)
    yield
    restore_demo_workloads(lab)
    if not keeps:
        set_coredns_no_new_privs(lab, hardened=True)
    if not had_restricted:
        remove_restricted_demo(lab)
