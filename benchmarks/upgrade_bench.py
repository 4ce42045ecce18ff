"""One worker to cri-dockerd and 1.24 two ways, in one run on the lab: `shimshift upgrade` (one drain) beside
`shimshift migrate` followed by a second drain, `kubeadm upgrade node` and the kubelet swap done by hand.

    .venv/bin/python -m benchmarks.upgrade_bench

Prints, for each way: wall time, the time the node spent cordoned, drains, pods evicted, and the
seconds of each journalled step. The hand-made half follows kubeadm's upgrade guide as an operator types
it: drain, kubeadm, `kubeadm upgrade node`, kubelet and kubectl, restart, wait for the node's Ready
condition, uncordon; it proves no more than that (no fresh heartbeat, no canary). The lab is
prepared first (`shimshift lab prepare-upgrade`) and its control plane upgraded with `shimshift upgrade -l
node-role.kubernetes.io/control-plane` when it is still on 1.23 (not timed: both ways need it). The lab is
left at 1.24 (an upgrade is not undone): `shimshift lab up --replace` afterwards.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.fleet_bench import node_steps, step_seconds
from shimshift.lab import cluster
from shimshift.lab.model import LabInfo
from shimshift.lab.upgrade_prep import prepare_upgrade

TARGET = "1.24.17"
DRAIN = ["--ignore-daemonsets", "--delete-emptydir-data", "--force"]


def run(argv: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, check=True, capture_output=True, text=True, **kwargs)  # type: ignore[call-overload, no-any-return]


class Lab:
    def __init__(self, info: LabInfo, binaries: Path, work: Path) -> None:
        self.info, self.binaries, self.work = info, binaries, work
        self.kubectl = [str(binaries / "kubectl"), "--kubeconfig", str(info.kubeconfig)]

    def shimshift(self, *args: str, journal: str) -> subprocess.CompletedProcess[str]:
        common = ["--kubeconfig", str(self.info.kubeconfig), "--ssh-config", str(self.info.ssh_config)]
        journal_path = self.work / journal
        return run(
            [sys.executable, "-m", "shimshift.cli.main", *args, *common, "--journal", str(journal_path)],
            timeout=3600,
        )

    def ssh(self, node: str, *argv: str, stdin: Path | None = None) -> None:
        command = ["ssh", "-F", str(self.info.ssh_config), node, *argv]
        if stdin is None:
            run(command, timeout=600)
        else:
            with stdin.open("rb") as data:
                subprocess.run(command, stdin=data, check=True, capture_output=True, timeout=600)

    def kubelet(self, node: str) -> str:
        body = json.loads(run([*self.kubectl, "get", "node", node, "-o", "json"]).stdout)
        return str(body["status"]["nodeInfo"]["kubeletVersion"])

    def upgrade_args(self) -> list[str]:
        return ["--to", TARGET, "--binaries", str(self.binaries),
                "--force", "--delete-emptydir-data"]


def evicted(journal: Path, node: str) -> int:
    with sqlite3.connect(journal) as db:
        rows = db.execute(
            "SELECT detail_json FROM steps WHERE node = ? AND step = 'drain' AND phase = 'finished'", (node,)
        ).fetchall()
    return sum(len(json.loads(detail).get("evicted", [])) for (detail,) in rows)


def cordoned_seconds(journal: Path, node: str) -> float:
    """From the cordon step's start to the uncordon step's end, as the journal recorded them."""
    spans = node_steps(journal)[node]
    return round((spans["uncordon"][1] - spans["cordon"][0]).total_seconds(), 1)


def node_step_seconds(journal: Path, node: str) -> dict[str, float]:
    """fleet_bench's step_seconds for one node, to a tenth of a second."""
    seconds, _ = step_seconds(node_steps(journal))
    return {step: round(value, 1) for step, value in seconds[node].items()}


