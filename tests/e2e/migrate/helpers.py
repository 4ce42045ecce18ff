"""Driving the real `shimshift` command against the lab, and reading the lab's real state.

Everything here goes through the lab's own interfaces: the CLI as a subprocess (so a test can SIGKILL
it), kubectl from the lab build, `docker exec` into node containers, and the journal's SQLite file.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shimshift.adapters.journal import Journal, RunRecord
from shimshift.core.listeners import owned_by, parse_ss
from shimshift.core.steps import kubelet_args
from shimshift.lab import render

if TYPE_CHECKING:
    from collections.abc import Callable

    from shimshift.lab.model import LabInfo

SRC = Path(__file__).resolve().parents[3] / "src"
KUBECTL = Path(os.environ.get("SHIMSHIFT_CACHE", "/var/cache/shimshift")) / "bin" / "v1.23.17" / "kubectl"
CRI_DOCKERD_ENDPOINT = "unix:///var/run/cri-dockerd.sock"
CRI_SOCKET_ANNOTATION = "kubeadm.alpha.kubernetes.io/cri-socket"
DEMO = "shimshift-demo"
READY_REPLICAS = "jsonpath={.status.readyReplicas}"
RESTRICTED_DEPLOYMENT = render.RESTRICTED_DEPLOYMENT


def cli_argv(lab: LabInfo, journal: Path, *args: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "shimshift.cli.main",
        *args,
        "--kubeconfig",
        str(lab.kubeconfig),
        "--ssh-config",
        str(lab.ssh_config),
        "--journal",
        str(journal),
    ]


def cli_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(SRC)
    return env


def shimshift(lab: LabInfo, journal: Path, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    # Reports land beside the journal, in the test's own temporary directory; the working directory is that
    # one too, so a run that wrote into its working directory would be caught there, not in the checkout.
    result = subprocess.run(
        cli_argv(lab, journal, *args),
        env=cli_env(),
        cwd=journal.parent,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    sys.stderr.write(f"$ shimshift {' '.join(args)}\n{result.stdout}{result.stderr}\n")
    return result


def kubectl(lab: LabInfo, *args: str) -> str:
    result = subprocess.run(
        [str(KUBECTL), "--kubeconfig", str(lab.kubeconfig), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return result.stdout


def node_json(lab: LabInfo, node: str) -> dict[str, Any]:
    return json.loads(kubectl(lab, "get", "node", node, "-o", "json"))  # type: ignore[no-any-return]


def kubelet_cmdline(lab: LabInfo, node: str) -> list[str]:
    pid = lab.exec(node, ["systemctl", "show", "--property", "MainPID", "--value", "kubelet"]).stdout.strip()
    raw = lab.exec(node, ["cat", f"/proc/{pid}/cmdline"]).stdout
    return [part for part in raw.split("\0") if part]


def assert_every_node_ready_on_cri_dockerd_at(lab: LabInfo, release: str) -> None:
    """Every node's kubelet reports ``release`` (``1.X.Y``), Ready and on cri-dockerd."""
    for node in lab.nodes:
        body = node_json(lab, node.name)
        assert body["status"]["nodeInfo"]["kubeletVersion"] == f"v{release}", node.name
        assert_on_cri_dockerd(lab, node.name, kubelet_minor=int(release.split(".")[1]))


def assert_api_server_runs(lab: LabInfo, release: str) -> None:
    version = json.loads(kubectl(lab, "version", "-o", "json"))
    assert version["serverVersion"]["gitVersion"] == f"v{release}", version


def assert_restricted_pods_run(lab: LabInfo) -> None:
    """Both pods of the lab's `restricted` Deployment (allowPrivilegeEscalation: false) are Running."""
    pods = json.loads(kubectl(lab, "-n", DEMO, "get", "pods", "-l", f"app={RESTRICTED_DEPLOYMENT}", "-o", "json"))
    assert len(pods["items"]) == 2 and all(pod["status"]["phase"] == "Running" for pod in pods["items"]), [
        (pod["metadata"]["name"], pod["status"].get("phase")) for pod in pods["items"]
    ]


def assert_no_pdb_violated(minimums: dict[str, int]) -> None:
    """From a :class:`ReadyReplicasWatch` of `web` and `restricted`: web has 3 replicas and a PDB of
    minAvailable 2, restricted 2 and minAvailable 1."""
    assert minimums.get("web", 0) >= 2 and minimums.get(RESTRICTED_DEPLOYMENT, 0) >= 1, minimums


def is_ready(node: dict[str, Any]) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in node.get("status", {}).get("conditions", []))


