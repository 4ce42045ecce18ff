"""Audit on a big cluster: create N Nodes and M Pods on a real kube-apiserver, then time `audit_cluster`.

    python -m benchmarks.audit_bench [--nodes 2000] [--pods 60000] [--concurrency 96] [--chunk-size 500...]
                                     [--src DIR...] [--no-references]

Starts its own etcd + kube-apiserver v1.23.17 on loopback (tests/apiserver_fixture.py), creates the objects
with bounded concurrency (each Node with a kubelet-like status; one pod in 30 from a DaemonSet mounting
/var/run), then runs the audit in a fresh child process, twice: once plain (wall time, and peak RSS as
/proc VmHWM against the same child's peak before the audit), once under tracemalloc (peak Python heap);
then, as references on the same cluster, `kubectl get pods -A -o name` and `-o json` with their peak RSS.
The pods of one web ReplicaSet in three set allowPrivilegeEscalation: false, so the hardened-pod scan
(which also lists every workload) has findings to hold.
``--src`` measures other shimshift source trees (e.g. an export of an older commit, for "before"); given
several, each is measured on the same cluster, one after another.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from shimshift.adapters.kube.audit import audit_cluster
from shimshift.adapters.kube.client import make_client, raw_request

ROOT = Path(__file__).resolve().parents[1]


def _node(index: int) -> dict[str, Any]:
    runtime = "containerd://1.6.20" if index % 10 == 0 else "docker://20.10.24"
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": f"bench-node-{index:05d}",
            "labels": {"bench": "yes"},
            "annotations": {"kubeadm.alpha.kubernetes.io/cri-socket": "/var/run/dockershim.sock"},
        },
        "status": {
            "nodeInfo": {
                "kubeletVersion": "v1.23.17",
                "containerRuntimeVersion": runtime,
                "osImage": "Debian GNU/Linux 12 (bookworm)",
                "kubeProxyVersion": "v1.23.17",
                "machineID": "",
                "systemUUID": "",
                "bootID": "",
                "kernelVersion": "6.1",
                "operatingSystem": "linux",
                "architecture": "amd64",
            },
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "KubeletReady",
                    "lastHeartbeatTime": "2026-11-26T00:00:00Z",
                    "lastTransitionTime": "2026-11-26T00:00:00Z",
                }
            ],
        },
    }


def _pod(index: int, nodes: int) -> dict[str, Any]:
    agent = index % 30 == 0
    owner = {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet" if agent else "ReplicaSet",
        "name": "agent" if agent else f"web-{index % 97}-5d8f",
        "uid": f"00000000-0000-0000-0000-{index % 97:012d}",
        "controller": True,
    }
    volumes = (
        [{"name": "run", "hostPath": {"path": "/var/run"}}]
        if agent
        else [{"name": "cfg", "configMap": {"name": "cfg"}}]
    )
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"pod-{index:06d}",
            "namespace": "bench",
            "labels": {"app": f"web-{index % 97}", "pod-template-hash": "5d8f"},
            "ownerReferences": [owner],
        },
        "spec": {
            "nodeName": f"bench-node-{index % nodes:05d}",
            "volumes": volumes,
            "containers": [
                {
                    "name": "app",
                    "securityContext": {"allowPrivilegeEscalation": agent or index % 97 % 3 != 0},
                    "image": "registry.example/app:1.0",
                    "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
                    "env": [{"name": "MODE", "value": "bench"}],
                }
            ],
        },
    }


async def _create(kubeconfig: Path, nodes: int, pods: int, concurrency: int) -> dict[str, float]:
    client = make_client(kubeconfig, timeout=120)
    limit = asyncio.Semaphore(concurrency)
    failures: list[str] = []

    async def post(path: str, body: dict[str, Any]) -> None:
        async with limit:
            for _attempt in range(5):
                response = await raw_request(client, "POST", path, body=body)
                if response.status in (200, 201, 409):
                    return
                if response.status in (429, 500, 503, 504):
                    await asyncio.sleep(0.5)
                    continue
                break
            failures.append(f"{path}: {response.status} {response.message}")

    async def in_batches(items: list[tuple[str, dict[str, Any]]]) -> None:
        # Bounded: never more than a few thousand coroutines alive at once.
        for start in range(0, len(items), 4000):
            await asyncio.gather(*(post(path, body) for path, body in items[start : start + 4000]))

    figures: dict[str, float] = {}
    await post("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "bench"}})
    started = time.perf_counter()
    await in_batches([("/api/v1/nodes", _node(i)) for i in range(nodes)])
    figures["nodes_seconds"] = time.perf_counter() - started
    started = time.perf_counter()
    for start in range(0, pods, 20000):
        await in_batches(
            [("/api/v1/namespaces/bench/pods", _pod(i, nodes)) for i in range(start, min(pods, start + 20000))]
        )
    figures["pods_seconds"] = time.perf_counter() - started
    await client.close()
    if failures:
        raise SystemExit(f"{len(failures)} creates failed, e.g. {failures[:3]}")
    return figures


def _vm_kib(field: str) -> int:
    """VmHWM (peak RSS) of this process. Not getrusage's ru_maxrss: on Linux that survives
    fork+exec, so a child would report its parent's peak (the 60,000-pod creator)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


