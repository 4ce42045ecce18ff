"""What the lab's network must still do after a migration or an upgrade, seen the way applications see it.

From the client pod on every node (the node-agent DaemonSet, busybox): the Service names resolve through
CoreDNS and answer through kube-proxy (`web`, a ClusterIP Service in front of a Deployment; `db-0.db`, a
pod of a headless StatefulSet; `kubernetes.default`, the API server), and the pod's own address lies in its
node's podCIDR (flannel's subnet for that node). Plus the containers of the system DaemonSets (kube-proxy and
flannel), to compare before and after.
"""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shimshift.lab import render
from shimshift.lab.model import DEMO_NAMESPACE

if TYPE_CHECKING:
    from shimshift.lab.model import LabInfo

KUBECTL = Path(os.environ.get("SHIMSHIFT_CACHE", "/var/cache/shimshift")) / "bin" / "v1.23.17" / "kubectl"
DOMAIN = "cluster.local"
WEB_URL = f"http://{render.WEB_SERVICE}.{DEMO_NAMESPACE}.svc.{DOMAIN}:{render.WEB_PORT}/"
DB_URL = f"http://db-0.{render.DB_SERVICE}.{DEMO_NAMESPACE}.svc.{DOMAIN}:{render.DB_PORT}/"
SYSTEM_DAEMONSETS = (("kube-system", "k8s-app=kube-proxy"), (render.FLANNEL_NAMESPACE, "app=flannel"))


def _kubectl(lab: LabInfo, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(KUBECTL), "--kubeconfig", str(lab.kubeconfig), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _pods(lab: LabInfo, namespace: str, selector: str) -> list[dict[str, Any]]:
    result = _kubectl(lab, "-n", namespace, "get", "pods", "-l", selector, "-o", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["items"]  # type: ignore[no-any-return]


def system_daemonset_containers(lab: LabInfo) -> dict[str, tuple[str, int]]:
    """pod name -> (container ID, restart count) of every kube-proxy and flannel pod."""
    found = {}
    for namespace, selector in SYSTEM_DAEMONSETS:
        for pod in _pods(lab, namespace, selector):
            for status in pod.get("status", {}).get("containerStatuses", []):
                found[pod["metadata"]["name"]] = (status.get("containerID", ""), int(status.get("restartCount", 0)))
    return found


def assert_flannel_kept_and_kube_proxy_runs(
    lab: LabInfo, before: dict[str, tuple[str, int]], after: dict[str, tuple[str, int]], release: str
) -> None:
    """Across an upgrade: flannel (no kubeadm addon) kept every container, and kube-proxy runs ``release``'s
    image on every node, Running (`kubeadm upgrade apply` rolls its DaemonSet: cmd/kubeadm/app/phases/addons/
    proxy). ``before``/``after``: :func:`system_daemonset_containers`."""
    flannel = {name: ids for name, ids in before.items() if name.startswith(render.FLANNEL_DAEMONSET)}
    assert len(flannel) == len(lab.nodes), before
    assert {name: after.get(name) for name in flannel} == flannel
    images = {
        (pod["spec"]["nodeName"], pod["spec"]["containers"][0]["image"], pod["status"].get("phase"))
        for pod in _pods(lab, "kube-system", "k8s-app=kube-proxy")
    }
    assert images == {(n.name, f"registry.k8s.io/kube-proxy:v{release}", "Running") for n in lab.nodes}


def _clients(lab: LabInfo) -> dict[str, dict[str, Any]]:
    """node name -> the running client pod on it."""
    pods = _pods(lab, DEMO_NAMESPACE, f"app={render.CLIENT_DAEMONSET}")
    return {p["spec"]["nodeName"]: p for p in pods if p.get("status", {}).get("phase") == "Running"}


def _fetch(lab: LabInfo, pod: str, url: str) -> subprocess.CompletedProcess[str]:
    # Bounded by busybox's `timeout`: Debian's busybox-static wget crashes (SIGSEGV) when given its own -T.
    return _in_pod(lab, pod, "timeout", "10", "wget", "-q", "-O", "-", url)


def _in_pod(lab: LabInfo, pod: str, *argv: str) -> subprocess.CompletedProcess[str]:
    return _kubectl(lab, "-n", DEMO_NAMESPACE, "exec", pod, "--", *argv, timeout=30)


def node_problems(lab: LabInfo, node: str, client: dict[str, Any] | None, pod_cidr: str) -> list[str]:
    """What does not work from ``node``'s client pod (empty: all of it works)."""
    if client is None:
        return [f"{node}: no running {render.CLIENT_DAEMONSET} pod"]
    name = client["metadata"]["name"]
    problems = []
    pod_ip = client["status"].get("podIP", "")
    if not pod_cidr or not pod_ip or ipaddress.ip_address(pod_ip) not in ipaddress.ip_network(pod_cidr):
        problems.append(
            f"{node}: pod {name} has IP {pod_ip or 'none'}, outside the node's podCIDR {pod_cidr or 'none'}"
        )
    for host in (f"kubernetes.default.svc.{DOMAIN}", f"{render.WEB_SERVICE}.{DEMO_NAMESPACE}.svc.{DOMAIN}"):
        looked_up = _in_pod(lab, name, "nslookup", host)
        if looked_up.returncode != 0:
            problems.append(f"{node}: nslookup {host} failed: {(looked_up.stdout + looked_up.stderr).strip()[-300:]}")
    web = _fetch(lab, name, WEB_URL)
    if web.returncode != 0 or not web.stdout.strip().startswith("web-"):
        problems.append(f"{node}: {WEB_URL} answered {web.returncode}: {(web.stdout + web.stderr).strip()[-300:]}")
    db = _fetch(lab, name, DB_URL)
    if db.returncode != 0 or db.stdout.strip() != "db-0":
        problems.append(f"{node}: {DB_URL} answered {db.returncode}: {(db.stdout + db.stderr).strip()[-300:]}")
    return problems


def network_problems(lab: LabInfo) -> list[str]:
    """:func:`node_problems` for every node of the lab."""
    nodes = json.loads(_kubectl(lab, "get", "nodes", "-o", "json").stdout)["items"]
    cidrs = {n["metadata"]["name"]: n["spec"].get("podCIDR", "") for n in nodes}
    clients = _clients(lab)
    problems: list[str] = []
    for node in lab.nodes:
        problems += node_problems(lab, node.name, clients.get(node.name), cidrs.get(node.name, ""))
    return problems


def assert_network_works(lab: LabInfo, *, timeout: float = 120) -> None:
    """Every node's client reaches the Services by name; retried while pods settle (a drain moves them)."""
    deadline = time.monotonic() + timeout
    problems = network_problems(lab)
    while problems and time.monotonic() < deadline:
        time.sleep(3)
        problems = network_problems(lab)
    assert not problems, "\n".join(problems)