def wait_until(predicate: Any, *, timeout: float, what: str, interval: float = 2.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def assert_on_cri_dockerd(lab: LabInfo, node: str, *, kubelet_minor: int = 23) -> None:
    args = kubelet_args(kubelet_cmdline(lab, node))
    assert args.get("--container-runtime-endpoint") == CRI_DOCKERD_ENDPOINT, args
    if kubelet_minor < 24:  # required before 1.24; deprecated from 1.24 (docs/runtime-facts.md)
        assert args.get("--container-runtime") == "remote", args
    assert "--network-plugin" not in args, args
    body = node_json(lab, node)
    assert body["metadata"]["annotations"][CRI_SOCKET_ANNOTATION] == CRI_DOCKERD_ENDPOINT
    assert is_ready(body), body["status"]["conditions"]
    assert not body["spec"].get("unschedulable", False)


def assert_on_dockershim(lab: LabInfo, node: str) -> None:
    args = kubelet_args(kubelet_cmdline(lab, node))
    assert args.get("--container-runtime", "docker") == "docker", args
    assert args.get("--container-runtime-endpoint") != CRI_DOCKERD_ENDPOINT, args
    body = node_json(lab, node)
    assert body["metadata"]["annotations"][CRI_SOCKET_ANNOTATION] == "/var/run/dockershim.sock"
    assert not body["spec"].get("unschedulable", False)


def back_to_dockershim(lab: LabInfo, journal: Path, node: str) -> None:
    """Cleanup for a test that may have left NODE migrated: roll it back with the tool if it is."""
    args = kubelet_args(kubelet_cmdline(lab, node))
    flags = lab.exec(node, ["cat", "/var/lib/kubelet/kubeadm-flags.env"]).stdout
    # Either the running kubelet or its files (a run stopped before the restart) may be migrated.
    if args.get("--container-runtime-endpoint") == CRI_DOCKERD_ENDPOINT or CRI_DOCKERD_ENDPOINT in flags:
        back = shimshift(lab, journal, "rollback", node)
        assert back.returncode == 0, back.stdout + back.stderr
    assert_on_dockershim(lab, node)


def daemonset_containers(lab: LabInfo) -> dict[str, tuple[str, int]]:
    """pod name -> (container ID, restart count) of every DaemonSet pod in the demo namespace."""
    pods = json.loads(kubectl(lab, "-n", DEMO, "get", "pods", "-l", "app=node-agent", "-o", "json"))["items"]
    found = {}
    for pod in pods:
        for status in pod.get("status", {}).get("containerStatuses", []):
            found[pod["metadata"]["name"]] = (status.get("containerID", ""), int(status.get("restartCount", 0)))
    return found


@dataclass
class ReadyReplicasWatch:
    """Polls demo Deployments' ready replicas in the background and keeps the minimum seen of each
    (``minimum`` is the first one's, ``minimums`` every one's)."""

    lab: LabInfo
    deployments: tuple[str, ...] = ("web",)
    interval: float = 0.5
    minimums: dict[str, int] = field(default_factory=dict)
    samples: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    @property
    def minimum(self) -> int | None:
        return self.minimums.get(self.deployments[0])

    def _run(self) -> None:
        while not self._stop.is_set():
            for name in self.deployments:
                try:
                    text = kubectl(self.lab, "-n", DEMO, "get", "deploy", name, "-o", READY_REPLICAS)
                except subprocess.SubprocessError:
                    continue  # the API server can be briefly unreachable while the control plane changes
                ready = int(text or 0)
                self.minimums[name] = min(self.minimums.get(name, ready), ready)
            self.samples += 1
            self._stop.wait(self.interval)

    def __enter__(self) -> ReadyReplicasWatch:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)


def journal_has(journal: Path, *, node: str, step: str, phase: str) -> bool:
    if not journal.exists():
        return False
    try:
        with sqlite3.connect(f"file:{journal}?mode=ro", uri=True, timeout=1) as db:
            row = db.execute(
                "SELECT 1 FROM steps WHERE node = ? AND step = ? AND phase = ? LIMIT 1", (node, step, phase)
            ).fetchone()
    except sqlite3.OperationalError:
        return False
    return row is not None


def run_until_then_kill(
    lab: LabInfo, journal: Path, args: list[str], *, node: str, step: str, phase: str, timeout: float = 600
) -> int:
    """Start `shimshift ARGS`, SIGKILL it as soon as the journal shows (node, step, phase); returns the
    process's exit status (negative: killed). Fails if the process ended before the boundary."""
    process = subprocess.Popen(
        cli_argv(lab, journal, *args),
        env=cli_env(),
        cwd=journal.parent,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if journal_has(journal, node=node, step=step, phase=phase):
                process.send_signal(signal.SIGKILL)
                return process.wait(timeout=30)
            if process.poll() is not None:
                raise AssertionError(f"shimshift exited ({process.returncode}) before {node} {step} {phase}")
            time.sleep(0.01)
        raise AssertionError(f"{node} never reached {step} {phase} within {timeout:.0f}s")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)


