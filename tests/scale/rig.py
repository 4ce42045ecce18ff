"""The scale rig: many fake dockershim nodes on a real kube-apiserver, kept alive by kwok.

Real parts: etcd, kube-apiserver v1.23.17, kube-controller-manager (disruption, ReplicaSet, Deployment,
StatefulSet and DaemonSet controllers) and kube-scheduler from the lab build, on loopback; kwok v0.8.0
(sigs.k8s.io/kwok, built from its Go module by tests/scale/build-kwok.sh) plays every
kubelet: it marks nodes Ready, runs scheduled pods and finishes their deletion. Its stages come from tests/scale/
kwok-stages.yaml (passed with --config; the rig installs no kwok CRDs, and none of kwok's own manifests,
so the flowcontrol v1 one the 1.23 API server does not serve never comes up).

Nodes look like kubeadm 1.23 nodes on dockershim: ``containerRuntimeVersion: docker://20.10.24`` and the
``kubeadm.alpha.kubernetes.io/cri-socket`` annotation. Workloads, about 30 pods a node: one DaemonSet,
Deployments with PodDisruptionBudgets (maxUnavailable 10%), small StatefulSets with a PDB of
maxUnavailable 1, and one bare pod per node.

The node side of a migration is :class:`FakeNode` (a NodeAccess with the node's files in memory) and
:class:`FakeCri`; :func:`patched_session` puts them where `shimshift.orchestrator.session` would open SSH
connections and gRPC channels. Nothing in ``src/`` knows about any of this.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import shlex
import subprocess
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lightkube import AsyncClient
from lightkube.resources.core_v1 import Node, Pod
from lightkube.types import PatchType

from shimshift.adapters.kube.drain_pods import list_node_pods
from shimshift.adapters.node_access import CommandFailed, CommandResult, NodePool
from shimshift.core.actions import CriReport, ExecOutcome
from shimshift.core.drain import DrainOptions
from shimshift.core.node_files import (
    CRI_DOCKERD_DROPIN,
    CRI_DOCKERD_UNIT_LIB,
    DEFAULT_KUBELET,
    KUBEADM_FLAGS_ENV,
    KUBELET_CONFIG,
    KUBELET_DROPIN_USR,
)
from shimshift.core.steps import SandboxRef
from shimshift.orchestrator.wiring import KubeCluster
from tests.apiserver_fixture import LocalApiServer, k8s_binary

KWOK_VERSION = "v0.8.0"
KWOK_DIR = Path(os.environ.get("SHIMSHIFT_KWOK_DIR", f"/var/cache/shimshift/bin/kwok-{KWOK_VERSION}"))
STAGES = Path(__file__).with_name("kwok-stages.yaml")
FAKE_ANNOTATION = "kwok.x-k8s.io/node"
NAMESPACE = "scale"
RIG_CONTROLLERS = "disruption,replicaset,deployment,statefulset,daemonset"
NODE_PREFIX = "kwok-node-"


def ensure_kwok() -> Path:
    """The kwok binary, built from its Go module when missing (minutes, once)."""
    binary = KWOK_DIR / "kwok"
    if not os.access(binary, os.X_OK):
        script = Path(__file__).with_name("build-kwok.sh")
        subprocess.run([str(script), KWOK_VERSION, str(KWOK_DIR)], check=True)
    return binary


# --- the cluster -----------------------------------------------------------------------------------


@dataclass
class Workload:
    """How many of each kind, for ``nodes`` nodes and about ``pods_per_node`` pods a node."""

    nodes: int
    pods_per_node: int = 30

    @property
    def deployments(self) -> int:
        return max(1, self.nodes // 10)

    @property
    def replicas(self) -> int:
        # Per node: one DaemonSet pod, one bare pod, a fifth of a StatefulSet pod, the rest Deployments.
        return max(1, (self.pods_per_node - 2) * self.nodes // self.deployments)

    @property
    def statefulsets(self) -> int:
        return max(1, self.nodes // 10)

    @property
    def total_pods(self) -> int:
        return self.nodes * 2 + self.deployments * self.replicas + self.statefulsets * 2


class KwokRig:
    """The API server, controllers, scheduler and kwok; ``kubeconfig`` is an admin kubeconfig."""

    def __init__(self, *, audit_only_user: str | None = None) -> None:
        self.server = LocalApiServer(
            controller_names=RIG_CONTROLLERS, audit_log=audit_only_user is not None, audit_only_user=audit_only_user
        )
        self.processes: list[subprocess.Popen[bytes]] = []

    @property
    def kubeconfig(self) -> Path:
        return self.server.kubeconfig

    def __enter__(self) -> KwokRig:
        kwok = ensure_kwok()
        self.server.start()
        try:
            self._spawn("kube-scheduler", [
                str(k8s_binary("kube-scheduler")), "--kubeconfig", str(self.kubeconfig), "--leader-elect=false",
                "--secure-port", "0", "--kube-api-qps", "500", "--kube-api-burst", "1000", "--v", "1",
            ])
            self._spawn("kwok", [
                str(kwok), "--kubeconfig", str(self.kubeconfig), "--config", str(STAGES),
                "--manage-all-nodes=false", "--manage-nodes-with-annotation-selector", f"{FAKE_ANNOTATION}=fake",
                "--cidr", "10.0.0.0/8", "--node-ip", "127.0.0.1",
            ])
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _spawn(self, name: str, argv: list[str]) -> None:
        log = (self.server.directory / f"{name}.log").open("wb")
        self.processes.append(subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                               stdin=subprocess.DEVNULL, start_new_session=True))
        log.close()

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        self.processes.clear()
        self.server.stop()

    def log_tail(self, name: str) -> str:
        return self.server.log_tail(name)


def node_name(index: int) -> str:
    return f"{NODE_PREFIX}{index:05d}"


def fake_node(index: int) -> dict[str, Any]:
    name = node_name(index)
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {"kubernetes.io/hostname": name, "type": "kwok"},
            "annotations": {
                FAKE_ANNOTATION: "fake",
                "kubeadm.alpha.kubernetes.io/cri-socket": "/var/run/dockershim.sock",
            },
        },
        "status": {
            "nodeInfo": {
                "kubeletVersion": "v1.23.17",
                "kubeProxyVersion": "v1.23.17",
                "containerRuntimeVersion": "docker://20.10.24",
                "osImage": "Debian GNU/Linux 12 (bookworm)",
                "kernelVersion": "6.1.0",
                "operatingSystem": "linux",
                "architecture": "amd64",
                "machineID": "", "systemUUID": "", "bootID": "",
            },
        },
    }


def _template(app: str, *, tolerate_everything: bool = False) -> dict[str, Any]:
    """A pod template. Only the DaemonSet's tolerates every taint, as node agents do: a Deployment's or
    StatefulSet's pod that tolerated ``node.kubernetes.io/unschedulable`` would be scheduled back onto the
    cordoned nodes being drained (seen: a StatefulSet's replacement evicted again, 2 minutes a time).
    The others tolerate only ``node.kubernetes.io/not-ready``, which the API server puts on every new
    node and which no node lifecycle controller takes off here: it stands for "the taint is gone"."""
    spec: dict[str, Any] = {
        "containers": [{"name": "main", "image": "fake.local/app:1"}],
        "terminationGracePeriodSeconds": 0,
        "tolerations": [
            {"operator": "Exists", "effect": "NoSchedule", "key": "node.kubernetes.io/not-ready"}
            if not tolerate_everything else {"operator": "Exists"}
        ],
    }
    return {"metadata": {"labels": {"app": app}}, "spec": spec}


def workload_objects(workload: Workload) -> list[tuple[str, dict[str, Any]]]:
    """(collection path, object) for every workload object, PDBs before their pods."""
    ns = NAMESPACE
    objects: list[tuple[str, dict[str, Any]]] = []
    apps, policy = f"/apis/apps/v1/namespaces/{ns}", f"/apis/policy/v1/namespaces/{ns}"
    for number in range(workload.deployments):
        app = f"web-{number}"
        objects.append((f"{policy}/poddisruptionbudgets", {
            "apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": app},
            "spec": {"maxUnavailable": "10%", "selector": {"matchLabels": {"app": app}}}}))
        objects.append((f"{apps}/deployments", {
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": app},
            "spec": {"replicas": workload.replicas, "selector": {"matchLabels": {"app": app}},
                     "template": _template(app)}}))
    for number in range(workload.statefulsets):
        app = f"db-{number}"
        objects.append((f"{policy}/poddisruptionbudgets", {
            "apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": app},
            "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app": app}}}}))
        objects.append((f"{apps}/statefulsets", {
            "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": app},
            "spec": {"replicas": 2, "serviceName": app, "podManagementPolicy": "Parallel",
                     "selector": {"matchLabels": {"app": app}}, "template": _template(app)}}))
    objects.append((f"{apps}/daemonsets", {
        "apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent"},
        "spec": {"selector": {"matchLabels": {"app": "agent"}},
                 "template": _template("agent", tolerate_everything=True)}}))
    for index in range(workload.nodes):
        bare = _template("bare")
        objects.append((f"/api/v1/namespaces/{ns}/pods", {
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"bare-{index:05d}", "labels": {"app": "bare"}},
            "spec": {**bare["spec"], "nodeName": node_name(index)}}))
    return objects


async def _create_all(client: AsyncClient, items: Sequence[tuple[str, dict[str, Any]]], concurrency: int) -> None:
    from shimshift.adapters.kube.client import raw_request

    gate = asyncio.Semaphore(concurrency)

    async def create(path: str, body: dict[str, Any]) -> None:
        async with gate:
            for _ in range(20):
                response = await raw_request(client, "POST", path, body=body)
                if response.status in (200, 201, 409):
                    return
                await asyncio.sleep(0.5)  # 429/5xx while the server warms up
            raise RuntimeError(f"POST {path}: HTTP {response.status} {response.message}")

    await asyncio.gather(*(create(path, body) for path, body in items))


async def populate(client: AsyncClient, workload: Workload, *, timeout: float = 900.0,
                   concurrency: int = 64) -> float:
    """Create the nodes and workloads, and wait until every pod runs and every PDB allows a disruption.
    Returns the seconds it took."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    await _create_all(client, [("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                                       "metadata": {"name": NAMESPACE}})], 1)
    await _create_all(client, [("/api/v1/nodes", fake_node(index)) for index in range(workload.nodes)], concurrency)
    await _create_all(client, workload_objects(workload), concurrency)
    await wait_settled(client, workload, timeout=timeout)
    return loop.time() - started


