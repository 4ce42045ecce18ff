"""The journey's plan on a big cluster: create N Nodes (kubelet 1.23.17 on Docker Engine, one in 100 a
control-plane node) on a real kube-apiserver v1.23.17, then time `shimshift audit --to VERSION -o json`
(the journey from the API alone: the schedule, every drain of every node, and the traps) in a child process.

    python -m benchmarks.journey_plan_bench [--nodes 300 2000] [--to 1.37.2] [--skew kubeadm kubernetes]

Starts its own etcd + kube-apiserver on loopback (tests/apiserver_fixture.py). Prints per cluster size and
skew: wall seconds, the child's peak RSS, the size of the JSON, and the drains per node the plan holds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.audit_bench import _create, _measured
from shimshift.adapters.kube.client import make_client, raw_request

ROOT = Path(__file__).resolve().parents[1]
CONTROL_PLANE = "node-role.kubernetes.io/control-plane"


async def _label_control_planes(kubeconfig: Path, nodes: int) -> None:
    """One node in 100 becomes a control-plane node (a kubeadm cluster has a few)."""
    client = make_client(kubeconfig, timeout=120)
    patch = {"metadata": {"labels": {CONTROL_PLANE: ""}}}
    for index in range(0, nodes, 100):
        response = await raw_request(
            client,
            "PATCH",
            f"/api/v1/nodes/bench-node-{index:05d}",
            body=patch,
            content_type="application/merge-patch+json",
        )
        if response.status != 200:
            raise SystemExit(f"labelling bench-node-{index:05d}: {response.status} {response.message}")
    await client.close()


def _drains(plan: dict[str, Any]) -> str:
    """The drains per node the JSON plan holds, as 'min-max'."""
    counts: dict[str, int] = (plan.get("journey") or {}).get("drains") or {}
    if not counts:
        return "none"
    return f"{min(counts.values())}-{max(counts.values())}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--nodes", type=int, nargs="+", default=[300, 2000])
    parser.add_argument("--to", default="1.37.2")
    parser.add_argument("--skew", nargs="+", default=["kubeadm", "kubernetes"])
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from tests.apiserver_fixture import LocalApiServer

    shimshift = [sys.executable, "-m", "shimshift.cli.main"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    for nodes in sorted(args.nodes):
        with LocalApiServer(controllers=False) as server:
            started = time.perf_counter()
            asyncio.run(_create(server.kubeconfig, nodes, 0, 64))
            asyncio.run(_label_control_planes(server.kubeconfig, nodes))
            print(f"{nodes} nodes created in {time.perf_counter() - started:.1f}s", flush=True)
            for skew in args.skew:
                argv = [*shimshift, "audit", "--to", args.to, "--skew", skew, "-o", "json",
                        "--kubeconfig", str(server.kubeconfig)]  # fmt: skip
                seconds, peak_kib, size = _measured(argv)
                out = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=ROOT, check=False)
                if out.returncode not in (0, 1):  # 1: blocking findings on the way, as on any 1.23 cluster
                    raise SystemExit(f"audit --to failed ({out.returncode}): {out.stderr[-2000:]}")
                plan = json.loads(out.stdout)
                print(
                    f"audit --to {args.to} --skew {skew}, {nodes} nodes: {seconds:.2f}s, peak RSS "
                    f"{peak_kib / 1024:.0f} MiB, {size / 1e6:.1f} MB of JSON, drains per node {_drains(plan)}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