async def _audit(kubeconfig: Path, chunk_size: int) -> dict[str, Any]:
    client = make_client(kubeconfig, timeout=120)
    rss_before = _vm_kib("VmHWM")
    started, cpu = time.perf_counter(), time.process_time()
    report = await audit_cluster(client, chunk_size=chunk_size)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    await client.close()
    verdicts: dict[str, int] = {}
    for node in report.nodes:
        verdicts[node.runtime.runtime.value] = verdicts.get(node.runtime.runtime.value, 0) + 1
    return {
        "audit_seconds": seconds,
        "cpu_seconds": cpu,  # this process's own CPU: the rest of the wall time is waiting on the API server
        "nodes": len(report.nodes),
        "pods": report.pods_seen,
        "verdicts": verdicts,
        "socket_findings": len(report.socket_mounts),
        "hardened_workloads": len(getattr(report, "hardened", ())),  # an older tree has no such scan
        "rss_before_kib": rss_before,
        "rss_peak_kib": _vm_kib("VmHWM"),
    }


def audit_child(kubeconfig: Path, chunk_size: int, trace: bool) -> None:
    if trace:
        import tracemalloc

        tracemalloc.start()
    result = asyncio.run(_audit(kubeconfig, chunk_size))
    if trace:
        import tracemalloc

        result["tracemalloc_peak_kib"] = tracemalloc.get_traced_memory()[1] // 1024
    print(json.dumps(result))


PROTOBUF = "application/vnd.kubernetes.protobuf"


async def _server_pages(kubeconfig: Path, accept: str, chunk_size: int) -> tuple[float, int, int]:
    """Seconds, pages and bytes for the API server to serve every pod (``chunk_size`` 0: unpaged, from its
    watch cache with ``resourceVersion=0``), bodies read and thrown away: the server's share of an audit."""
    from shimshift.adapters.kube.client import _http

    client = make_client(kubeconfig, timeout=300)
    http = _http(client)  # raw bytes, and protobuf: this probe only; the product lists through lightkube
    token, pages, size = "", 0, 0
    started = time.perf_counter()
    try:
        while True:
            params = {"limit": str(chunk_size)} if chunk_size else {"resourceVersion": "0"}
            if token:
                params["continue"] = token
            page = await http.get("/api/v1/pods", params=params, headers={"Accept": accept})
            if page.status_code != 200:
                raise SystemExit(f"GET /api/v1/pods: {page.status_code}")
            pages, size = pages + 1, size + len(page.content)
            token = _protobuf_continue(page.content) if accept == PROTOBUF else _json_continue(page.content)
            if not token:
                return time.perf_counter() - started, pages, size
    finally:
        await client.close()


def _json_continue(body: bytes) -> str:
    found = re.search(rb'"continue":"([^"]*)"', body[:4096])  # metadata comes before the items
    return found.group(1).decode() if found else ""


def _protobuf_continue(body: bytes) -> str:
    # "k8s\0", then runtime.Unknown (field 2: raw) holding the PodList (field 1: ListMeta, whose field 3 is
    # continue): k8s.io/apimachinery runtime/generated.proto and meta/v1/generated.proto.
    if body[:4] != b"k8s\x00":
        raise SystemExit("not a Kubernetes protobuf answer")
    raw = _protobuf_field(body[4:], 2)
    return _protobuf_field(_protobuf_field(raw, 1), 3).decode()