def recorded_runs(journal: Path) -> list[RunRecord]:
    """Every run the journal holds (a refused command must leave none)."""
    opened = Journal(journal)
    try:
        return opened.runs()
    finally:
        opened.close()


def newest_run_id(journal: Path) -> str:
    """The id of the journal's newest run, read without writing (a stopped shimshift may hold its lock)."""
    with sqlite3.connect(f"file:{journal}?mode=ro", uri=True, timeout=5) as db:
        row = db.execute("SELECT id FROM runs ORDER BY started_at DESC LIMIT 1").fetchone()
    assert row is not None, f"{journal} holds no run"
    return str(row[0])


def run_finished(journal: Path) -> bool:
    """True when the journal's newest run is no longer running (it ended before a kill landed)."""
    with sqlite3.connect(f"file:{journal}?mode=ro", uri=True, timeout=5) as db:
        row = db.execute("SELECT status FROM runs ORDER BY started_at DESC LIMIT 1").fetchone()
    return row is not None and row[0] != "running"


def cri_dockerd_listeners(lab: LabInfo, node: str) -> list[str]:
    """Where the node's running cri-dockerd listens on TCP, from `ss` in the node (ADDR:PORT each)."""
    pid = int(lab.exec(node, ["systemctl", "show", "--property", "MainPID", "--value", "cri-docker"]).stdout)
    assert pid > 0, f"cri-docker.service is not running on {node}"
    listening = parse_ss(lab.exec(node, ["ss", "-Hltnp"]).stdout)
    return [item.endpoint for item in owned_by(listening, pid=pid)]


def canary_pods(lab: LabInfo) -> list[str]:
    """Every canary pod the API server has, in any namespace."""
    pods = json.loads(kubectl(lab, "get", "pods", "-A", "-l", "shimshift.io/canary", "-o", "json"))["items"]
    return [f"{pod['metadata']['namespace']}/{pod['metadata']['name']}" for pod in pods]


def report_nodes(reports: Path) -> dict[str, dict[str, Any]]:
    """The newest JSON report's nodes, by name."""
    newest = sorted(reports.glob("shimshift-*.json"))[-1]
    return {node["node"]: node for node in json.loads(newest.read_text())["nodes"]}


DROPIN_DIR = "/etc/systemd/system/cri-docker.service.d"
# Sorts after shimshift's 10-shimshift.conf, so its ExecStart is the one systemd runs.
BROKEN_DROPIN = f"{DROPIN_DIR}/20-test-no-network-plugin.conf"


def run_breaking_after(
    lab: LabInfo,
    journal: Path,
    args: list[str],
    *,
    node: str,
    step: str,
    breaks: Callable[[], object],
    timeout: float = 900,
) -> tuple[int, str, str]:
    """Run `shimshift ARGS`; once the journal has NODE's STEP finished, freeze the run (SIGSTOP), call
    ``breaks``, let it go on, and wait for it to end: (exit status, stdout, stderr)."""
    process = subprocess.Popen(
        cli_argv(lab, journal, *args),
        env=cli_env(),
        cwd=journal.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + timeout
        while not journal_has(journal, node=node, step=step, phase="finished"):
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, f"{step} never finished on {node}"
            time.sleep(0.02)
        process.send_signal(signal.SIGSTOP)
        try:
            breaks()
        finally:
            process.send_signal(signal.SIGCONT)
        out, err = process.communicate(timeout=timeout * 2)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)
    return process.returncode, out, err


def drop_the_network_plugin(lab: LabInfo, node: str) -> None:
    """cri-dockerd#73/#93: cri-dockerd without --network-plugin=cni gives new sandboxes no pod network, so
    verify's canary fails while the node stays Ready (the same break as tests/e2e/migrate/test_failures.py)."""
    planned = lab.exec(node, ["cat", f"{DROPIN_DIR}/10-shimshift.conf"], check=True).stdout
    command = [line for line in planned.splitlines() if line.startswith("ExecStart=") and line != "ExecStart="][-1]
    assert "--network-plugin=cni" in command, planned
    broken = command.replace("--network-plugin=cni", "--network-plugin=")
    lab.exec(node, ["tee", BROKEN_DROPIN], input=f"[Service]\nExecStart=\n{broken}\n", check=True)
    lab.exec(node, ["systemctl", "daemon-reload"], check=True)
    lab.exec(node, ["systemctl", "restart", "cri-docker.service"], check=True)


def mend_the_network_plugin(lab: LabInfo, node: str) -> None:
    lab.exec(node, ["rm", "-f", BROKEN_DROPIN], check=False)
    lab.exec(node, ["systemctl", "daemon-reload"], check=False)
    lab.exec(node, ["systemctl", "restart", "cri-docker.socket", "cri-docker.service"], check=False)
