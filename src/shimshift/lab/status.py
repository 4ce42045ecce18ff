"""`lab status`: how the recorded lab is, and whether it is fit for reuse."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from shimshift.core.run_lease import LEASE_NAME
from shimshift.lab.cri_dockerd import cri_dockerd_state
from shimshift.lab.docker import LabError, docker, labelled, node_exec
from shimshift.lab.kube import SYSTEM_ROLLOUTS, kubectl
from shimshift.lab.model import (
    CRI_SOCKET_ANNOTATION,
    DEFAULT_DIRECTORY,
    LABEL,
    LabInfo,
    LabNode,
    LabSpec,
    lab_files,
)


def load(directory: Path = DEFAULT_DIRECTORY) -> LabInfo | None:
    """The lab recorded in <directory>/lab.json, or None when there is no complete lab there."""
    state = lab_files(directory)["state"]
    try:
        return LabInfo.from_json(json.loads(state.read_text()))
    except FileNotFoundError:
        return None
    except (ValueError, KeyError) as e:
        raise LabError(f"{state} is unreadable ({e}); run `shimshift lab down`") from e


@dataclass
class NodeStatus:
    name: str
    role: str
    ip: str
    container: str  # Docker's state: running, exited, missing
    ready: str  # "True", "False", "Unknown" or "" when the API gave nothing
    kubelet: str  # systemctl is-active kubelet
    cri_dockerd: str  # running | stopped | absent | ""


@dataclass
class LabStatus:
    directory: Path
    info: LabInfo | None
    nodes: list[NodeStatus]
    problems: list[str]

    @property
    def healthy(self) -> bool:
        return self.info is not None and not self.problems


def status(directory: Path = DEFAULT_DIRECTORY, *, expect: LabSpec | None = None, fresh: bool = False) -> LabStatus:
    """How the lab is: containers, node readiness, kubelet and cri-dockerd per node, and the
    problems that make it unfit for reuse (empty list = healthy and, with expect, the same spec).
    ``fresh``: also a problem when a node is no longer as `up` made it (migrated, or upgraded), which
    the tests' reuse of a lab must not accept."""
    info = load(directory)
    problems: list[str] = []
    if info is None:
        leftovers = labelled("ps", "-a")
        problems.append(
            f"no complete lab recorded in {directory}"
            + (f" (leftover containers: {', '.join(leftovers)})" if leftovers else "")
        )
        return LabStatus(directory, None, [], problems)
    if expect is not None and expect != info.spec:
        problems.append(f"lab was built with {info.spec.to_json()}, wanted {expect.to_json()}")
    for p in (info.kubeconfig, info.ssh_config, info.known_hosts, info.ssh_key):
        if not p.exists():
            problems.append(f"missing file {p}")
    states = {}
    for line in docker(
        "ps", "-a", "--filter", f"label={LABEL}=1", "--format", "{{.Names}} {{.State}}"
    ).stdout.splitlines():
        name, _, state = line.partition(" ")
        states[name] = state
    ready: dict[str, str] = {}
    cp = info.control_plane
    if states.get(cp.name) == "running":
        proc = kubectl(cp.name, ["get", "nodes", "-o", "json"], check=False, timeout=30)
        try:
            for item in json.loads(proc.stdout)["items"]:
                name = item["metadata"]["name"]
                conds = {c["type"]: c["status"] for c in item["status"].get("conditions", [])}
                ready[name] = conds.get("Ready", "Unknown")
                kubelet_version = item["status"].get("nodeInfo", {}).get("kubeletVersion", "")
                if kubelet_version != info.spec.version:
                    problems.append(f"{name}: kubelet {kubelet_version or 'unknown'}, the lab is {info.spec.version}")
                # A lab left migrated (the README's main job ends so) is not the dockershim lab tests start from.
                socket = (item["metadata"].get("annotations") or {}).get(CRI_SOCKET_ANNOTATION)
                wanted = info.spec.release.cri_socket_annotation
                if fresh and socket != wanted:
                    problems.append(f"{name}: cri-socket annotation {socket}, not {wanted}")
                # A run killed mid-way leaves its node cordoned: the next user would start from a half-done step.
                if fresh and item.get("spec", {}).get("unschedulable"):
                    problems.append(f"{name}: cordoned")
        except (ValueError, KeyError):
            problems.append(f"API server on {cp.name} not answering: {proc.stderr.strip()[-200:]}")
        else:
            problems += _apiserver_version_problems(cp, info.spec.version)
            problems += _addon_problems(cp)
            if fresh:
                problems += _held_lease_problems(cp)
    nodes: list[NodeStatus] = []
    for n in info.nodes:
        state = states.get(n.name, "missing")
        kubelet = cri = ""
        if state == "running":
            kubelet = node_exec(n.name, ["systemctl", "is-active", "kubelet"], check=False).stdout.strip()
            cri = cri_dockerd_state(n.name).value
        else:
            problems.append(f"{n.name}: container is {state}")
        if ready.get(n.name) != "True":
            problems.append(f"{n.name}: node Ready={ready.get(n.name, 'unknown')}")
        nodes.append(NodeStatus(n.name, n.role, n.ip, state, ready.get(n.name, ""), kubelet, cri))
    return LabStatus(directory, info, nodes, problems)


def _addon_problems(cp: LabNode) -> list[str]:
    """What `up` installs beside the control plane and is missing (a lab made by an older shimshift had no
    CoreDNS, kube-proxy nor flannel, and must not be reused by what expects them)."""
    problems = []
    for namespace, what in SYSTEM_ROLLOUTS:
        proc = kubectl(cp.name, ["get", "-n", namespace, what, "-o", "name"], check=False, timeout=30)
        if proc.returncode != 0:
            problems.append(f"no {what} in namespace {namespace}: {proc.stderr.strip()[-200:]}")
    return problems


def _held_lease_problems(cp: LabNode) -> list[str]:
    """A shimshift run holds the cluster's Lease (docs/run-lease.md): one still running, or one killed whose
    Lease a new run may not take; either way not the lab `up` made."""
    proc = kubectl(
        cp.name,
        ["get", "-n", "kube-system", "lease", LEASE_NAME, "-o", "jsonpath={.spec.holderIdentity}"],
        check=False,
        timeout=30,
    )
    if proc.returncode != 0 or not proc.stdout.strip():
        return []  # no Lease (never run), or released
    return [f"the shimshift Lease kube-system/{LEASE_NAME} is held by {proc.stdout.strip()}"]


def _apiserver_version_problems(cp: LabNode, expected: str) -> list[str]:
    """An upgrade (`shimshift upgrade` on the lab) leaves a lab that is healthy but no longer the 1.23.17
    lab its users expect:
    one whose API server or kubelets run another version is not reused."""
    proc = kubectl(cp.name, ["get", "--raw", "/version"], check=False, timeout=30)
    try:
        version = str(json.loads(proc.stdout)["gitVersion"])
    except (ValueError, KeyError, TypeError):
        return [f"API server on {cp.name} did not say its version: {proc.stderr.strip()[-200:]}"]
    return [] if version == expected else [f"API server {version}, the lab is {expected}"]