async def wait_settled(client: AsyncClient, workload: Workload, *, timeout: float) -> None:
    """Every node Ready, every expected pod Running and Ready, every PDB allowing a disruption."""
    from lightkube.resources.policy_v1 import PodDisruptionBudget

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    state = ""
    while loop.time() < deadline:
        ready_nodes = sum([1 async for node in client.list(Node, chunk_size=500) if _ready(node.status)])
        running = sum([1 async for pod in client.list(Pod, namespace=NAMESPACE, chunk_size=500)
                       if pod.status is not None and pod.status.phase == "Running" and _ready(pod.status)])
        budgets = [pdb async for pdb in client.list(PodDisruptionBudget, namespace=NAMESPACE)]
        blocked = sum(1 for pdb in budgets if pdb.status is None or not pdb.status.disruptionsAllowed)
        state = f"{ready_nodes}/{workload.nodes} nodes Ready, {running}/{workload.total_pods} pods running, " \
                f"{blocked} PDBs allowing nothing"
        if ready_nodes == workload.nodes and running >= workload.total_pods and not blocked:
            return
        await asyncio.sleep(2.0)
    raise TimeoutError(f"the rig did not settle in {timeout:g}s: {state}")


def _ready(status: Any) -> bool:
    conditions = getattr(status, "conditions", None) or []
    return any(item.type == "Ready" and item.status == "True" for item in conditions)


