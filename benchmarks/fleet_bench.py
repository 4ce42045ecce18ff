"""P2: `migrate --all` over kwok nodes at several --max-unavailable levels, against the critical-path bound.

    python -m benchmarks.fleet_bench [--nodes 1000] [--levels 1% 5% 10%] [--src DIR]

Starts the kwok rig (tests/scale/rig.py: kube-apiserver, controllers, scheduler, kwok; ~30 pods a node
from Deployments and StatefulSets with PDBs, a DaemonSet and bare pods), then for each level runs the
migration in a child process (shimshift from ``--src``/src, default this tree, so the same command measures
an older tree for "before") with the node side played by the rig's FakeNode, and prints:

- total seconds, and the critical-path bound computed from the run's own journal: nodes in the order
  they started, cut into waves of the --max-unavailable count; per wave, the slowest node's evictions
  (its drain step, PDB waits included) plus its kubelet restart (restart-kubelet and verify steps);
  the bound is the sum over waves. What the run spends beyond it is the fleet's own overhead: the
  other steps, and time between one node finishing and the next starting.
- API requests per node, from the API server's audit log (shimshift has its own user; kwok, the
  controllers and the fake nodes are not counted), with evictions (one per pod) counted apart;
- the child's peak RSS (VmHWM).

Between levels the nodes get their dockershim annotation and bare pods back, and the rig settles again.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def node_steps(journal: Path) -> dict[str, dict[str, tuple[datetime, datetime]]]:
    """node -> step -> (started, finished), from the journal."""
    with sqlite3.connect(journal) as db:
        rows = db.execute("SELECT node, step, phase, at FROM steps ORDER BY seq").fetchall()
    started: dict[tuple[str, str], datetime] = {}
    spans: dict[str, dict[str, tuple[datetime, datetime]]] = {}
    for node, step, phase, at in rows:
        moment = datetime.fromisoformat(at)
        if phase == "started":
            started[(node, step)] = moment
        elif phase == "finished" and (node, step) in started:
            spans.setdefault(node, {})[step] = (started[(node, step)], moment)
    return spans


def critical_path(spans: dict[str, dict[str, tuple[datetime, datetime]]], limit: int) -> tuple[float, float]:
    """Two bounds from each node's essential time (its drain, PDB waits included, plus restart-kubelet and
    verify): (waves) the sum over waves, in start order and ``limit`` nodes each, of the wave's slowest
    node; (work) the least any schedule of ``limit`` slots needs: max(sum of essentials / limit, the
    longest one). The loop runs a sliding window, not waves, so it can beat the first; not the second."""

    def seconds(node: str, step: str) -> float:
        span = spans[node].get(step)
        return (span[1] - span[0]).total_seconds() if span else 0.0

    order = sorted(spans, key=lambda node: min(start for start, _ in spans[node].values()))
    essential = {node: sum(seconds(node, step) for step in ("drain", "restart-kubelet", "verify")) for node in order}
    waves = [order[index : index + limit] for index in range(0, len(order), limit)]
    by_waves = sum(max(essential[node] for node in wave) for wave in waves)
    by_work = max(sum(essential.values()) / limit, max(essential.values(), default=0.0))
    return by_waves, by_work


# --- the child: shimshift's migration, with the rig's fake node side ------------------------------------


async def child(counted: Path, admin: Path, level: str, journal: Path, report_dir: Path) -> dict[str, Any]:
    from shimshift.adapters.kube.client import make_client
    from shimshift.core.drain import DrainOptions
    from shimshift.orchestrator.session import Connection, MigrateOptions, migrate
    from tests.scale.rig import patched_session

    rig_client = make_client(admin, timeout=120)
    options = MigrateOptions(
        all_nodes=True, max_unavailable=level, max_failures=1, health_timeout=300, report_dir=report_dir,
        drain=DrainOptions(ignore_daemonsets=True, delete_emptydir_data=True, force=True, timeout=900),
    )
    started = time.perf_counter()
    with patched_session(rig_client):
        summary = await migrate(Connection(kubeconfig=counted, journal=journal), options)
    seconds = time.perf_counter() - started
    await rig_client.close()
    outcomes: dict[str, int] = {}
    for outcome in summary.result.outcomes:
        outcomes[str(outcome.status)] = outcomes.get(str(outcome.status), 0) + 1
    failed = [f"{item.node}: {item.message}" for item in summary.result.failures][:3]
    return {"seconds": seconds, "outcomes": outcomes, "failed": failed, "rss_peak_kib": _vm_hwm()}


def _vm_hwm() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


# --- the parent: the rig, the levels, the counting ------------------------------------------------------


async def reset(client: Any, nodes: int) -> None:
    """Back to dockershim for the next level: annotations, and the bare pods the drains deleted."""
    from shimshift.adapters.kube.client import raw_request
    from tests.scale.rig import NAMESPACE, Workload, _create_all, node_name, wait_settled, workload_objects

    gate = asyncio.Semaphore(64)

    async def annotate(name: str) -> None:
        async with gate:
            await raw_request(client, "PATCH", f"/api/v1/nodes/{name}", content_type="application/merge-patch+json",
                              body={"metadata": {"annotations": {
                                  "kubeadm.alpha.kubernetes.io/cri-socket": "/var/run/dockershim.sock"}}})

    await asyncio.gather(*(annotate(node_name(index)) for index in range(nodes)))
    workload = Workload(nodes)
    bare = [item for item in workload_objects(workload) if item[0] == f"/api/v1/namespaces/{NAMESPACE}/pods"]
    await _create_all(client, bare, 64)
    await wait_settled(client, workload, timeout=1800)


def count_requests(audit: list[dict[str, Any]]) -> tuple[int, int, int]:
    """(all requests, evictions that were not dry runs, watch requests) of shimshift's user."""
    evictions = sum(
        1 for event in audit
        if event.get("verb") == "create" and (event.get("objectRef") or {}).get("subresource") == "eviction"
        and "dryRun" not in str(event.get("requestURI", ""))
    )
    watches = sum(1 for event in audit if event.get("verb") == "watch")
    return len(audit), evictions, watches


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--levels", nargs="+", default=["1%", "5%", "10%"])
    parser.add_argument("--src", type=Path, default=ROOT / "src", help="the shimshift source tree to measure")
    parser.add_argument("--child", nargs=5, metavar=("COUNTED", "ADMIN", "LEVEL", "JOURNAL", "REPORTS"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    # A timeout's SIGTERM must still stop the rig's processes (the `with` below), not orphan them.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.child:
        counted, admin, level, journal, reports = args.child
        print(json.dumps(asyncio.run(child(Path(counted), Path(admin), level, Path(journal), Path(reports)))))
        return

    from shimshift.adapters.kube.client import make_client
    from shimshift.core.fleet import parse_max_unavailable
    from tests.apiserver_fixture import COUNTED_USER
    from tests.scale.rig import KwokRig, Workload, populate

    with KwokRig(audit_only_user=COUNTED_USER) as rig:
        server = rig.server
        counted = server.kubeconfig_for(server.directory / "counted.kubeconfig", server.counted_token)

        async def setup() -> float:
            client = make_client(rig.kubeconfig, timeout=120)
            try:
                return await populate(client, Workload(args.nodes), timeout=3600)
            finally:
                await client.close()

        settle = asyncio.run(setup())
        print(f"rig: {args.nodes} kwok nodes, {Workload(args.nodes).total_pods} pods settled in {settle:.0f}s "
              f"(shimshift from {args.src})", flush=True)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(args.src), str(ROOT)])}
        for number, level in enumerate(args.levels):
            if number:

                async def again() -> None:
                    client = make_client(rig.kubeconfig, timeout=120)
                    try:
                        await reset(client, args.nodes)
                    finally:
                        await client.close()

                asyncio.run(again())
            work = server.directory / f"level-{number}"
            work.mkdir()
            before = len(server.audited_requests())
            argv = [sys.executable, "-m", "benchmarks.fleet_bench", "--child", str(counted), str(rig.kubeconfig),
                    level, str(work / "journal.sqlite"), str(work)]
            run = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=ROOT, check=False)
            if run.returncode != 0:
                raise SystemExit(f"migration child failed at {level}:\n{run.stderr[-4000:]}")
            result = json.loads(run.stdout.strip().splitlines()[-1])
            audit = server.audited_requests()[before:]
            total, evictions, watches = count_requests(audit)
            limit = parse_max_unavailable(level, total=args.nodes)
            waves, bound = critical_path(node_steps(work / "journal.sqlite"), limit)
            print(
                f"--max-unavailable {level} ({limit} at once): {result['seconds']:.1f}s, outcomes {result['outcomes']}"
                f"{' e.g. ' + str(result['failed']) if result['failed'] else ''}; critical-path bound {bound:.1f}s "
                f"(ratio {result['seconds'] / bound if bound else math.nan:.2f}; by waves {waves:.1f}s); "
                f"API requests {total} = "
                f"{evictions} evictions + {(total - evictions) / args.nodes:.1f} per node "
                f"({watches} watches); peak RSS {result['rss_peak_kib'] / 1024:.0f} MiB",
                flush=True,
            )
            print(f"  requests by verb and resource: {breakdown(audit)}", flush=True)
            print(f"  mean seconds per step: {step_means(node_steps(work / 'journal.sqlite'))}", flush=True)


def step_means(spans: dict[str, dict[str, tuple[datetime, datetime]]]) -> str:
    totals: dict[str, list[float]] = {}
    for steps in spans.values():
        for step, (start, end) in steps.items():
            totals.setdefault(step, []).append((end - start).total_seconds())
    return ", ".join(f"{step} {sum(values) / len(values):.2f}" for step, values in totals.items())


def breakdown(audit: list[dict[str, Any]]) -> str:
    """The most frequent (verb, resource/subresource) pairs, dry runs apart."""
    counts: dict[str, int] = {}
    for event in audit:
        ref = event.get("objectRef") or {}
        kind = str(ref.get("resource", "")) + (f"/{ref['subresource']}" if ref.get("subresource") else "")
        dry = " (dry run)" if "dryRun" in str(event.get("requestURI", "")) else ""
        key = f"{event.get('verb')} {kind}{dry}"
        counts[key] = counts.get(key, 0) + 1
    return ", ".join(f"{key}: {count}" for key, count in sorted(counts.items(), key=lambda item: -item[1])[:12])


if __name__ == "__main__":
    main()
