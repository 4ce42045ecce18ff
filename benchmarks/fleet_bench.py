"""P2: `migrate --all` over kwok nodes at several --max-unavailable levels, against the critical-path bound.

    python -m benchmarks.fleet_bench [--nodes 1000] [--levels 1% 5% 10%] [--src DIR] [--keep DIR]
    python -m benchmarks.fleet_bench --facts DIR/level-0.json ...   # the bounds again, no run

Starts the kwok rig (tests/scale/rig.py: kube-apiserver, controllers, scheduler, kwok; ~30 pods a node
from Deployments and StatefulSets with PDBs, a DaemonSet and bare pods), then for each level runs the
migration in a child process (shimshift from ``--src``/src, default this tree, so the same command measures
an older tree for "before") with the node side played by the rig's FakeNode, and prints:

- total seconds against the lower bound of benchmarks/fleet_bounds.py (its docstring says how each is
  computed): max(the work bound, from the run's journal; the longest PDB chain, from each PDB's pods on
  the nodes at the start, the disruptions it allows at once and how long an eviction held one in this
  run, seen by a watch on the PDBs in this process and the evictions in the audit log). The work bound
  alone, the pre-PDB-aware figure, is printed beside it with its own ratio, and the waves bound too;
- with ``--keep DIR``, each level's measured facts (steps, PDB samples, evictions) as JSON;
- API requests per node, from the API server's audit log (shimshift has its own user; kwok, the
  controllers and the fake nodes are not counted), with evictions (one per pod) counted apart;
- the child's peak RSS (VmHWM);
- the CPU each rig process and the migration used during the level, as a share of one core: on a small
  machine the control plane's CPU is what paces pod starts, and so the PDBs' holds.

Between levels the nodes get their dockershim annotation and bare pods back, and the rig settles again.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import functools
import json
import math
import os
import resource
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.fleet_bounds import BudgetFacts, fleet_bounds, measured_budget  # noqa: E402


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


def step_seconds(
    spans: dict[str, dict[str, tuple[datetime, datetime]]],
) -> tuple[dict[str, dict[str, float]], list[str]]:
    """(node -> step -> seconds, the nodes in the order they started)."""
    seconds = {node: {step: (end - start).total_seconds() for step, (start, end) in steps.items()}
               for node, steps in spans.items()}
    order = sorted(spans, key=lambda node: min(start for start, _ in spans[node].values()))
    return seconds, order


# --- the child: shimshift's migration, with the rig's fake node side ------------------------------------


async def child(
    counted: Path, admin: Path, level: str, journal: Path, report_dir: Path, canary_timeout: float | None
) -> dict[str, Any]:
    from shimshift.adapters.kube.client import make_client
    from shimshift.core.drain import DrainOptions
    from shimshift.orchestrator.session import Connection, MigrateOptions, migrate
    from tests.scale.rig import patched_session

    rig_client = make_client(admin, timeout=120)
    options = MigrateOptions(
        all_nodes=True, max_unavailable=level, max_failures=1, health_timeout=300, report_dir=report_dir,
        drain=DrainOptions(ignore_daemonsets=True, delete_emptydir_data=True, force=True, timeout=900),
    )
    if canary_timeout is not None:
        options = dataclasses.replace(options, canary_timeout=canary_timeout)
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
    evictions = sum(1 for event in audit if is_eviction(event))
    watches = sum(1 for event in audit if event.get("verb") == "watch")
    return len(audit), evictions, watches


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--levels", nargs="+", default=["1%", "5%", "10%"])
    parser.add_argument("--src", type=Path, default=ROOT / "src", help="the shimshift source tree to measure")
    parser.add_argument("--keep", type=Path, help="write each level's measured facts here as JSON")
    parser.add_argument("--facts", type=Path, nargs="+", help="only recompute the bounds from --keep's files")
    parser.add_argument("--canary-timeout", type=float, help=(
        "migrate's --canary-timeout (default: migrate's); at 1,000 nodes on 2 cores kwok takes longer than the default "
        "to start a pod while hundreds of evicted pods are replaced"))
    parser.add_argument("--child", nargs=5, metavar=("COUNTED", "ADMIN", "LEVEL", "JOURNAL", "REPORTS"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    # A timeout's SIGTERM must still stop the rig's processes (the `with` below), not orphan them.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.facts:
        for kept in args.facts:
            recompute(kept)
        return
    if args.child:
        counted, admin, level, journal, reports = args.child
        print(json.dumps(asyncio.run(child(Path(counted), Path(admin), level, Path(journal), Path(reports),
                                                 args.canary_timeout))))
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
        rig_cpu = functools.partial(cpu_seconds, [*server.processes, *rig.processes])
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
            if args.canary_timeout is not None:
                argv += ["--canary-timeout", str(args.canary_timeout)]
            run, record = asyncio.run(watched_child(rig.kubeconfig, argv, env, rig_cpu))
            if run.returncode != 0:
                raise SystemExit(f"migration child failed at {level}:\n{run.stderr[-4000:]}")
            result = json.loads(run.stdout.strip().splitlines()[-1])
            audit = server.audited_requests()[before:]
            total, evictions, watches = count_requests(audit)
            limit = parse_max_unavailable(level, total=args.nodes)
            seconds, order = step_seconds(node_steps(work / "journal.sqlite"))
            if args.keep:
                args.keep.mkdir(parents=True, exist_ok=True)
                (args.keep / f"level-{number}.json").write_text(json.dumps({
                    "level": level, "limit": limit, "result": result, "steps": seconds, "order": order,
                    "record": record, "evictions": [event for event in audit if is_eviction(event)]}))
            print(
                f"--max-unavailable {level} ({limit} at once): {result['seconds']:.1f}s, outcomes {result['outcomes']}"
                f"{' e.g. ' + str(result['failed']) if result['failed'] else ''}; "
                f"{describe_bounds(result['seconds'], seconds, order, limit, budget_facts(record, audit))}; "
                f"API requests {total} = "
                f"{evictions} evictions + {(total - evictions) / args.nodes:.1f} per node "
                f"({watches} watches); peak RSS {result['rss_peak_kib'] / 1024:.0f} MiB",
                flush=True,
            )
            print(f"  requests by verb and resource: {breakdown(audit)}", flush=True)
            print(f"  mean seconds per step: {step_means(node_steps(work / 'journal.sqlite'))}", flush=True)
            print(f"  CPU during the run, share of one core ({os.cpu_count()} here): {cpu_shares(record)}", flush=True)


def cpu_seconds(processes: list[subprocess.Popen[bytes]]) -> dict[str, float]:
    """Each process's CPU time so far (user + system), by its program's name, from /proc/PID/stat."""
    ticks = os.sysconf("SC_CLK_TCK")
    used: dict[str, float] = {}
    for process in processes:
        # Fields after the command's closing parenthesis: state is the first, utime the 12th, stime the 13th.
        fields = Path(f"/proc/{process.pid}/stat").read_text().rpartition(")")[2].split()
        name = Path(str(process.args[0] if isinstance(process.args, list) else process.args)).name
        used[name] = used.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / ticks
    return used


def cpu_shares(record: dict[str, Any]) -> str:
    wall = record["end"] - record["start"]
    used = {name: record["cpu_after"][name] - record["cpu_before"].get(name, 0.0) for name in record["cpu_after"]}
    used["shimshift (the migration)"] = record["child_cpu"]
    shares = sorted(((seconds / wall * 100, name) for name, seconds in used.items()), reverse=True)
    return ", ".join(f"{name} {share:.0f}%" for share, name in shares) + f"; all {sum(s for s, _ in shares):.0f}%"


async def watched_child(
    admin: Path, argv: list[str], env: dict[str, str], rig_cpu: Callable[[], dict[str, float]],
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """Run the migration child while watching the PDBs: their pods on nodes and disruptionsAllowed at the
    start, every status change with the wall-clock time it arrived, the child's start and end, and the CPU
    the rig's processes and the child used in between."""
    from lightkube.resources.core_v1 import Pod
    from lightkube.resources.policy_v1 import PodDisruptionBudget

    from shimshift.adapters.kube.client import make_client
    from tests.scale.rig import NAMESPACE

    client = make_client(admin, timeout=120)
    samples: dict[str, list[tuple[float, int]]] = {}
    pods: dict[str, int] = {}
    try:
        async for pod in client.list(Pod, namespace=NAMESPACE):
            app = (pod.metadata.labels or {}).get("app", "") if pod.metadata else ""
            if pod.spec is not None and pod.spec.nodeName:
                pods[app] = pods.get(app, 0) + 1
        ready = asyncio.Event()
        initial: set[str] = set()

        async def watch() -> None:
            async for _, item in client.watch(PodDisruptionBudget, namespace=NAMESPACE):
                name = item.metadata.name if item.metadata and item.metadata.name else ""
                allowed = (item.status.disruptionsAllowed or 0) if item.status else 0
                samples.setdefault(name, []).append((time.time(), allowed))
                initial.add(name)
                if len(initial) >= len(budgets):
                    ready.set()

        budgets = [pdb async for pdb in client.list(PodDisruptionBudget, namespace=NAMESPACE)]
        watcher = asyncio.create_task(watch())
        await asyncio.wait_for(ready.wait(), timeout=60)
        cpu_before, children_before = rig_cpu(), resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.time()
        process = await asyncio.create_subprocess_exec(
            *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env, cwd=ROOT)
        stdout, stderr = await process.communicate()
        end = time.time()
        cpu_after, children_after = rig_cpu(), resource.getrusage(resource.RUSAGE_CHILDREN)
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
    finally:
        await client.close()
    run = subprocess.CompletedProcess(argv, process.returncode or 0, stdout.decode(), stderr.decode())
    # The child is the only process reaped meanwhile, so the growth of RUSAGE_CHILDREN is its CPU.
    child_cpu = sum(getattr(children_after, f) - getattr(children_before, f) for f in ("ru_utime", "ru_stime"))
    return run, {"start": start, "end": end, "pods": pods, "samples": samples, "cpu_before": cpu_before,
                 "cpu_after": cpu_after, "child_cpu": child_cpu}


