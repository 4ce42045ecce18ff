"""Bring the lab up, take it down, tell how it is.

`up` turns the artifacts that `shimshift.lab.images.ensure_artifacts` builds (node image, inner image
tarball) into a running kubeadm v1.23.17 cluster:

1. a Docker network of the lab's own and one container per node (systemd as PID 1, Docker inside);
2. the inner images loaded into every node's Docker (nothing is ever pulled: each is there under the
   exact reference kubeadm asks for, so its ImagePull preflight check passes);
3. `kubeadm init` on the control plane with kubeadm's default addons (CoreDNS, kube-proxy), `kubeadm
   join` on the workers, both on the dockershim socket, no preflight error ignored;
4. flannel, the CNI daemon (render.flannel), which gives every node its pod network and routes;
5. cri-dockerd left running, stopped or absent; ssh access; sample workloads; the files under the lab
   directory (kubeconfig, ssh key, ssh_config, known_hosts, lab.json).

Everything created in the host's Docker carries the label shimshift.lab=1, so `down` finds it even
when `up` stopped half-way. Library code: progress goes through a callback, nothing is printed.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import string
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Protocol, TypeVar

from shimshift.lab import render
from shimshift.lab.docker import LabError, docker, node_exec, wait_until, write_node_file
from shimshift.lab.lock import LabLock
from shimshift.lab.model import (
    CRI_DOCKERD_SOCKET,
    CRI_SOCKET_ANNOTATION,
    DEFAULT_DIRECTORY,
    DEMO_NAMESPACE,
    KUBERNETES_VERSION,
    LABEL,
    NETWORK_NAME,
    NETWORK_SUBNET,
    CriDockerdMode,
    LabInfo,
    LabNode,
    LabSpec,
    lab_files,
    plan_nodes,
    volume_names,
)

Progress = Callable[[str], None]
T = TypeVar("T")
R = TypeVar("R")

KUBEADM_CONFIG = "/etc/shimshift-lab/kubeadm.yaml"
# What kubeadm's addons and the CNI daemon run, waited for before the lab counts as up.
SYSTEM_ROLLOUTS = (
    ("kube-system", "daemonset/kube-proxy"),
    (render.FLANNEL_NAMESPACE, f"daemonset/{render.FLANNEL_DAEMONSET}"),
    ("kube-system", "deployment/coredns"),
)
ADMIN_CONF = "/etc/kubernetes/admin.conf"
# Where `--cri-dockerd absent` keeps what it removed, so `set_cri_dockerd` can put it back.
CRI_DOCKERD_BACKUP = "/var/lib/shimshift-lab/cri-dockerd-backup"
CRI_DOCKERD_UNITS = ("cri-docker.socket", "cri-docker.service")
# A lab at 1.24 or later runs cri-dockerd from `lab up` on, with the settings render.cri_dockerd_dropin gives.
CRI_DOCKERD_DROPIN = "/etc/systemd/system/cri-docker.service.d/10-shimshift-lab.conf"


class Artifacts(Protocol):
    """What `lab up` needs from shimshift.lab.images.LabArtifacts."""

    @property
    def node_image(self) -> str: ...

    @property
    def inner_images_tar(self) -> Path: ...


def _noop(_: str) -> None:
    return None


def _parallel(fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
    """Run fn on every item in threads; re-raise the first failure after all have finished."""
    items = list(items)
    with ThreadPoolExecutor(max_workers=max(1, len(items))) as pool:
        futures = [pool.submit(fn, i) for i in items]
        errors = [f.exception() for f in futures]
    for e in errors:
        if e is not None:
            raise e
    return [f.result() for f in futures]


def _atomic_write(path: Path, content: str | bytes, *, mode: int = 0o644) -> None:
    """tmp + fsync + rename, so a reader never sees half a file."""
    data = content.encode() if isinstance(content, str) else content
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        Path(tmp).chmod(mode)
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# ---------------------------------------------------------------------------------------------------
# up


def up(
    *,
    spec: LabSpec | None = None,
    directory: Path = DEFAULT_DIRECTORY,
    artifacts: Artifacts | None = None,
    cache_dir: Path = Path("/var/cache/shimshift"),
    progress: Progress | None = None,
    lock_timeout: float = 1800,
) -> LabInfo:
    """Build the lab from scratch (call `down` first to replace an existing one).

    Holds the lab lock (lock.py) exclusively meanwhile, waiting up to lock_timeout for it.
    Raises LabError naming the step that failed; what was created stays for inspection and `down`.
    """
    with LabLock(directory, timeout=lock_timeout, on_wait=progress):
        return _up(
            spec=spec, directory=directory, artifacts=artifacts, cache_dir=cache_dir, progress=progress
        )


def _up(
    *,
    spec: LabSpec | None,
    directory: Path,
    artifacts: Artifacts | None,
    cache_dir: Path,
    progress: Progress | None,
) -> LabInfo:
    spec = spec or LabSpec()
    rel = spec.release
    say = progress or _noop
    if artifacts is None:
        artifacts = _ensure_artifacts(spec, cache_dir=cache_dir, progress=progress)
    existing = _labelled("ps", "-a")
    if existing:
        raise LabError(
            f"lab containers already exist ({', '.join(existing)}); run `shimshift lab down` first"
        )
    nodes = plan_nodes(spec)
    cp = nodes[0]
    files = lab_files(directory)
    directory.mkdir(parents=True, exist_ok=True)
    files["state"].unlink(missing_ok=True)  # present only once a lab is complete
    logs = directory / "logs"

    say(f"network: {NETWORK_NAME} {NETWORK_SUBNET}")
    _ensure_network()
    say(f"nodes: starting {', '.join(n.name for n in nodes)} from {artifacts.node_image}")
    _parallel(lambda n: _run_node(n, image=artifacts.node_image), nodes)
    say("nodes: waiting for systemd and Docker, then loading the inner images")
    ssh_key = files["ssh_key"]
    _make_ssh_key(ssh_key)

    def ready(n: LabNode) -> None:
        _wait_booted(n)
        _prepare_node(n)
        _install_authorized_key(n, ssh_key)
        load_images(n, artifacts.inner_images_tar)
        if not rel.uses_dockershim:
            # From 1.24 the kubelet has no runtime of its own: cri-dockerd must serve before kubeadm runs.
            write_node_file(n.name, CRI_DOCKERD_DROPIN, render.cri_dockerd_dropin(rel))
            node_exec(n.name, ["systemctl", "daemon-reload"])
            set_cri_dockerd(n.name, CriDockerdMode.RUNNING)

    token = _bootstrap_token()
    # Workers boot and load images while the control plane runs kubeadm init (2 cores: the overlap
    # is worth about half a minute of a warm `lab up`).
    with ThreadPoolExecutor(max_workers=len(nodes)) as pool:
        pending = {n.name: pool.submit(ready, n) for n in nodes}
        pending[cp.name].result()
        cgroup_driver = _docker_cgroup_driver(cp)
        say(
            f"kubeadm init {rel.version} on {cp.name} (CRI socket {rel.cri_socket}; "
            f"kubelet cgroup driver {cgroup_driver}, as the node's Docker)"
        )
        write_node_file(
            cp.name,
            KUBEADM_CONFIG,
            render.kubeadm_init_config(control_plane=cp, token=token, cgroup_driver=cgroup_driver, at=rel),
            mode="0600",
        )
        _kubeadm(cp, ["kubeadm", "init", f"--config={KUBEADM_CONFIG}", "--skip-token-print"], log_dir=logs)
        _atomic_write(files["kubeconfig"], node_exec(cp.name, ["cat", ADMIN_CONF]).stdout, mode=0o600)
        for future in pending.values():
            future.result()

    workers = nodes[1:]
    say(f"kubeadm join: {', '.join(n.name for n in workers)}")

    def join(n: LabNode) -> None:
        write_node_file(
            n.name,
            KUBEADM_CONFIG,
            render.kubeadm_join_config(node=n, control_plane=cp, token=token, at=rel),
            mode="0600",
        )
        _kubeadm(n, ["kubeadm", "join", f"--config={KUBEADM_CONFIG}"], log_dir=logs)

    _parallel(join, workers)

    from shimshift.lab.images import FLANNEL_IMAGE

    # flanneld reaches the API server through its Service address, which only kube-proxy's rules make
    # answer: started earlier it crash-loops, and its requests leave the lab's network meanwhile.
    say("addons: waiting for kube-proxy on every node")
    _rollout(cp, *SYSTEM_ROLLOUTS[0])
    say(f"network: flannel ({FLANNEL_IMAGE}) on every node")
    _wait_pod_cidrs(cp, nodes)
    kubectl(cp.name, ["apply", "-f", "-"], input=render.flannel(image=FLANNEL_IMAGE))

    if rel.uses_dockershim:
        say(f"cri-dockerd: {spec.cri_dockerd.value} on every node")
        _parallel(lambda n: set_cri_dockerd(n.name, spec.cri_dockerd), nodes)

    say("ssh: known_hosts from each node's own host keys")
    host_keys = dict(zip(nodes, _parallel(_host_keys, nodes), strict=True))
    _atomic_write(files["known_hosts"], render.known_hosts(host_keys))
    _atomic_write(
        files["ssh_config"],
        render.ssh_config(nodes=nodes, identity_file=str(ssh_key), known_hosts=str(files["known_hosts"])),
    )

    say("nodes: waiting until every node is Ready")
    wait_until("every node Ready", lambda: _nodes_not_ready(cp, nodes), timeout=180, interval=2)
    say("addons: waiting for flannel and CoreDNS")
    for namespace, what in SYSTEM_ROLLOUTS[1:]:
        _rollout(cp, namespace, what)

    if not spec.hardened_demo:
        say("addons: CoreDNS without allowPrivilegeEscalation: false (kubelets 1.23 on cri-dockerd refuse it)")
        set_coredns_no_new_privs(cp.name, hardened=False)

    say(f"workloads: applying samples in namespace {DEMO_NAMESPACE}")
    first_worker = workers[0].name
    manifests = render.workloads(first_worker=first_worker, hardened_demo=spec.hardened_demo)
    kubectl(cp.name, ["apply", "-f", "-"], input=manifests)
    write_node_file(first_worker, render.STATIC_POD_FILE, render.static_pod())
    _wait_workloads(cp, first_worker=first_worker, hardened_demo=spec.hardened_demo)

    info = LabInfo(
        directory=directory,
        kubeconfig=files["kubeconfig"],
        ssh_config=files["ssh_config"],
        known_hosts=files["known_hosts"],
        ssh_key=ssh_key,
        nodes=nodes,
        spec=spec,
        node_image=artifacts.node_image,
    )
    say("ssh: checking strict-host-key login to every node")
    _parallel(lambda n: _check_ssh(info, n), nodes)
    _atomic_write(files["state"], info.dumps())
    say(f"lab up: {len(nodes)} nodes, files in {directory}")
    return info


def _ensure_artifacts(spec: LabSpec, *, cache_dir: Path, progress: Progress | None) -> Artifacts:
    """The default lab's artifacts (with the 1.24.17 kubelet its migration tests use), or another release's."""
    from shimshift.lab.images import CRI_DOCKERD_VERSION, ensure_artifacts, ensure_release_artifacts

    say = progress or _noop
    if spec.version == KUBERNETES_VERSION and spec.cri_dockerd_version == CRI_DOCKERD_VERSION:
        say("artifacts: ensuring binaries, node image and inner images (cached after the first build)")
        return ensure_artifacts(cache_dir=cache_dir, progress=progress)
    say(f"artifacts: ensuring Kubernetes {spec.version} with cri-dockerd {spec.cri_dockerd_version} "
        "(each release is built once, then cached)")
    return ensure_release_artifacts(
        spec.version, cri_dockerd_version=spec.cri_dockerd_version, cache_dir=cache_dir, progress=progress
    )


def _labelled(kind: str, *extra: str) -> list[str]:
    """Names of lab-made objects: kind is 'ps', 'volume ls' or 'network ls'."""
    proc = docker(
        *kind.split(),
        *extra,
        "--filter",
        f"label={LABEL}=1",
        "--format",
        "{{.Name}}" if kind != "ps" else "{{.Names}}",
    )
    return [line for line in proc.stdout.split() if line]


def _ensure_network() -> None:
    if NETWORK_NAME in _labelled("network ls"):
        return
    docker(
        "network",
        "create",
        "--driver",
        "bridge",
        "--subnet",
        NETWORK_SUBNET,
        "--label",
        f"{LABEL}=1",
        NETWORK_NAME,
    )


def _run_node(node: LabNode, *, image: str) -> None:
    """One node container, with the flags seen to work on this kind of VM
    (docs/lab.md#the-node-container):
    --privileged is refused here (CAP_SYS_RESOURCE is outside the bounding set)."""
    volumes: list[str] = []
    for mount, name in volume_names(node.name).items():
        docker("volume", "create", "--label", f"{LABEL}=1", name)
        volumes += ["--volume", f"{name}:{mount}"]
    docker(
        "run", "--detach",
        "--name", node.name,
        "--hostname", node.name,
        "--network", NETWORK_NAME,
        "--ip", node.ip,
        "--label", f"{LABEL}=1",
        "--label", f"{LABEL}.role={node.role}",
        "--cap-add", "ALL",
        "--cap-drop", "SYS_RESOURCE",
        "--security-opt", "seccomp=unconfined",
        "--security-opt", "apparmor=unconfined",
        "--cgroupns", "private",
        # What --privileged would give the devices cgroup: the node's Docker runs privileged pods
        # (kubeadm's kube-proxy is one), whose runc grants them every device, which a cgroup v1 child may
        # only do when its parent allows it ("a *:* rwm").
        "--device-cgroup-rule", "a *:* rwm",
        # kube-proxy (iptables mode) needs it and would write it itself, but /proc/sys is read-only in the
        # node; it is per network namespace, so this changes nothing outside the node.
        "--sysctl", "net.ipv4.conf.all.route_localnet=1",
        "--tmpfs", "/run",
        "--tmpfs", "/tmp",  # noqa: S108 - the node's own /tmp
        "--stop-signal", "SIGRTMIN+3",  # systemd's shutdown signal
        "--tty",
        *volumes,
        image,
    )  # fmt: skip


def _wait_booted(node: LabNode) -> None:
    def probe() -> str | None:
        state = node_exec(
            node.name, ["systemctl", "is-system-running"], check=False, timeout=30
        ).stdout.strip()
        if state not in ("running", "degraded"):
            return f"{node.name}: systemd is {state or 'not answering'}"
        if node_exec(
            node.name, ["docker", "info", "--format", "{{.ID}}"], check=False, timeout=30
        ).returncode:
            return f"{node.name}: Docker is not answering yet"
        return None

    wait_until(f"systemd and Docker in {node.name}", probe, timeout=180, interval=1)


def _asset(name: str) -> str:
    return resources.files("shimshift.lab").joinpath("assets", "node", name).read_text()


def _prepare_node(node: LabNode) -> None:
    """Two adaptations to a VM without CAP_SYS_RESOURCE and with a read-only /proc/sys in the nodes
    (each file under lab/assets/node says why): a runc wrapper that raises negative oom_score_adj
    to 0, and private kernel tunables for the kubelet; and the kubelet's resolv.conf for pods
    (render.KUBELET_RESOLV_CONF says why). Idempotent."""
    if node_exec(node.name, ["test", "-e", "/usr/sbin/runc.real"], check=False).returncode != 0:
        node_exec(
            node.name,
            [
                "dpkg-divert",
                "--quiet",
                "--local",
                "--rename",
                "--divert",
                "/usr/sbin/runc.real",
                "--add",
                "/usr/sbin/runc",
            ],
        )
    write_node_file(node.name, "/usr/sbin/runc", _asset("runc-wrapper.sh"), mode="0755")
    write_node_file(
        node.name, "/usr/local/sbin/shimshift-lab-kernel-tunables", _asset("kernel-tunables.sh"), mode="0755"
    )
    write_node_file(
        node.name,
        "/etc/systemd/system/shimshift-lab-kernel-tunables.service",
        _asset("shimshift-lab-kernel-tunables.service"),
    )
    node_exec(node.name, ["systemctl", "daemon-reload"])
    node_exec(node.name, ["systemctl", "enable", "--now", "shimshift-lab-kernel-tunables.service"])
    write_node_file(node.name, render.KUBELET_RESOLV_CONF, render.kubelet_resolv_conf(node))


def load_images(node: LabNode, tar: Path) -> None:
    # The tarball is piped through `docker exec -i` into the node's own Docker, as kind v0.2.1 did
    # (docs/lab.md#kubeadm-offline).
    node_exec(node.name, ["docker", "load", "--quiet"], stdin_file=tar, timeout=600)


def _docker_cgroup_driver(node: LabNode) -> str:
    return node_exec(node.name, ["docker", "info", "--format", "{{.CgroupDriver}}"]).stdout.strip()


def _bootstrap_token() -> str:
    alphabet = string.ascii_lowercase + string.digits
    return (
        "".join(secrets.choice(alphabet) for _ in range(6))
        + "."
        + "".join(secrets.choice(alphabet) for _ in range(16))
    )


def _kubeadm(node: LabNode, argv: list[str], *, log_dir: Path) -> None:
    """Run kubeadm in the node; its whole output goes to <lab>/logs/<node>-kubeadm-<verb>.log."""
    # The kubelet unit may be shipped disabled; kubeadm only restarts it.
    node_exec(node.name, ["systemctl", "enable", "kubelet.service"], check=False)
    started = time.monotonic()
    proc = node_exec(node.name, [*argv, "--v=1"], timeout=600, check=False)
    log = log_dir / f"{node.name}-kubeadm-{argv[1]}.log"
    _atomic_write(
        log,
        f"# {' '.join(argv)}: exit {proc.returncode} after {time.monotonic() - started:.0f}s\n"
        + proc.stdout
        + proc.stderr,
        mode=0o600,
    )
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr + proc.stdout).strip().splitlines()[-25:])
        raise LabError(
            f"{node.name}: `{' '.join(argv[:2])}` failed (exit {proc.returncode}), see {log}:\n{tail}"
        )


def kubectl(
    node: str,
    argv: Sequence[str],
    *,
    input: str | None = None,
    check: bool = True,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """kubectl inside the control-plane node with kubeadm's admin.conf."""
    return node_exec(
        node, ["kubectl", f"--kubeconfig={ADMIN_CONF}", *argv], input=input, check=check, timeout=timeout
    )


def _rollout(cp: LabNode, namespace: str, what: str) -> None:
    kubectl(cp.name, ["rollout", "status", "-n", namespace, what, "--timeout=240s"], timeout=260)


def _wait_pod_cidrs(cp: LabNode, nodes: Sequence[LabNode]) -> dict[str, str]:
    """Every node's podCIDR (flanneld, started before one is set, would wait for it anyway)."""
    cidrs: dict[str, str] = {}

    def probe() -> str | None:
        out = kubectl(cp.name, ["get", "nodes", "-o", "json"], check=False).stdout
        try:
            items = json.loads(out)["items"]
        except (ValueError, KeyError):
            return "API server not answering"
        cidrs.clear()
        cidrs.update({i["metadata"]["name"]: i["spec"].get("podCIDR", "") for i in items})
        missing = [n.name for n in nodes if not cidrs.get(n.name)]
        return f"no podCIDR yet for {', '.join(missing)}" if missing else None

    wait_until("a podCIDR on every node", probe, timeout=120)
    return cidrs


def _nodes_not_ready(cp: LabNode, nodes: Sequence[LabNode]) -> str | None:
    out = kubectl(cp.name, ["get", "nodes", "-o", "json"], check=False).stdout
    try:
        items = json.loads(out)["items"]
    except (ValueError, KeyError):
        return "API server not answering"
    ready = {
        i["metadata"]["name"]
        for i in items
        if any(c["type"] == "Ready" and c["status"] == "True" for c in i["status"].get("conditions", []))
    }
    missing = [n.name for n in nodes if n.name not in ready]
    return f"not Ready: {', '.join(missing)}" if missing else None


def set_coredns_no_new_privs(control_plane: str, *, hardened: bool) -> None:
    """CoreDNS's container with kubeadm's ``allowPrivilegeEscalation: false`` (hardened) or without it.

    kubeadm 1.23 deploys CoreDNS with that setting (cmd/kubeadm/app/phases/addons/dns/manifests.go@v1.23.17),
    and a kubelet before 1.24 on cri-dockerd refuses to start such a pod (Mirantis/cri-dockerd#167): an
    operator who migrates 1.23 kubelets without upgrading them must leave it out while they run, as the
    lab without its hardened demo does (docs/hardened-pods.md)."""
    container = {"name": "coredns", "securityContext": {"allowPrivilegeEscalation": False if hardened else None}}
    patch = json.dumps({"spec": {"template": {"spec": {"containers": [container]}}}})  # None: the field goes
    kubectl(control_plane, ["-n", "kube-system", "patch", "deployment/coredns", "--type=strategic", "-p", patch])
    kubectl(control_plane, ["-n", "kube-system", "rollout", "status", "deployment/coredns", "--timeout=180s"],
            timeout=200)
    if hardened:
        return

    def left() -> str | None:
        # The hardened-pods guard also counts pods still terminating (CoreDNS's lameduck keeps them a while).
        listing = kubectl(control_plane, ["-n", "kube-system", "get", "pods", "-l", "k8s-app=kube-dns", "-o", "json"])
        hardened_pods = [
            pod["metadata"]["name"]
            for pod in json.loads(listing.stdout)["items"]
            if any((c.get("securityContext") or {}).get("allowPrivilegeEscalation") is False
                   for c in pod["spec"]["containers"])
        ]
        return f"still there: {', '.join(hardened_pods)}" if hardened_pods else None

    wait_until("CoreDNS pods without allowPrivilegeEscalation: false only", left, timeout=120, interval=2)


def _wait_workloads(cp: LabNode, *, first_worker: str, hardened_demo: bool) -> None:
    ns = ["-n", DEMO_NAMESPACE]
    deployments: tuple[str, ...] = ("deployment/web", "deployment/scratch")
    if hardened_demo:
        deployments += (f"deployment/{render.RESTRICTED_DEPLOYMENT}",)
    for what in (*deployments, "daemonset/node-agent", "statefulset/db"):
        kubectl(cp.name, ["rollout", "status", *ns, what, "--timeout=180s"], timeout=200)
    kubectl(cp.name, ["wait", *ns, "--for=condition=complete", "job/once", "--timeout=120s"], timeout=140)
    kubectl(cp.name, ["wait", *ns, "--for=condition=Ready", "pod/bare", "--timeout=120s"], timeout=140)
    mirror = f"{render.STATIC_POD_NAME}-{first_worker}"
    wait_until(
        f"static pod {mirror}",
        lambda: (
            None
            if kubectl(cp.name, ["get", *ns, "pod", mirror], check=False).returncode == 0
            else f"mirror pod {mirror} not there yet"
        ),
        timeout=120,
        interval=2,
    )
    kubectl(cp.name, ["wait", *ns, "--for=condition=Ready", f"pod/{mirror}", "--timeout=120s"], timeout=140)


def _make_ssh_key(path: Path) -> None:
    if path.exists() and path.with_suffix(".pub").exists():
        return
    path.unlink(missing_ok=True)
    path.with_suffix(".pub").unlink(missing_ok=True)
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "shimshift-lab", "-f", str(path)],
        check=True,
        capture_output=True,
    )