# --- the node side of a migration ------------------------------------------------------------------

PAUSE = "registry.k8s.io/pause:3.6"
KUBELET_START_SECONDS = 1.0
KUBELET_DROPIN = (
    b'[Service]\nEnvironment="KUBELET_KUBECONFIG_ARGS=--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf'
    b' --kubeconfig=/etc/kubernetes/kubelet.conf"\n'
    b'Environment="KUBELET_CONFIG_ARGS=--config=/var/lib/kubelet/config.yaml"\n'
    b"EnvironmentFile=-/var/lib/kubelet/kubeadm-flags.env\nEnvironmentFile=-/etc/default/kubelet\n"
    b"ExecStart=\nExecStart=/usr/bin/kubelet $KUBELET_KUBECONFIG_ARGS $KUBELET_CONFIG_ARGS $KUBELET_KUBEADM_ARGS"
    b" $KUBELET_EXTRA_ARGS\n"
)
KUBELET_CONFIGURATION = (
    b"apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\ncgroupDriver: systemd\n"
)
CRI_DOCKERD_UNIT = (
    b"[Unit]\nDescription=CRI Interface for Docker Application Container Engine\n"
    b"[Service]\nType=notify\nExecStart=/usr/bin/cri-dockerd --container-runtime-endpoint fd://\n"
)