def is_eviction(event: dict[str, Any]) -> bool:
    """An eviction request that was not a dry run, accepted or not."""
    ref = event.get("objectRef") or {}
    return (event.get("verb") == "create" and ref.get("subresource") == "eviction"
            and "dryRun" not in str(event.get("requestURI", "")))


def budget_facts(record: dict[str, Any], audit: list[dict[str, Any]]) -> list[BudgetFacts]:
    """Each PDB's facts over the run; an evicted pod belongs to the PDB whose name prefixes its own (the
    rig names a PDB after its Deployment or StatefulSet, whose pods are named ``<app>-...``)."""
    names = sorted(record["samples"], key=len, reverse=True)
    evicted: dict[str, list[float]] = {}
    for event in audit:
        ref = event.get("objectRef") or {}
        if is_eviction(event) and int((event.get("responseStatus") or {}).get("code", 0)) < 300:
            owner = next((name for name in names if str(ref.get("name", "")).startswith(name + "-")), None)
            if owner is not None:
                at = datetime.fromisoformat(str(event["stageTimestamp"]).replace("Z", "+00:00")).timestamp()
                evicted.setdefault(owner, []).append(at)
    return [
        measured_budget(name, pods=record["pods"].get(name, 0), samples=[(at, value) for at, value in samples],
                        evictions=evicted.get(name, []), start=record["start"], end=record["end"])
        for name, samples in record["samples"].items()
    ]