def _protobuf_field(data: bytes, wanted: int) -> bytes:
    """The first length-delimited field ``wanted`` of a protobuf message (b"" when absent)."""
    from shimshift.lab.criprobe import _varint  # the lab's bounds-checked protobuf varint
    index = 0
    while index < len(data):
        key, index = _varint(data, index)
        number, wire = key >> 3, key & 7
        if wire == 0:
            _, index = _varint(data, index)
        elif wire == 2:
            length, index = _varint(data, index)
            if number == wanted:
                return data[index : index + length]
            index += length
        elif wire in (1, 5):
            index += 8 if wire == 1 else 4
        else:
            raise SystemExit(f"protobuf wire type {wire} not expected")
    return b""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--nodes", type=int, default=2000)
    parser.add_argument("--pods", type=int, default=60000)
    parser.add_argument("--concurrency", type=int, default=96)
    parser.add_argument("--chunk-size", type=int, nargs="+", default=[500],
                        help="objects per API page; given several, each tree is audited at each")
    parser.add_argument("--audit-only", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--references", action=argparse.BooleanOptionalAction, default=True,
                        help="also time kubectl on the same cluster (default)")
    parser.add_argument("--trace", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--server-pages", action="store_true",
                        help="also time the API server alone serving every pod, JSON and protobuf, at each "
                             "--chunk-size and unpaged from its watch cache (0)")
    parser.add_argument("--src", type=Path, nargs="+", default=[ROOT / "src"],
                        help="the shimshift source trees to measure, one after another on the same cluster")
    args = parser.parse_args()
    if args.audit_only:
        audit_child(args.audit_only, args.chunk_size[0], args.trace)
        return

    sys.path.insert(0, str(ROOT))
    from tests.apiserver_fixture import LocalApiServer, k8s_binary

    with LocalApiServer(controllers=False) as server:
        print(
            f"kube-apiserver up at {server.url}; creating {args.nodes} nodes and {args.pods} pods "
            f"(concurrency {args.concurrency})",
            flush=True,
        )
        figures = asyncio.run(_create(server.kubeconfig, args.nodes, args.pods, args.concurrency))
        print(
            f"created nodes in {figures['nodes_seconds']:.1f}s, pods in {figures['pods_seconds']:.1f}s "
            f"({args.pods / figures['pods_seconds']:.0f} pods/s)",
            flush=True,
        )
        for chunk_size in args.chunk_size:
            for src in args.src:
                _audits(server.kubeconfig, src, chunk_size)
        if args.server_pages:
            for chunk_size in [*args.chunk_size, 0]:
                for accept in ("application/json", PROTOBUF):
                    seconds, pages, size = asyncio.run(_server_pages(server.kubeconfig, accept, chunk_size))
                    how = f"limit={chunk_size}" if chunk_size else "resourceVersion=0 (watch cache, unpaged)"
                    print(f"server alone, {how}, {accept}: {seconds:.2f}s, {pages} pages, {size / 1e6:.0f} MB",
                          flush=True)
        if not args.references:
            return
        # References on the same cluster: kubectl v1.23 paging through the pods (names only), and
        # `kubectl get pods -A -o json` (every pod decoded and printed), each with its own peak RSS.
        kubectl = [str(k8s_binary("kubectl")), "--kubeconfig", str(server.kubeconfig), "get", "pods", "-A",
                   f"--chunk-size={args.chunk_size[0]}"]
        for output in ("name", "json"):
            seconds, peak_kib, size = _measured([*kubectl, "-o", output])
            print(f"reference: kubectl get pods -A -o {output}: {seconds:.2f}s, peak RSS {peak_kib / 1024:.0f} MiB "
                  f"({size / 1e6:.0f} MB of output)", flush=True)


def _audits(kubeconfig: Path, src: Path, chunk_size: int) -> None:
    """The audit of the shimshift in ``src``, in a fresh child, plain then under tracemalloc."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(src), str(ROOT)])}
    print(f"shimshift from {src}, --chunk-size {chunk_size}:", flush=True)
    for trace in (False, True):
        argv = [
            sys.executable,
            "-m",
            "benchmarks.audit_bench",
            "--audit-only",
            str(kubeconfig),
            "--chunk-size",
            str(chunk_size),
        ] + (["--trace"] if trace else [])
        child = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=ROOT, check=False)
        if child.returncode != 0:
            raise SystemExit(f"audit child failed:\n{child.stderr[-3000:]}")
        result = json.loads(child.stdout.strip().splitlines()[-1])
        label = "audit under tracemalloc" if trace else "audit"
        line = (
            f"{label}: {result['nodes']} nodes, {result['pods']} pods in {result['audit_seconds']:.2f}s "
            f"({result['cpu_seconds']:.2f}s of its own CPU); "
            f"verdicts {result['verdicts']}; socket findings {result['socket_findings']}; "
            f"hardened workloads {result['hardened_workloads']}; "
            f"peak RSS {result['rss_peak_kib'] / 1024:.1f} MiB "
            f"(before audit {result['rss_before_kib'] / 1024:.1f} MiB)"
        )
        if trace:
            line += f"; peak Python heap {result['tracemalloc_peak_kib'] / 1024:.1f} MiB"
        print(line, flush=True)


def _measured(argv: list[str]) -> tuple[float, int, int]:
    """Wall seconds, the child's own peak RSS (wait4's rusage, which covers only that child) and the
    number of bytes it printed."""
    started = time.perf_counter()
    with tempfile.TemporaryFile() as sink:
        process = subprocess.Popen(argv, stdout=sink, stderr=subprocess.DEVNULL)
        _, _, usage = os.wait4(process.pid, 0)
        process.returncode = 0
        seconds = time.perf_counter() - started
        size = sink.tell()
    return seconds, usage.ru_maxrss, size

if __name__ == "__main__":
    main()
