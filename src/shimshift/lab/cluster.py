"""Bring the lab up (`down`, `status`, the workloads and cri-dockerd's state live beside it, re-exported here).

`up` turns the artifacts that `shimshift.lab.images.ensure_artifacts` (the default v1.23.17 lab) or
`ensure_release_artifacts` (any other release) builds (node image, inner image tarball) into a running
kubeadm cluster of ``LabSpec.version`` (its rules: lab/releases.py):

1. a Docker network of the lab's own and one container per node (systemd as PID 1, Docker inside);
2. the inner images loaded into every node's Docker (nothing is ever pulled: each is there under the
   exact reference kubeadm asks for, so its ImagePull preflight check passes);
3. `kubeadm init` on the control plane with kubeadm's default addons (CoreDNS, kube-proxy), `kubeadm
   join` on the workers, both on the release's CRI socket (dockershim below 1.24, cri-dockerd from
   1.24, started with the release's pause image first), no preflight error ignored (but
   SystemVerification from 1.35 on this cgroup v1 host, releases.Release.cgroup_v1_preflight_error);
4. flannel, the CNI daemon (render.flannel), which gives every node its pod network and routes;
5. below 1.24, cri-dockerd left running, stopped or absent; ssh access; sample workloads; the files under the lab
   directory (kubeconfig, ssh key, ssh_config, known_hosts, lab.json).

Everything created in the host's Docker carries the label shimshift.lab=1, so `down` finds it even
when `up` stopped half-way. Library code: progress goes through a callback, nothing is printed.
"""

from __future__ import annotations

import os
import secrets
import string
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from pathlib import Path
from typing import Protocol, TypeVar

from shimshift.lab import render
from shimshift.lab.cri_dockerd import CRI_DOCKERD_DROPIN, cri_dockerd_state, set_cri_dockerd
from shimshift.lab.docker import LabError, docker, labelled, node_exec, wait_until, write_node_file
from shimshift.lab.kube import ADMIN_CONF, SYSTEM_ROLLOUTS, kubectl, nodes_not_ready, rollout, wait_pod_cidrs
from shimshift.lab.lock import LabLock
from shimshift.lab.model import (
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
from shimshift.lab.status import LabStatus, NodeStatus, load, status
from shimshift.lab.teardown import DownReport, down, down_locked
from shimshift.lab.workloads import set_coredns_no_new_privs, wait_workloads

# What callers reached through this module before it was split by responsibility (up here; down, status,
# workloads, cri-dockerd, kube beside it) stays importable from here.
__all__ = [
    "DownReport",
    "LabStatus",
    "NodeStatus",
    "cri_dockerd_state",
    "down",
    "ensure",
    "kubectl",
    "load",
    "load_images",
    "set_coredns_no_new_privs",
    "set_cri_dockerd",
    "status",
    "up",
]

Progress = Callable[[str], None]
T = TypeVar("T")
R = TypeVar("R")

KUBEADM_CONFIG = "/etc/shimshift-lab/kubeadm.yaml"
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
    existing = labelled("ps", "-a")
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
    rollout(cp, *SYSTEM_ROLLOUTS[0])
    say(f"network: flannel ({FLANNEL_IMAGE}) on every node")
    wait_pod_cidrs(cp, nodes)
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
    wait_until("every node Ready", lambda: nodes_not_ready(cp, nodes), timeout=180, interval=2)
    say("addons: waiting for flannel and CoreDNS")
    for namespace, what in SYSTEM_ROLLOUTS[1:]:
        rollout(cp, namespace, what)

    if not spec.hardened_demo:
        say("addons: CoreDNS without allowPrivilegeEscalation: false (kubelets 1.23 on cri-dockerd refuse it)")
        set_coredns_no_new_privs(cp.name, hardened=False)

    say(f"workloads: applying samples in namespace {DEMO_NAMESPACE}")
    first_worker = workers[0].name
    manifests = render.workloads(first_worker=first_worker, hardened_demo=spec.hardened_demo)
    kubectl(cp.name, ["apply", "-f", "-"], input=manifests)
    write_node_file(first_worker, render.STATIC_POD_FILE, render.static_pod())
    wait_workloads(cp, first_worker=first_worker, hardened_demo=spec.hardened_demo)

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


def _ensure_network() -> None:
    if NETWORK_NAME in labelled("network ls"):
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
        down_locked(directory=directory, remove_images=False, progress=progress)
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