def describe_bounds(
    total: float, seconds: dict[str, dict[str, float]], order: list[str], limit: int, budgets: list[BudgetFacts],
) -> str:
    bounds = fleet_bounds(seconds, order, limit, budgets)
    ratio = total / bounds.bound if bounds.bound else math.nan
    old_ratio = total / bounds.work if bounds.work else math.nan
    chain = next((facts for facts in budgets if facts.name == bounds.budget), None)
    return (
        f"bound {bounds.bound:.1f}s (ratio {ratio:.2f}) = max(work {bounds.work:.1f}s [ratio {old_ratio:.2f}], "
        f"PDB chain {bounds.budgets:.1f}s"
        + (f" [{chain.name}: {chain.pods} pods, {chain.allowed} at once, {chain.rounds} rounds, recovery "
           f"{chain.recovery:.2f}s over {chain.evictions} completed evictions, tail {bounds.tail:.2f}s]"
           if chain else "")
        + f"); by waves {bounds.waves:.1f}s"
    )


def recompute(kept: Path) -> None:
    """The bounds again from a level's facts written by ``--keep``, with this tree's arithmetic."""
    facts = json.loads(kept.read_text())
    total = facts["result"]["seconds"]
    budgets = budget_facts(facts["record"], facts["evictions"])
    print(f"{kept}: --max-unavailable {facts['level']} ({facts['limit']} at once): {total:.1f}s; "
          f"{describe_bounds(total, facts['steps'], facts['order'], facts['limit'], budgets)}", flush=True)


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