def _install_authorized_key(node: LabNode, key: Path) -> None:
    pub = key.with_suffix(".pub").read_text()
    node_exec(node.name, ["mkdir", "-p", "-m", "0700", "/root/.ssh"])
    write_node_file(node.name, "/root/.ssh/authorized_keys", pub, mode="0600")


def _host_keys(node: LabNode) -> list[str]:
    """The node's real host public keys, read from its filesystem (not ssh-keyscan over the wire)."""
    out: list[str] = []

    def probe() -> str | None:
        proc = node_exec(node.name, ["sh", "-c", "cat /etc/ssh/ssh_host_*_key.pub"], check=False, timeout=30)
        keys = [line for line in proc.stdout.splitlines() if line.strip()]
        active = node_exec(node.name, ["systemctl", "is-active", "ssh.service"], check=False).stdout.strip()
        if not keys or active != "active":
            return f"{node.name}: sshd is {active}, {len(keys)} host keys"
        out[:] = keys
        return None

    wait_until(f"sshd host keys in {node.name}", probe, timeout=60)
    return out


def _check_ssh(info: LabInfo, node: LabNode) -> None:
    proc = subprocess.run(
        ["ssh", "-F", str(info.ssh_config), node.name, "systemctl", "is-active", "kubelet"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if proc.returncode != 0 or proc.stdout.strip() != "active":
        raise LabError(f"{node.name}: ssh check failed: {(proc.stderr or proc.stdout).strip()}")


# ---------------------------------------------------------------------------------------------------
# cri-dockerd state


def set_cri_dockerd(node: str, mode: CriDockerdMode) -> None:
    """Leave cri-dockerd running (packaged units, packaged defaults), stopped, or absent on a node.

    The lab adds no drop-in: moving the kubelet's dockershim flags (pause image, CNI dirs) into a
    cri-dockerd drop-in is the migration's job. cri-dockerd's own defaults are enough to
    serve CRI on /run/cri-dockerd.sock; they are wrong only for creating sandboxes (its default pause
    image is newer than the loaded pause:3.6; docs/runtime-facts.md#cri-dockerd).
    `absent` moves the binary and units to CRI_DOCKERD_BACKUP, and any other mode puts them back.
    """
    _restore_cri_dockerd(node)
    if mode is CriDockerdMode.RUNNING:
        node_exec(node, ["systemctl", "enable", "--now", *CRI_DOCKERD_UNITS])

        def probe() -> str | None:
            active = node_exec(
                node, ["systemctl", "is-active", "cri-docker.service"], check=False
            ).stdout.strip()
            sock = node_exec(node, ["test", "-S", CRI_DOCKERD_SOCKET], check=False).returncode == 0
            return None if active == "active" and sock else f"{node}: cri-docker is {active}, socket={sock}"

        wait_until(f"cri-dockerd on {node}", probe, timeout=60)
        return
    node_exec(node, ["systemctl", "disable", "--now", *CRI_DOCKERD_UNITS], check=False)
    if mode is CriDockerdMode.ABSENT:
        paths = _cri_dockerd_paths(node)
        node_exec(node, ["mkdir", "-p", CRI_DOCKERD_BACKUP])
        manifest = "\n".join(paths) + "\n"
        write_node_file(node, f"{CRI_DOCKERD_BACKUP}/MANIFEST", manifest)
        for p in paths:
            node_exec(node, ["cp", "-a", "--parents", p, CRI_DOCKERD_BACKUP])
            node_exec(node, ["rm", "-f", p])
        node_exec(node, ["systemctl", "daemon-reload"])
        node_exec(node, ["systemctl", "reset-failed"], check=False)


def _cri_dockerd_paths(node: str) -> list[str]:
    paths: list[str] = []
    for unit in CRI_DOCKERD_UNITS:
        frag = node_exec(node, ["systemctl", "show", "-P", "FragmentPath", unit]).stdout.strip()
        if frag:
            paths.append(frag)
    binary = node_exec(node, ["sh", "-c", "command -v cri-dockerd"], check=False).stdout.strip()
    if binary:
        paths.append(binary)
    return paths


def _restore_cri_dockerd(node: str) -> None:
    proc = node_exec(node, ["cat", f"{CRI_DOCKERD_BACKUP}/MANIFEST"], check=False)
    if proc.returncode != 0:
        return
    for p in proc.stdout.split():
        node_exec(node, ["cp", "-a", f"{CRI_DOCKERD_BACKUP}{p}", p])
    node_exec(node, ["rm", "-rf", CRI_DOCKERD_BACKUP])
    node_exec(node, ["systemctl", "daemon-reload"])


def cri_dockerd_state(node: str) -> CriDockerdMode:
    """What cri-dockerd is on a node now: absent (no binary), running (service active) or stopped."""
    if node_exec(node, ["sh", "-c", "command -v cri-dockerd"], check=False).returncode != 0:
        return CriDockerdMode.ABSENT
    active = node_exec(node, ["systemctl", "is-active", "cri-docker.service"], check=False).stdout.strip()
    return CriDockerdMode.RUNNING if active == "active" else CriDockerdMode.STOPPED


# ---------------------------------------------------------------------------------------------------
# down, load, status


@dataclass
class DownReport:
    containers: list[str] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)
    networks: list[str] = field(default_factory=list)
    images: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)