def dockershim_files() -> dict[str, bytes]:
    """A kubeadm 1.23 node on dockershim with cri-dockerd installed from its package, not yet used."""
    return {
        KUBELET_DROPIN_USR: KUBELET_DROPIN,
        KUBEADM_FLAGS_ENV: (
            f'KUBELET_KUBEADM_ARGS="--network-plugin=cni --pod-infra-container-image={PAUSE}"\n'.encode()
        ),
        KUBELET_CONFIG: KUBELET_CONFIGURATION,
        CRI_DOCKERD_UNIT_LIB: CRI_DOCKERD_UNIT,
    }


def _env_value(text: bytes | None, name: str) -> list[str]:
    for line in (text or b"").decode().splitlines():
        key, _, value = line.partition("=")
        if key.strip() == name:
            return shlex.split(shlex.split(value)[0]) if value.strip() else []
    return []


def _exec_start(unit: bytes | None) -> list[str]:
    lines = [line[len("ExecStart="):] for line in (unit or b"").decode().splitlines() if line.startswith("ExecStart=")]
    return shlex.split(lines[-1]) if lines and lines[-1] else []


@dataclass
class FakeNode:
    """One kwok node's shell and files, in memory. ``systemctl restart kubelet`` is real to the API: the
    node's Ready condition turns False (written like a kubelet going away would leave it), and kwok's
    node-initialize stage makes it Ready again with a fresh heartbeat."""

    node: str
    client: AsyncClient
    files: dict[str, bytes] = field(default_factory=dockershim_files)
    kubelet_argv: list[str] = field(default_factory=list)
    cri_dockerd_argv: list[str] = field(default_factory=list)
    commands: int = 0
    _restarting: asyncio.Task[None] | None = None

    def __post_init__(self) -> None:
        self.kubelet_argv = self._kubelet_from_files()
        self.cri_dockerd_argv = self._cri_dockerd_from_files()

    def _kubelet_from_files(self) -> list[str]:
        return [
            "/usr/bin/kubelet", "--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf",
            "--kubeconfig=/etc/kubernetes/kubelet.conf", "--config=/var/lib/kubelet/config.yaml",
            *_env_value(self.files.get(KUBEADM_FLAGS_ENV), "KUBELET_KUBEADM_ARGS"),
            *_env_value(self.files.get(DEFAULT_KUBELET), "KUBELET_EXTRA_ARGS"),
        ]

    def _cri_dockerd_from_files(self) -> list[str]:
        return _exec_start(self.files.get(CRI_DOCKERD_DROPIN)) or _exec_start(self.files.get(CRI_DOCKERD_UNIT_LIB))

    async def run(self, argv: Sequence[str], *, check: bool = True, timeout: float = 60,
                  stdin: bytes | None = None) -> CommandResult:
        self.commands += 1
        code, out = await self._answer(list(argv))
        result = CommandResult(tuple(argv), code, out.encode(), b"" if code == 0 else b"not simulated")
        if check and code != 0:
            raise CommandFailed(self.node, result)
        return result

    async def _answer(self, argv: list[str]) -> tuple[int, str]:
        match argv:
            case ["systemctl", "is-active" | "is-enabled", *_]:
                return 0, "active\n"
            case ["docker", "info", *_]:
                return 0, "systemd\n"
            case ["/usr/bin/cri-dockerd", "--version"]:
                return 0, "cri-dockerd 0.3.17 (4b2ac1ba)\n"
            case ["ls", "-1", _]:
                return 0, "10-bridge.conf\n"
            case ["systemctl", "daemon-reload" | "enable" | "try-restart", *_]:
                return 0, ""
            case ["systemctl", "cat", "cri-docker.service"]:
                return 0, CRI_DOCKERD_UNIT.decode()
            case ["systemctl", "show", "--property", "ExecStart", "--value", "cri-docker.service"]:
                return 0, f"{{ path={self.cri_dockerd_argv[0]} ; argv[]={' '.join(self.cri_dockerd_argv)} }}\n"
            case ["systemctl", "show", "--property", "MainPID", "--value", unit]:
                return 0, "101\n" if unit.startswith("kubelet") else "202\n"
            case ["systemctl", "restart", "cri-docker.service"]:
                self.cri_dockerd_argv = self._cri_dockerd_from_files()
                return 0, ""
            case ["systemctl", "restart", "kubelet" | "kubelet.service"]:
                self.kubelet_argv = self._kubelet_from_files()
                # systemctl returns once the new kubelet process runs; it reports to the API a moment later.
                self._restarting = asyncio.create_task(self._kubelet_restarted())
                return 0, ""
            case ["chmod", *_]:
                return 0, ""
            case ["ss", "-Hltnp"]:
                # cri-dockerd's streaming server where the plan binds it (--streaming-bind-addr=127.0.0.1).
                return 0, 'LISTEN 0 4096 127.0.0.1:40237 0.0.0.0:* users:(("cri-dockerd",pid=202,fd=12))\n'
            case ["docker", "network", "inspect", "bridge", *_]:
                return 0, "172.17.0.0/16 \n"
        return 1, ""

    async def _kubelet_restarted(self) -> None:
        """The new kubelet's first status: NotReady, which kwok's node-initialize stage turns into Ready
        with a heartbeat of now. Written after KUBELET_START_SECONDS, so that heartbeat is later than any
        moment taken when `systemctl restart` returned, as with a real kubelet (shimshift compares at the
        heartbeat's one-second precision)."""
        await asyncio.sleep(KUBELET_START_SECONDS)
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        patch = {"status": {"conditions": [{
            "type": "Ready", "status": "False", "reason": "KubeletNotReady", "message": "kubelet restarting",
            "lastHeartbeatTime": now, "lastTransitionTime": now,
        }]}}
        await self.client.patch(Node.Status, self.node, patch, patch_type=PatchType.STRATEGIC)

    async def read_file(self, path: str, *, max_bytes: int | None = None) -> bytes | None:
        if path == "/proc/101/cmdline":
            return b"\0".join(arg.encode() for arg in self.kubelet_argv) + b"\0"
        if path == "/proc/202/cmdline":
            return b"\0".join(arg.encode() for arg in self.cri_dockerd_argv) + b"\0"
        data = self.files.get(path)
        return data if data is None or max_bytes is None else data[: max_bytes + 1]

    async def find_programs(self, programs: Sequence[str]) -> dict[str, str | None]:
        return {program: f"/usr/bin/{program}" for program in programs}

    async def write_file_atomic(self, path: str, data: bytes, *, backup: bool = True, mode: int | None = None,
                                timeout: float = 60) -> str | None:
        self.files[path] = data
        return None

    async def remove_file(self, path: str, *, backup: bool = True) -> str | None:
        self.files.pop(path, None)
        return None

    @contextlib.asynccontextmanager
    async def _forward(self, remote_path: str) -> AsyncIterator[str]:
        yield f"/nonexistent/{self.node}{remote_path}"

    def open_unix_socket_forward(self, remote_path: str) -> contextlib.AbstractAsyncContextManager[str]:
        return self._forward(remote_path)

    async def close(self) -> None:
        return None


