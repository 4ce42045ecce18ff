"""The 1.36 exec trap on a 1.37.2 lab, and the way on `--kubelet-websockets-off` takes: the kubelet's
``ExtendWebSocketsToKubelet`` gate off in the node's KUBELET_EXTRA_ARGS, the API server's left on.

Not part of `scripts/test.sh` (marker `journey_lab`): it brings the lab up at 1.37.2 (about three minutes
with the release built; the 1.23.17 lab the other modules use is rebuilt after it). Run it alone:

    .venv/bin/python -m pytest -m journey_lab tests/e2e/journey/test_websocket_gate_lab.py

Matrix, on one worker: exec into a pod fails with cri-dockerd's plain-HTTP answer (Mirantis/cri-dockerd#560)
and the node declares the feature; the engine's own edit (core/journey/node_edits.py) written into the
node's file and the kubelet restarted: the running kubelet carries the flag, the node no longer declares
the feature, exec (with stdin) and port-forward work. The file is put back as found and the kubelet
restarted at the end.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from shimshift.core.journey.node_edits import WEBSOCKETS_GATE, kubelet_websockets_off
from shimshift.core.node_files import NODE_FILES, NodeView
from shimshift.core.steps import kubelet_args
from shimshift.lab.lock import LabLock
from shimshift.lab.model import CriDockerdMode, LabInfo, LabSpec
from tests.e2e.conftest import ensure_lab
from tests.e2e.migrate.helpers import DEMO, is_ready, kubelet_cmdline, node_json, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.journey_lab]

RELEASE = "1.37.2"
# The release's own kubectl: a client before 1.29 would not use WebSockets, so would not show the trap.
KUBECTL = Path("/var/cache/shimshift/bin") / f"v{RELEASE}" / "kubectl"
PLAIN_HTTP = "server gave HTTP response to HTTPS client"


@pytest.fixture(scope="module")
def lab137(lab_lock: LabLock) -> LabInfo:
    return ensure_lab(lab_lock, LabSpec(workers=2, cri_dockerd=CriDockerdMode.RUNNING, version=f"v{RELEASE}"))


def kubectl(lab: LabInfo, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    argv = [str(KUBECTL), "--kubeconfig", str(lab.kubeconfig), *args]
    return subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=90, check=False)


def pod_on(lab: LabInfo, node: str) -> str:
    """A running pod of the demo namespace on ``node`` whose container has a shell and an HTTP port."""
    pods = json.loads(kubectl(lab, "-n", DEMO, "get", "pods", "-l", "app=web", "-o", "json").stdout)["items"]
    names = [
        p["metadata"]["name"] for p in pods if p["spec"].get("nodeName") == node and p["status"]["phase"] == "Running"
    ]
    assert names, f"no running web pod on {node}"
    return str(names[0])


def node_files(lab: LabInfo, node: str) -> dict[str, bytes | None]:
    files: dict[str, bytes | None] = {}
    for path in NODE_FILES:
        read = lab.exec(node, ["cat", path])
        files[path] = read.stdout.encode() if read.returncode == 0 else None
    return files


def restart_kubelet(lab: LabInfo, node: str) -> None:
    lab.exec(node, ["systemctl", "restart", "kubelet"], check=True)
    time.sleep(5)
    wait_until(lambda: is_ready(node_json(lab, node)), timeout=120, what=f"{node} Ready")


def declared(lab: LabInfo, node: str) -> list[str]:
    return list(node_json(lab, node).get("status", {}).get("declaredFeatures") or [])


def port_forward_answers(lab: LabInfo, pod: str) -> bool:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    argv = [str(KUBECTL), "--kubeconfig", str(lab.kubeconfig), "-n", DEMO, "port-forward", f"pod/{pod}", f"{port}:8080"]
    forward = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as answer:
                    return pod in answer.read().decode()
            except OSError:
                time.sleep(1)
        return False
    finally:
        forward.terminate()
        forward.wait(timeout=10)


@pytest.fixture(scope="module")
def gate_off(lab137: LabInfo) -> Iterator[tuple[LabInfo, str, str, subprocess.CompletedProcess[str]]]:
    """Exec before, then the engine's edit on the first worker; the file restored afterwards."""
    lab = lab137
    node = next(n.name for n in lab.nodes if n.role != "control-plane")
    pod = pod_on(lab, node)
    before = kubectl(lab, "-n", DEMO, "exec", pod, "--", "echo", "before")
    files = node_files(lab, node)
    change = kubelet_websockets_off(NodeView.load(files, node=node))
    assert change is not None and change.after is not None
    lab.exec(node, ["sh", "-c", f"cat > {change.path}"], input=change.after, check=True)
    try:
        restart_kubelet(lab, node)
        yield lab, node, pod, before
    finally:
        if change.before is None:
            lab.exec(node, ["rm", "-f", change.path], check=True)
        else:
            lab.exec(node, ["sh", "-c", f"cat > {change.path}"], input=change.before, check=True)
        restart_kubelet(lab, node)


def test_exec_through_cri_dockerd_fails_on_1_37_with_the_gate_on(
    gate_off: tuple[LabInfo, str, str, subprocess.CompletedProcess[str]],
) -> None:
    _lab, _node, _pod, before = gate_off
    assert before.returncode != 0 and PLAIN_HTTP in before.stderr, before.stderr


def test_the_kubelet_runs_with_the_gate_off_and_the_node_stops_declaring_it(
    gate_off: tuple[LabInfo, str, str, subprocess.CompletedProcess[str]],
) -> None:
    lab, node, _pod, _before = gate_off
    assert kubelet_args(kubelet_cmdline(lab, node)).get("--feature-gates") == f"{WEBSOCKETS_GATE}=false"
    assert WEBSOCKETS_GATE not in declared(lab, node)
    other = next(n.name for n in lab.nodes if n.name != node)
    assert WEBSOCKETS_GATE in declared(lab, other)  # the API server's gate stays on: its default


def test_exec_and_port_forward_work_with_the_kubelets_gate_off(
    gate_off: tuple[LabInfo, str, str, subprocess.CompletedProcess[str]],
) -> None:
    lab, _node, pod, _before = gate_off
    after = kubectl(lab, "-n", DEMO, "exec", "-i", pod, "--", "sh", "-c", "cat; echo after", stdin="through stdin\n")
    assert after.returncode == 0, after.stderr
    assert after.stdout == "through stdin\nafter\n"
    assert port_forward_answers(lab, pod)