def down(
    *,
    directory: Path = DEFAULT_DIRECTORY,
    remove_images: bool = True,
    progress: Progress | None = None,
    lock_timeout: float = 1800,
) -> DownReport:
    """Remove every container, volume and network labelled shimshift.lab=1, the lab's files, and
    (unless remove_images is False) the node image and any image labelled shimshift.lab=1.

    Idempotent: a second call finds nothing and removes nothing. The build cache under
    /var/cache/shimshift is never touched, so a later `up` re-imports the node image from it.
    Holds the lab lock exclusively, waiting up to lock_timeout for it.
    """
    with LabLock(directory, timeout=lock_timeout, on_wait=progress):
        return _down(directory=directory, remove_images=remove_images, progress=progress)


def _down(*, directory: Path, remove_images: bool, progress: Progress | None) -> DownReport:
    say = progress or _noop
    report = DownReport()
    report.containers = _labelled("ps", "-a")
    if report.containers:
        say(f"removing containers: {', '.join(report.containers)}")
        docker("rm", "--force", "--volumes", *report.containers, timeout=300)
    report.volumes = _labelled("volume ls")
    if report.volumes:
        say(f"removing volumes: {', '.join(report.volumes)}")
        docker("volume", "rm", "--force", *report.volumes)
    report.networks = _labelled("network ls")
    if report.networks:
        say(f"removing networks: {', '.join(report.networks)}")
        docker("network", "rm", *report.networks)
    if remove_images:
        report.images = _lab_images(directory)
        if report.images:
            say(f"removing images: {', '.join(report.images)}")
            docker("image", "rm", "--force", *report.images)
    # Former builds of the node image, untagged by a rebuild while a lab still used them
    # (build-node-image.sh labels every build io.shimshift.inputs). Still in use elsewhere: kept.
    stale = docker(
        "images", "--quiet", "--filter", "dangling=true", "--filter", "label=io.shimshift.inputs"
    ).stdout.split()
    for image_id in dict.fromkeys(stale):
        if docker("image", "rm", image_id, check=False).returncode == 0:
            report.images.append(image_id)
    files = lab_files(directory)
    for p in [*files.values(), files["ssh_key"].with_suffix(".pub")]:
        if p.exists():
            p.unlink()
            report.files.append(str(p))
    if (directory / "logs").is_dir():
        shutil.rmtree(directory / "logs")
        report.files.append(str(directory / "logs"))
    if directory.exists() and not any(directory.iterdir()):
        directory.rmdir()
    return report