class FakeCri:
    """cri-dockerd as the fake node's socket would answer: ready, with a sandbox for every running pod."""

    client: AsyncClient

    def __init__(self, *, node: str, remote_socket: str, timeout: float = 10.0) -> None:
        self.node = node

    async def check(self, socket_path: str) -> CriReport:
        return CriReport("docker", "20.10.24", "v1", runtime_ready=True, network_ready=True)

    async def ready_sandboxes(self, socket_path: str) -> list[SandboxRef]:
        # From the watch cache, as the fleet's own lists: at 30,000 pods a list of one node's pods read
        # from etcd answered 504 while fifty nodes were migrating (the 1,000-node run at 5%).
        pods = await list_node_pods(self.client, self.node, DrainOptions(), from_watch_cache=True)
        return [SandboxRef(pod["metadata"]["namespace"], pod["metadata"]["name"], pod["metadata"]["uid"])
                for pod in pods]


class KwokCluster(KubeCluster):
    """The real ClusterPort, but exec into a pod is answered as the pause image answers ``-v``: kwok plays
    no streaming server (it would need its ClusterExec resources and a kubelet endpoint per node), so the
    API server has nowhere to send verify's exec. The exec itself is proven in the lab's e2e tests and,
    through a real API server, in tests/e2e/cluster/test_apiserver_canary.py."""

    async def exec_in_pod(
        self, namespace: str, name: str, container: str, command: Sequence[str], *, timeout: float
    ) -> ExecOutcome:
        return ExecOutcome(0, b"pause.c v3.6 (kwok rig)\n")