def one_drain(lab: Lab, node: str) -> dict[str, object]:
    started = time.monotonic()
    lab.shimshift("upgrade", node, *lab.upgrade_args(), journal="upgrade.sqlite")
    total = time.monotonic() - started
    assert lab.kubelet(node) == f"v{TARGET}"
    journal = lab.work / "upgrade.sqlite"
    return {
        "seconds": round(total, 1),
        "cordoned_seconds": cordoned_seconds(journal, node),
        "drains": 1,
        "evicted": evicted(journal, node),
        "steps": node_step_seconds(journal, node),
    }


def two_drains(lab: Lab, node: str) -> dict[str, object]:
    """migrate, then the upgrade as kubeadm's guide has an operator type it."""
    started = time.monotonic()
    # This worker is still 1.23: the lab's `restricted` Deployment needs the opt-in (its pods move away).
    lab.shimshift("migrate", node, "--force", "--delete-emptydir-data", "--accept-refused-hardened-pods",
                  journal="migrate.sqlite")
    migrated = time.monotonic()
    # `kubectl drain` cordons first: the second cordoned stretch starts here.
    second = run([*lab.kubectl, "drain", node, *DRAIN], timeout=900).stdout
    second_evicted = sum(1 for line in second.splitlines() if line.endswith(" evicted"))
    for name in ("kubeadm", "kubelet", "kubectl"):
        # A copy beside the old binary, then a rename: the kubelet's file is busy while it runs.
        lab.ssh(node, "sh", "-c", f"cat > /usr/bin/{name}.new && chmod 0755 /usr/bin/{name}.new",
                stdin=lab.binaries / name)
        if name == "kubeadm":
            lab.ssh(node, "mv", "-f", "/usr/bin/kubeadm.new", "/usr/bin/kubeadm")
            lab.ssh(node, "kubeadm", "upgrade", "node")
        else:
            lab.ssh(node, "mv", "-f", f"/usr/bin/{name}.new", f"/usr/bin/{name}")
    lab.ssh(node, "systemctl", "daemon-reload")
    lab.ssh(node, "systemctl", "restart", "kubelet")
    deadline = time.monotonic() + 300
    while lab.kubelet(node) != f"v{TARGET}" and time.monotonic() < deadline:
        time.sleep(1)
    run([*lab.kubectl, "wait", "--for=condition=Ready", f"node/{node}", "--timeout=300s"], timeout=320)
    run([*lab.kubectl, "uncordon", node])
    total = time.monotonic() - started
    journal = lab.work / "migrate.sqlite"
    return {
        "seconds": round(total, 1),
        "migrate_seconds": round(migrated - started, 1),
        "cordoned_seconds": round(cordoned_seconds(journal, node) + time.monotonic() - migrated, 1),
        "drains": 2,
        "evicted": evicted(journal, node) + second_evicted,
        "migrate_steps": node_step_seconds(journal, node),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.parse_args()
    info = cluster.load()
    if info is None:
        sys.exit("no lab is up: run `shimshift lab up` first")
    workers = [node.name for node in info.workers]
    prepared = prepare_upgrade()
    with tempfile.TemporaryDirectory() as scratch:
        lab = Lab(info, prepared.artifacts.bin_dir, Path(scratch))
        if any(lab.kubelet(name) != "v1.23.17" for name in workers):
            sys.exit("the workers must be on 1.23.17: run `shimshift lab up --replace` first")
        if lab.kubelet(info.control_plane.name) != f"v{TARGET}":
            lab.shimshift("upgrade", "-l", "node-role.kubernetes.io/control-plane", *lab.upgrade_args(),
                          journal="control-plane.sqlite")
        ours = one_drain(lab, workers[0])
        theirs = two_drains(lab, workers[1])
    print(json.dumps({"shimshift upgrade": ours, "migrate, then drain + kubeadm upgrade node + swap": theirs},
                     indent=2))
    for label, figures, node in (("one drain (shimshift upgrade", ours, workers[0]),
                                  ("two drains (migrate, then by hand", theirs, workers[1])):
        print(f"{label} {node}): {figures['seconds']} s, cordoned {figures['cordoned_seconds']} s, "
              f"{figures['drains']} drains, {figures['evicted']} pods evicted")


if __name__ == "__main__":
    main()