def _lab_images(directory: Path) -> list[str]:
    """Images the lab made: labelled ones, the node image named in lab.json, and shimshift/node:*."""
    refs = set(
        docker(
            "images", "--filter", f"label={LABEL}=1", "--format", "{{.Repository}}:{{.Tag}}"
        ).stdout.split()
    )
    refs |= set(docker("images", "shimshift/node", "--format", "{{.Repository}}:{{.Tag}}").stdout.split())
    info = load(directory)
    if info and info.node_image and docker("image", "inspect", info.node_image, check=False).returncode == 0:
        refs.add(info.node_image)
    return sorted(r for r in refs if not r.endswith(":<none>"))


def load(directory: Path = DEFAULT_DIRECTORY) -> LabInfo | None:
    """The lab recorded in <directory>/lab.json, or None when there is no complete lab there."""
    state = lab_files(directory)["state"]
    try:
        return LabInfo.from_json(json.loads(state.read_text()))
    except FileNotFoundError:
        return None
    except (ValueError, KeyError) as e:
        raise LabError(f"{state} is unreadable ({e}); run `shimshift lab down`") from e


@dataclass
class NodeStatus:
    name: str
    role: str
    ip: str
    container: str  # Docker's state: running, exited, missing
    ready: str  # "True", "False", "Unknown" or "" when the API gave nothing
    kubelet: str  # systemctl is-active kubelet
    cri_dockerd: str  # running | stopped | absent | ""