@contextlib.contextmanager
def patched_session(client: AsyncClient) -> Iterator[dict[str, FakeNode]]:
    """Make `shimshift.orchestrator.session` reach kwok nodes through FakeNode and FakeCri."""
    from shimshift.orchestrator import session

    nodes: dict[str, FakeNode] = {}

    async def connect(name: str) -> FakeNode:
        return nodes.setdefault(name, FakeNode(name, client))

    @contextlib.asynccontextmanager
    async def node_pool(connection: Any) -> AsyncIterator[NodePool]:
        pool = NodePool(connect)
        try:
            yield pool
        finally:
            await pool.close()

    replacements = {
        "node_pool": node_pool,
        "GrpcCri": type("BoundFakeCri", (FakeCri,), {"client": client}),
        "KubeCluster": KwokCluster,
    }
    saved = {name: getattr(session, name) for name in replacements}
    for name, value in replacements.items():
        setattr(session, name, value)
    try:
        yield nodes
    finally:
        for name, value in saved.items():
            setattr(session, name, value)


# --- a drain held by a PodDisruptionBudget ---------------------------------------------------------


async def held_pod(client: AsyncClient, name: str, node: str) -> str:
    """A one-replica Deployment pinned to ``node`` under a PDB that allows nothing (minAvailable 1).
    Returns the pod's name once it runs and the PDB's status says 0 disruptions allowed."""
    from lightkube.resources.policy_v1 import PodDisruptionBudget

    template = _template(name)
    template["spec"]["nodeSelector"] = {"kubernetes.io/hostname": node}
    ns = NAMESPACE
    await _create_all(client, [
        (f"/apis/policy/v1/namespaces/{ns}/poddisruptionbudgets", {
            "apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": name},
            "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": name}}}}),
        (f"/apis/apps/v1/namespaces/{ns}/deployments", {
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}}, "template": template}}),
    ], 2)
    for _ in range(300):
        pods = [pod async for pod in client.list(Pod, namespace=ns, labels={"app": name})]
        pdb = await client.get(PodDisruptionBudget, name, namespace=ns)
        running = [pod for pod in pods if pod.status is not None and _ready(pod.status)]
        if running and pdb.status is not None and pdb.status.currentHealthy == 1:
            assert running[0].metadata is not None
            return str(running[0].metadata.name)
        await asyncio.sleep(0.2)
    raise TimeoutError(f"held pod {name} never ran")


async def release_after(client: AsyncClient, name: str, delay: float) -> None:
    """After ``delay``, let the PDB allow one disruption (minAvailable 0), as an operator would."""
    from lightkube.resources.policy_v1 import PodDisruptionBudget

    await asyncio.sleep(delay)
    await client.patch(PodDisruptionBudget, name, {"spec": {"minAvailable": 0}}, namespace=NAMESPACE)


async def observe_release(client: AsyncClient, name: str, pod: str, *, timeout: float) -> tuple[float, float]:
    """(when the PDB's status first allowed a disruption, when the pod was evicted), on the loop's clock.

    Both seen through watches: the PDB's ``disruptionsAllowed`` turning positive, and the pod getting a
    deletionTimestamp (or vanishing), whoever evicted it.
    """
    from lightkube.resources.policy_v1 import PodDisruptionBudget

    loop = asyncio.get_running_loop()
    seen: dict[str, float] = {}

    async def budget() -> None:
        async for _, item in client.watch(PodDisruptionBudget, namespace=NAMESPACE, fields={"metadata.name": name}):
            if item.status is not None and (item.status.disruptionsAllowed or 0) > 0:
                seen.setdefault("allowed", loop.time())
                return

    async def evicted() -> None:
        async for change, item in client.watch(Pod, namespace=NAMESPACE, fields={"metadata.name": pod}):
            if change == "DELETED" or (item.metadata is not None and item.metadata.deletionTimestamp is not None):
                seen.setdefault("evicted", loop.time())
                return

    await asyncio.wait_for(asyncio.gather(budget(), evicted()), timeout=timeout)
    return seen["allowed"], seen["evicted"]
