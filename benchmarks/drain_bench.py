"""P1b: a drain held by a PodDisruptionBudget: from the moment the PDB allows a disruption to the eviction,
`shimshift drain` beside `kubectl drain` (v1.23.17) in the same run.

    python -m benchmarks.drain_bench [--cycles 5] [--src DIR]

On the kwok rig (a few nodes), each cycle pins one pod under a PDB that allows nothing (minAvailable 1)
on each of two nodes, starts both drains at once (shimshift's CLI from ``--src``, default this tree;
kubectl from the lab build), and after a delay that differs per cycle relaxes both PDBs. Two watches note
when each PDB's status first allows a disruption and when each pod is evicted; the difference is the
figure. kubectl retries a refused eviction after a fixed 5 s, so its figure depends on where in that
sleep the PDB frees up: the delays are spread over the 5 s to sample it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
FLAGS = ["--ignore-daemonsets", "--delete-emptydir-data", "--force", "--timeout", "300s"]


async def cycle(client: Any, kubeconfig: Path, env: dict[str, str], number: int, delay: float) -> tuple[float, float]:
    from tests.apiserver_fixture import k8s_binary
    from tests.scale.rig import held_pod, node_name, observe_release, release_after

    ours, theirs = f"held-s{number}", f"held-k{number}"
    ours_node, theirs_node = node_name(2 * number), node_name(2 * number + 1)
    ours_pod = await held_pod(client, ours, ours_node)
    theirs_pod = await held_pod(client, theirs, theirs_node)
    shimshift = [sys.executable, "-m", "shimshift.cli.main", "drain", ours_node, "--kubeconfig", str(kubeconfig)]
    shimshift += FLAGS
    kubectl = [str(k8s_binary("kubectl")), "--kubeconfig", str(kubeconfig), "drain", theirs_node, *FLAGS]
    watches = [asyncio.create_task(observe_release(client, name, pod, timeout=300))
               for name, pod in ((ours, ours_pod), (theirs, theirs_pod))]
    drains = [await asyncio.create_subprocess_exec(*argv, env=env, cwd=ROOT, stdout=asyncio.subprocess.DEVNULL,
                                                   stderr=asyncio.subprocess.PIPE) for argv in (shimshift, kubectl)]
    await asyncio.gather(release_after(client, ours, delay), release_after(client, theirs, delay))
    (ours_allowed, ours_evicted), (theirs_allowed, theirs_evicted) = await asyncio.gather(*watches)
    for process, label in zip(drains, ("shimshift drain", "kubectl drain"), strict=True):
        _, stderr = await process.communicate()
        if process.returncode != 0:
            raise SystemExit(f"{label} failed: {stderr.decode()[-2000:]}")
    return ours_evicted - ours_allowed, theirs_evicted - theirs_allowed


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--cycles", type=int, default=5)
    parser.add_argument("--src", type=Path, default=ROOT / "src", help="the shimshift source tree to measure")
    args = parser.parse_args()
    # A timeout's SIGTERM must still stop the rig's processes (the `with` below), not orphan them.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    from shimshift.adapters.kube.client import make_client
    from tests.scale.rig import KwokRig, Workload, populate

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(args.src), str(ROOT)])}
    with KwokRig() as rig:

        async def run() -> list[tuple[float, float]]:
            client = make_client(rig.kubeconfig, timeout=120)
            try:
                await populate(client, Workload(2 * args.cycles + 2, pods_per_node=10), timeout=600)
                figures = []
                for number in range(args.cycles):
                    # Spread over kubectl's 5 s retry period: 2.0, 3.1, 4.2, 5.3, 6.4 s, ...
                    delay = 2.0 + (number * 1.1) % 5.0
                    figures.append(await cycle(client, rig.kubeconfig, env, number, delay))
                    ours, theirs = figures[-1]
                    print(f"cycle {number + 1} (PDB relaxed {delay:.1f}s after the drains started): "
                          f"shimshift evicted {ours:.2f}s after the PDB allowed it, kubectl {theirs:.2f}s", flush=True)
                return figures
            finally:
                await client.close()

        figures = asyncio.run(run())
    ours_mean = statistics.mean(item[0] for item in figures)
    theirs_mean = statistics.mean(item[1] for item in figures)
    print(f"mean over {len(figures)} cycles: shimshift {ours_mean:.2f}s, kubectl {theirs_mean:.2f}s "
          f"(shimshift {theirs_mean - ours_mean:.2f}s sooner per blocked cycle; shimshift from {args.src})")


if __name__ == "__main__":
    main()