@dataclass
class LabStatus:
    directory: Path
    info: LabInfo | None
    nodes: list[NodeStatus]
    problems: list[str]

    @property
    def healthy(self) -> bool:
        return self.info is not None and not self.problems


def status(directory: Path = DEFAULT_DIRECTORY, *, expect: LabSpec | None = None, fresh: bool = False) -> LabStatus:
    """How the lab is: containers, node readiness, kubelet and cri-dockerd per node, and the
    problems that make it unfit for reuse (empty list = healthy and, with expect, the same spec).
    ``fresh``: also a problem when a node is no longer as `up` made it (migrated, or upgraded), which
    the tests' reuse of a lab must not accept."""
    info = load(directory)
    problems: list[str] = []
    if info is None:
        leftovers = _labelled("ps", "-a")
        problems.append(
            f"no complete lab recorded in {directory}"
            + (f" (leftover containers: {', '.join(leftovers)})" if leftovers else "")
        )
        return LabStatus(directory, None, [], problems)
    if expect is not None and expect != info.spec:
        problems.append(f"lab was built with {info.spec.to_json()}, wanted {expect.to_json()}")
    for p in (info.kubeconfig, info.ssh_config, info.known_hosts, info.ssh_key):
        if not p.exists():
            problems.append(f"missing file {p}")
    states = {}
    for line in docker(
        "ps", "-a", "--filter", f"label={LABEL}=1", "--format", "{{.Names}} {{.State}}"
    ).stdout.splitlines():
        name, _, state = line.partition(" ")
        states[name] = state
    ready: dict[str, str] = {}
    cp = info.control_plane
    if states.get(cp.name) == "running":
        proc = kubectl(cp.name, ["get", "nodes", "-o", "json"], check=False, timeout=30)
        try:
            for item in json.loads(proc.stdout)["items"]:
                name = item["metadata"]["name"]
                conds = {c["type"]: c["status"] for c in item["status"].get("conditions", [])}
                ready[name] = conds.get("Ready", "Unknown")
                kubelet_version = item["status"].get("nodeInfo", {}).get("kubeletVersion", "")
                if kubelet_version != info.spec.version:
                    problems.append(f"{name}: kubelet {kubelet_version or 'unknown'}, the lab is {info.spec.version}")
                # A lab left migrated (the README's main job ends so) is not the dockershim lab tests start from.
                socket = (item["metadata"].get("annotations") or {}).get(CRI_SOCKET_ANNOTATION)
                if fresh and socket != info.spec.release.cri_socket:
                    problems.append(f"{name}: cri-socket annotation {socket}, not {info.spec.release.cri_socket}")
        except (ValueError, KeyError):
            problems.append(f"API server on {cp.name} not answering: {proc.stderr.strip()[-200:]}")
        else:
            problems += _apiserver_version_problems(cp, info.spec.version)
            problems += _addon_problems(cp)
    nodes: list[NodeStatus] = []
    for n in info.nodes:
        state = states.get(n.name, "missing")
        kubelet = cri = ""
        if state == "running":
            kubelet = node_exec(n.name, ["systemctl", "is-active", "kubelet"], check=False).stdout.strip()
            cri = cri_dockerd_state(n.name).value
        else:
            problems.append(f"{n.name}: container is {state}")
        if ready.get(n.name) != "True":
            problems.append(f"{n.name}: node Ready={ready.get(n.name, 'unknown')}")
        nodes.append(NodeStatus(n.name, n.role, n.ip, state, ready.get(n.name, ""), kubelet, cri))
    return LabStatus(directory, info, nodes, problems)


