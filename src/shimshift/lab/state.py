"""A node's runtime wiring, captured so that tests can prove a node was left as they found it.

A snapshot holds what a dockershim-to-cri-dockerd migration touches: the kubelet's command line,
kubeadm-flags.env, /etc/default/kubelet, the kubelet and cri-dockerd drop-in folders, the node's
cri-socket annotation, cri-dockerd's state, and the node's Ready condition
(docs/runtime-facts.md#kubeadm).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

from shimshift.lab.cluster import cri_dockerd_state, kubectl
from shimshift.lab.docker import LabError, node_exec
from shimshift.lab.model import CRI_SOCKET_ANNOTATION

if TYPE_CHECKING:
    from shimshift.lab.model import LabInfo

KUBEADM_FLAGS = "/var/lib/kubelet/kubeadm-flags.env"
WATCHED_FILES = (KUBEADM_FLAGS, "/etc/default/kubelet", "/var/lib/kubelet/config.yaml")
WATCHED_DIRS = (
    "/etc/systemd/system/kubelet.service.d",
    "/etc/systemd/system/cri-docker.service.d",
    "/etc/systemd/system/cri-docker.socket.d",
)


@dataclass(frozen=True)
class NodeState:
    kubelet_cmdline: tuple[str, ...]
    files: tuple[tuple[str, str], ...]  # (path, content or "<absent>")
    dropins: tuple[tuple[str, str], ...]  # (path, content) of every file in WATCHED_DIRS
    annotation: str
    cri_dockerd: str
    ready: str

    def differences(self, other: NodeState) -> list[str]:
        return [
            f"{f.name}: was {getattr(self, f.name)!r}, now {getattr(other, f.name)!r}"
            for f in fields(self)
            if getattr(self, f.name) != getattr(other, f.name)
        ]


def kubelet_cmdline(info: LabInfo, node: str) -> list[str]:
    """argv of the running kubelet, read from /proc/<pid>/cmdline inside the node ([] if none)."""
    pid = node_exec(node, ["systemctl", "show", "-P", "MainPID", "kubelet.service"]).stdout.strip()
    if not pid or pid == "0":
        return []
    raw = node_exec(node, ["cat", f"/proc/{pid}/cmdline"], check=False).stdout
    return [a for a in raw.split("\0") if a]


def _read(node: str, path: str) -> str:
    proc = node_exec(node, ["cat", path], check=False)
    return proc.stdout if proc.returncode == 0 else "<absent>"


def capture(info: LabInfo, node: str) -> NodeState:
    info.node(node)
    listing = node_exec(
        node,
        ["sh", "-c", 'for d in "$@"; do [ -d "$d" ] && find "$d" -type f; done; true', "sh", *WATCHED_DIRS],
    ).stdout.split()
    obj = json.loads(kubectl(info.control_plane.name, ["get", "node", node, "-o", "json"]).stdout)
    conds = {c["type"]: c["status"] for c in obj["status"].get("conditions", [])}
    return NodeState(
        kubelet_cmdline=tuple(kubelet_cmdline(info, node)),
        files=tuple((p, _read(node, p)) for p in WATCHED_FILES),
        dropins=tuple((p, _read(node, p)) for p in sorted(listing)),
        annotation=obj["metadata"].get("annotations", {}).get(CRI_SOCKET_ANNOTATION, ""),
        cri_dockerd=cri_dockerd_state(node).value,
        ready=conds.get("Ready", "Unknown"),
    )


class NodeStateGuard:
    """Capture nodes before a test changes them; check they are as found afterwards.

    The kubelet's pid may change (a restart is allowed), its argv may not. Ready is waited for (up to
    `ready_timeout` seconds) before capturing and before comparing, because a restarted kubelet needs a
    moment to report.
    """

    def __init__(self, info: LabInfo, *, ready_timeout: float = 90) -> None:
        self.info = info
        self.ready_timeout = ready_timeout
        self.before: dict[str, NodeState] = {}

    def capture(self, node: str) -> NodeState:
        """The node as the test finds it, once Ready (up to `ready_timeout` seconds): the test before may
        have just restarted its kubelet, and a NotReady captured then would make Ready afterwards a
        difference (seen in CI: "ready: was 'False', now 'True'")."""
        deadline = time.monotonic() + self.ready_timeout
        found = capture(self.info, node)
        while found.ready != "True" and time.monotonic() < deadline:
            time.sleep(2)
            found = capture(self.info, node)
        self.before[node] = found
        return found

    def assert_as_found(self, node: str) -> None:
        before = self.before[node]
        deadline = time.monotonic() + self.ready_timeout
        while True:
            now = capture(self.info, node)
            diffs = before.differences(now)
            if not diffs or time.monotonic() >= deadline:
                break
            time.sleep(2)
        if diffs:
            raise AssertionError(f"{node} was not left as found:\n  " + "\n  ".join(diffs))

    def assert_all_as_found(self) -> None:
        problems: list[str] = []
        for node in self.before:
            try:
                self.assert_as_found(node)
            except (AssertionError, LabError) as e:
                problems.append(str(e))
        if problems:
            raise AssertionError("\n".join(problems))
