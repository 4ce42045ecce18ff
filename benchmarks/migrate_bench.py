"""One node, two ways: `shimshift migrate` beside the same steps typed as kubectl and ssh commands.

Prints wall time for each, and shimshift's own overhead on the node: its total minus the time spent
in evictions (the drain step) and in the kubelet restart until the node is Ready again (the
restart-kubelet and verify steps), read from the journal. Needs the lab (`shimshift lab up`); every
change is undone before the script ends (shimshift's rollback, then the manual undo).

    .venv/bin/python -m benchmarks.migrate_bench [--node shimshift-lab-worker2]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from shimshift.lab import cluster
from shimshift.lab.model import LabInfo

KUBECTL = "/var/cache/shimshift/bin/v1.23.17/kubectl"
FLAGS = "/var/lib/kubelet/kubeadm-flags.env"
DROPIN = "/etc/systemd/system/cri-docker.service.d/10-manual.conf"


def run(argv: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, check=True, capture_output=True, text=True, **kwargs)  # type: ignore[call-overload, no-any-return]


def step_seconds(journal: Path, node: str) -> dict[str, float]:
    with sqlite3.connect(journal) as db:
        rows = db.execute("SELECT step, phase, at FROM steps WHERE node = ? ORDER BY seq", (node,)).fetchall()
    started: dict[str, datetime] = {}
    seconds: dict[str, float] = {}
    for step, phase, at in rows:
        moment = datetime.fromisoformat(at)
        if phase == "started":
            started[step] = moment
        elif step in started:
            seconds[step] = (moment - started[step]).total_seconds()
    return seconds


def shimshift_way(info: LabInfo, node: str, work: Path) -> tuple[float, dict[str, float]]:
    journal = work / "journal.sqlite"
    base = [sys.executable, "-m", "shimshift.cli.main"]
    common = ["--kubeconfig", str(info.kubeconfig), "--ssh-config", str(info.ssh_config), "--journal", str(journal)]
    started = time.monotonic()
    # The lab's `restricted` Deployment would make the guard refuse: the bench times the migration itself.
    flags = ["--force", "--delete-emptydir-data", "--accept-refused-hardened-pods", "--report-dir", str(work)]
    run([*base, "migrate", node, *flags, *common])
    total = time.monotonic() - started
    steps = step_seconds(journal, node)
    run([*base, "rollback", node, *common])
    return total, steps


def manual_way(info: LabInfo, node: str) -> tuple[float, float]:
    """What the official procedure asks an operator to type, with the flags our plan writes."""
    kubectl = [KUBECTL, "--kubeconfig", str(info.kubeconfig)]
    ssh = ["ssh", "-F", str(info.ssh_config), node]
    original = run([*ssh, "cat", FLAGS]).stdout
    pause = next(word.split("=", 1)[1].strip('"') for word in original.split() if "--pod-infra-container-image" in word)
    migrated = (
        'KUBELET_KUBEADM_ARGS="--container-runtime=remote '
        '--container-runtime-endpoint=unix:///var/run/cri-dockerd.sock"\n'
    )
    dropin = (
        "[Service]\nExecStart=\nExecStart=/usr/bin/cri-dockerd --container-runtime-endpoint fd:// "
        f"--network-plugin=cni --pod-infra-container-image={pause}\n"
    )
    started = time.monotonic()
    run([*kubectl, "cordon", node])
    drain_started = time.monotonic()
    run([*kubectl, "drain", node, "--ignore-daemonsets", "--delete-emptydir-data", "--force"], timeout=600)
    drain = time.monotonic() - drain_started
    run([*ssh, "mkdir", "-p", str(Path(DROPIN).parent)])
    run([*ssh, "tee", DROPIN], input=dropin)
    run([*ssh, "systemctl", "daemon-reload"])
    run([*ssh, "systemctl", "restart", "cri-docker.service"])
    run([*ssh, "tee", FLAGS], input=migrated)
    run(
        [
            *kubectl,
            "annotate",
            "node",
            node,
            "--overwrite",
            "kubeadm.alpha.kubernetes.io/cri-socket=unix:///var/run/cri-dockerd.sock",
        ]
    )
    run([*ssh, "systemctl", "restart", "kubelet"])
    time.sleep(2)
    run([*kubectl, "wait", "--for=condition=Ready", f"node/{node}", "--timeout=300s"], timeout=320)
    run([*kubectl, "uncordon", node])
    total = time.monotonic() - started
    # Undo, so the lab is as it was.
    run([*ssh, "tee", FLAGS], input=original)
    run([*ssh, "rm", "-f", DROPIN])
    run([*ssh, "systemctl", "daemon-reload"])
    run([*ssh, "systemctl", "restart", "cri-docker.service"])
    run(
        [
            *kubectl,
            "annotate",
            "node",
            node,
            "--overwrite",
            "kubeadm.alpha.kubernetes.io/cri-socket=/var/run/dockershim.sock",
        ]
    )
    run([*ssh, "systemctl", "restart", "kubelet"])
    time.sleep(2)
    run([*kubectl, "wait", "--for=condition=Ready", f"node/{node}", "--timeout=300s"], timeout=320)
    return total, drain


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--node", default="shimshift-lab-worker2")
    args = parser.parse_args()
    info = cluster.load()
    if info is None:
        sys.exit("no lab is up: run `shimshift lab up` first")
    with tempfile.TemporaryDirectory() as scratch:
        total, steps = shimshift_way(info, args.node, Path(scratch))
    manual, manual_drain = manual_way(info, args.node)
    evictions = steps.get("drain", 0.0)
    restart = steps.get("restart-kubelet", 0.0) + steps.get("verify", 0.0)
    print(
        json.dumps(
            {
                "node": args.node,
                "shimshift_seconds": round(total, 1),
                "manual_seconds": round(manual, 1),
                "steps_seconds": {k: round(v, 2) for k, v in steps.items()},
            },
            indent=2,
        )
    )
    print(f"shimshift migrate: {total:.1f} s   kubectl + ssh by hand: {manual:.1f} s")
    # The two drains evict different pods (the first run moves them off the node), and the manual
    # `kubectl wait` can see the Ready of the old kubelet: compare what is left without the drain.
    print(
        f"without the drain: shimshift {total - evictions:.1f} s (cordon to uncordon, with proof), "
        f"by hand {manual - manual_drain:.1f} s (no verification)"
    )
    print(
        f"shimshift overhead (total - drain {evictions:.1f} s - kubelet restart and verify {restart:.1f} s): "
        f"{total - evictions - restart:.1f} s"
    )


if __name__ == "__main__":
    main()