def _addon_problems(cp: LabNode) -> list[str]:
    """What `up` installs beside the control plane and is missing (a lab made by an older shimshift had no
    CoreDNS, kube-proxy nor flannel, and must not be reused by what expects them)."""
    problems = []
    for namespace, what in SYSTEM_ROLLOUTS:
        proc = kubectl(cp.name, ["get", "-n", namespace, what, "-o", "name"], check=False, timeout=30)
        if proc.returncode != 0:
            problems.append(f"no {what} in namespace {namespace}: {proc.stderr.strip()[-200:]}")
    return problems


def _apiserver_version_problems(cp: LabNode, expected: str) -> list[str]:
    """An upgrade (`shimshift upgrade` on the lab) leaves a lab that is healthy but no longer the 1.23.17
    lab its users expect:
    one whose API server or kubelets run another version is not reused."""
    proc = kubectl(cp.name, ["get", "--raw", "/version"], check=False, timeout=30)
    try:
        version = str(json.loads(proc.stdout)["gitVersion"])
    except (ValueError, KeyError, TypeError):
        return [f"API server on {cp.name} did not say its version: {proc.stderr.strip()[-200:]}"]
    return [] if version == expected else [f"API server {version}, the lab is {expected}"]


def ensure(
    *,
    spec: LabSpec | None = None,
    directory: Path = DEFAULT_DIRECTORY,
    progress: Progress | None = None,
    lock: LabLock | None = None,
) -> tuple[LabInfo, bool]:
    """A healthy lab with this spec: the running one if it is fit, else a fresh one (down, then up,
    keeping the node image). Returns (info, reused).

    Takes the lab lock exclusively. With `lock` given, the caller owns it and it stays held on
    return (the test fixture then downgrades it to shared for the session); otherwise it is released.
    """
    spec = spec or LabSpec()
    say = progress or _noop
    own = lock is None
    held = lock if lock is not None else LabLock(directory, on_wait=progress)
    held.acquire(exclusive=True)
    try:
        st = status(directory, expect=spec, fresh=True)
        if st.healthy and st.info is not None:
            return st.info, True
        say("lab not reusable: " + "; ".join(st.problems))
        _down(directory=directory, remove_images=False, progress=progress)
        started = time.monotonic()
        info = _up(
            spec=spec,
            directory=directory,
            artifacts=None,
            cache_dir=Path("/var/cache/shimshift"),
            progress=progress,
        )
        say(f"lab up took {time.monotonic() - started:.0f}s")
        return info, False
    finally:
        if own:
            held.release()
