"""The lab itself, checked against the real cluster: the default 1.23.17 lab in CI, and any dockershim
release (1.21, 1.22) with SHIMSHIFT_LAB_VERSION (the versions, images and flags come from the lab's
release, shimshift/lab/releases.py).

Matrix: every node Ready (through the host-side kubeconfig); every kubelet on dockershim (its
/proc/<pid>/cmdline); the cri-socket annotation on every node; kubeadm-flags.env exactly as kubeadm
writes it for the Docker socket; the sample workloads (one per drain rule) running; cri-dockerd
answering CRI v1 (and v1alpha2 where that release serves it) on its socket, and stopped/absent/restored
on demand; pods reach pods on other nodes; ssh with strict host key checking works and a wrong
known_hosts is refused; the CLI prints the lab's paths; the node state guard sees a change. A real
kubeadm cluster: CoreDNS, kube-proxy, flannel and the control plane Running, every kubeadm image at the
exact reference the built kubeadm lists (so nothing was pulled and no ImagePull error ignored), etcd
reporting the release its tag names, and from a pod on every node `kubernetes.default` and the sample
Services resolve and answer.
"""

from __future__ import annotations

import subprocess
from typing import TYPE_CHECKING, Any

import pytest
from click.testing import CliRunner
from lightkube import Client, KubeConfig
from lightkube.resources.core_v1 import Node, Pod

from shimshift.cli.main import main
from shimshift.core.versions import cri_dockerd_facts, parse_cri_dockerd_version
from shimshift.lab import cluster, state
from shimshift.lab.criprobe import cri_version
from shimshift.lab.kube import kubectl
from shimshift.lab.model import CRI_DOCKERD_SOCKET, CRI_SOCKET_ANNOTATION, DEMO_NAMESPACE, CriDockerdMode
from shimshift.lab.status import status as lab_status
from tests.e2e.network import network_problems

if TYPE_CHECKING:
    from pathlib import Path

    from shimshift.lab.model import LabInfo

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def kube(lab: LabInfo) -> Client:
    return Client(config=KubeConfig.from_file(str(lab.kubeconfig)))


def _list(kube: Client, resource: Any, **kwargs: Any) -> list[Any]:
    # lightkube's models are Optional all the way down; the tests read them as plain objects.
    return list(kube.list(resource, **kwargs))


def _ready(node: Any) -> str:
    return next((c.status for c in node.status.conditions or [] if c.type == "Ready"), "Unknown")


def test_every_node_is_ready_and_reachable_from_the_host(lab: LabInfo, kube: Client) -> None:
    nodes = {n.metadata.name: n for n in _list(kube, Node)}
    assert sorted(nodes) == sorted(n.name for n in lab.nodes)
    assert {name: _ready(n) for name, n in nodes.items()} == {n.name: "True" for n in lab.nodes}
    for n in lab.nodes:
        addresses = {a.address for a in nodes[n.name].status.addresses if a.type == "InternalIP"}
        assert addresses == {n.ip}
        assert nodes[n.name].status.nodeInfo.kubeletVersion == lab.spec.version
        assert nodes[n.name].status.nodeInfo.containerRuntimeVersion.startswith("docker://")


def test_kubeadm_addons_and_flannel_run_with_the_images_kubeadm_asked_for(lab: LabInfo, kube: Client) -> None:
    cp = lab.control_plane.name
    listed = lab.exec(cp, ["kubeadm", "config", "images", "list", "--kubernetes-version", lab.spec.version], check=True)
    wanted = set(listed.stdout.split())
    system = _list(kube, Pod, namespace="kube-system") + _list(kube, Pod, namespace="kube-flannel")
    assert {p.metadata.name: p.status.phase for p in system} == {p.metadata.name: "Running" for p in system}
    running = {c.image for p in system for c in p.spec.containers}
    assert wanted - {lab.spec.release.pause_image} <= running, sorted(wanted - running)
    for prefix in ("coredns-", "kube-proxy-", "kube-flannel-ds-", "etcd-", "kube-apiserver-"):
        assert any(p.metadata.name.startswith(prefix) for p in system), prefix
    # Every node holds each image under exactly the reference kubeadm lists: nothing had to be pulled.
    for n in lab.nodes:
        present = set(lab.exec(n.name, ["docker", "images", "--format", "{{.Repository}}:{{.Tag}}"]).stdout.split())
        assert wanted <= present, (n.name, sorted(wanted - present))
    etcd = next(p.metadata.name for p in system if p.metadata.name.startswith("etcd-"))
    version = lab.exec(
        cp, ["kubectl", "--kubeconfig=/etc/kubernetes/admin.conf", "exec", "-n", "kube-system", etcd, "--",
             "etcd", "--version"],
    )  # fmt: skip
    etcd_version = lab.spec.release.addons.etcd.removeprefix("v")
    assert f"etcd Version: {etcd_version}" in version.stdout, version.stdout + version.stderr


def test_services_resolve_and_answer_from_every_node(lab: LabInfo) -> None:
    assert network_problems(lab) == []


def test_every_kubelet_runs_dockershim(lab: LabInfo) -> None:
    for n in lab.nodes:
        argv = state.kubelet_cmdline(lab, n.name)
        assert argv, f"{n.name}: no kubelet running"
        assert argv[0].endswith("kubelet")
        assert "--container-runtime=remote" not in argv, n.name
        assert not any(a.startswith("--container-runtime-endpoint") for a in argv), n.name
        assert "--network-plugin=cni" in argv, n.name


def test_every_node_is_annotated_with_the_dockershim_socket(lab: LabInfo, kube: Client) -> None:
    for n in lab.nodes:
        node: Any = kube.get(Node, n.name)
        annotations = node.metadata.annotations or {}
        assert annotations.get(CRI_SOCKET_ANNOTATION) == "/var/run/dockershim.sock", n.name


def test_kubeadm_flags_env_is_as_kubeadm_wrote_it_for_dockershim(lab: LabInfo) -> None:
    # kubeadm 1.21 to 1.23, Docker socket: --network-plugin=cni and the pause image, plus kubeletExtraArgs
    # (node-ip), sorted by flag name, one line (kubeadm `cmd/kubeadm/app/phases/kubelet/flags.go`).
    pause = lab.spec.release.pause_image
    for n in lab.nodes:
        text = lab.exec(n.name, ["cat", state.KUBEADM_FLAGS], check=True).stdout
        assert text == (
            f'KUBELET_KUBEADM_ARGS="--network-plugin=cni --node-ip={n.ip} --pod-infra-container-image={pause}"\n'
        ), n.name


def _pods(kube: Client) -> list[Any]:
    return _list(kube, Pod, namespace=DEMO_NAMESPACE)


def _owner_kind(pod: Any) -> str:
    refs = pod.metadata.ownerReferences or []
    return refs[0].kind if refs else ""


def test_sample_workloads_run(lab: LabInfo, kube: Client) -> None:
    pods = _pods(kube)
    running = [p for p in pods if p.status.phase == "Running"]

    def by_prefix(prefix: str) -> list[Any]:
        return [p for p in running if p.metadata.name.startswith(prefix)]

    assert len(by_prefix("web-")) == 3
    assert all(_owner_kind(p) == "ReplicaSet" for p in by_prefix("web-"))
    # On dockershim the kubelet admits the restricted pods (Docker answers its API version, docs/hardened-pods.md).
    restricted = by_prefix("restricted-")
    assert len(restricted) == 2 and all(_owner_kind(p) == "ReplicaSet" for p in restricted)
    agents = by_prefix("node-agent-")
    assert sorted(p.spec.nodeName for p in agents) == sorted(n.name for n in lab.nodes)
    assert all(_owner_kind(p) == "DaemonSet" for p in agents)
    assert sorted(p.metadata.name for p in by_prefix("db-")) == ["db-0", "db-1"]
    bare = [p for p in running if p.metadata.name == "bare"]
    assert len(bare) == 1 and _owner_kind(bare[0]) == ""
    scratch = by_prefix("scratch-")
    assert len(scratch) == 1
    assert any(v.emptyDir is not None for v in scratch[0].spec.volumes)
    once = [p for p in pods if p.metadata.name.startswith("once-")]
    assert once and all(p.status.phase == "Succeeded" for p in once)
    first_worker = lab.workers[0].name
    static = [p for p in running if p.metadata.name == f"static-agent-{first_worker}"]
    assert len(static) == 1
    assert _owner_kind(static[0]) == "Node"  # a mirror pod
    # Control plane keeps kubeadm's NoSchedule taint: only the DaemonSet runs there.
    on_cp = {p.metadata.name for p in running if p.spec.nodeName == lab.control_plane.name}
    assert all(name.startswith("node-agent-") for name in on_cp)


def test_pods_reach_pods_on_other_nodes(lab: LabInfo, kube: Client) -> None:
    agents = {p.spec.nodeName: p.status.podIP for p in _pods(kube) if p.metadata.name.startswith("node-agent-")}
    source, target = (
        lab.workers[0].name,
        lab.workers[-1].name if len(lab.workers) > 1 else lab.control_plane.name,
    )
    pod = next(
        p.metadata.name for p in _pods(kube) if p.metadata.name.startswith("node-agent-") and p.spec.nodeName == source
    )
    proc = lab.exec(
        lab.control_plane.name,
        ["kubectl", "--kubeconfig=/etc/kubernetes/admin.conf", "exec", "-n", DEMO_NAMESPACE, pod, "--",
         "ping", "-c", "1", "-W", "5", agents[target]],
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_cri_dockerd_answers_on_its_socket(lab: LabInfo) -> None:
    for n in lab.nodes:
        assert lab.exec(n.name, ["test", "-S", CRI_DOCKERD_SOCKET]).returncode == 0, n.name
        # CRI v1 always (every kubelet from 1.23 speaks it); v1alpha2 exactly when core's table says this
        # cri-dockerd serves it (v0.3.x before v0.3.22 and v0.4.0-v0.4.1 do, v0.4.2+ do not) - the table
        # checked against the real binary.
        facts = cri_dockerd_facts(parse_cri_dockerd_version(lab.spec.cri_dockerd_version))
        assert facts is not None, lab.spec.cri_dockerd_version
        version = cri_version(n.name, api="v1")
        assert version is not None, f"{n.name}: nothing answers CRI v1 on {CRI_DOCKERD_SOCKET}"
        assert (version["runtime_name"], version["runtime_api_version"]) == ("docker", "v1")
        old = cri_version(n.name, api="v1alpha2")
        if facts.cri_v1alpha2:
            assert old is not None, f"{n.name}: nothing answers CRI v1alpha2 on {CRI_DOCKERD_SOCKET}"
            assert (old["runtime_name"], old["runtime_api_version"]) == ("docker", "v1alpha2")
        else:
            assert old is None, f"{n.name}: cri-dockerd {lab.spec.cri_dockerd_version} answered CRI v1alpha2"
        assert lab.exec(n.name, ["systemctl", "is-active", "cri-docker.service"]).stdout.strip() == "active"
        assert lab.exec(n.name, ["systemctl", "is-active", "cri-docker.socket"]).stdout.strip() == "active"


def _ssh(ssh_config: Path, node: str, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ssh", "-F", str(ssh_config), node, *argv], capture_output=True, text=True, timeout=30, check=False
    )


def test_ssh_with_strict_host_key_checking(lab: LabInfo) -> None:
    for n in lab.nodes:
        proc = _ssh(lab.ssh_config, n.name, "systemctl", "is-active", "kubelet")
        assert (proc.returncode, proc.stdout.strip()) == (0, "active"), proc.stderr


def test_ssh_refuses_a_wrong_known_hosts(lab: LabInfo, tmp_path: Path) -> None:
    # Swap the keys: every node is listed with the next node's real host keys.
    lines = lab.known_hosts.read_text().splitlines()
    names = [n.name for n in lab.nodes]
    keys = {name: [ln.split(" ", 1)[1] for ln in lines if ln.split(",", 1)[0] == name] for name in names}
    wrong = tmp_path / "known_hosts"
    wrong.write_text(
        "".join(
            f"{name},{lab.node(name).ip} {key}\n"
            for name, other in zip(names, names[1:] + names[:1], strict=True)
            for key in keys[other]
        )
    )
    config = tmp_path / "ssh_config"
    config.write_text(lab.ssh_config.read_text().replace(str(lab.known_hosts), str(wrong)))
    proc = _ssh(config, lab.workers[0].name, "true")
    assert proc.returncode == 255
    assert "Host key verification failed" in proc.stderr or "REMOTE HOST IDENTIFICATION HAS CHANGED" in proc.stderr


def test_cli_prints_the_lab_paths(lab: LabInfo) -> None:
    runner = CliRunner()
    args = ["--dir", str(lab.directory)]
    assert runner.invoke(main, ["lab", "kubeconfig", *args]).output.strip() == str(lab.kubeconfig)
    assert runner.invoke(main, ["lab", "ssh-config", *args]).output.strip() == str(lab.ssh_config)
    status = runner.invoke(main, ["lab", "status", *args])
    assert status.exit_code == 0, status.output
    assert "healthy" in status.output


def test_a_cordoned_node_or_a_held_lease_makes_the_lab_unfit_for_reuse(lab: LabInfo) -> None:
    """What a test that failed half-way leaves behind: the next module's `lab` fixture must rebuild."""
    node, cp = lab.workers[0].name, lab.control_plane.name
    held = (
        '{"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "shimshift", '
        '"namespace": "kube-system"}, "spec": {"holderIdentity": "a-killed-run"}}'
    )
    assert lab_status(lab.directory, expect=lab.spec, fresh=True).problems == []
    kubectl(cp, ["cordon", node])
    kubectl(cp, ["apply", "-f", "-"], input=held)  # a run's Lease may be there already, released
    try:
        problems = lab_status(lab.directory, expect=lab.spec, fresh=True).problems
    finally:
        kubectl(cp, ["uncordon", node])
        release = '{"spec": {"holderIdentity": null}}'
        kubectl(cp, ["-n", "kube-system", "patch", "lease", "shimshift", "--type=merge", "-p", release])
    assert f"{node}: cordoned" in problems, problems
    assert "the shimshift Lease kube-system/shimshift is held by a-killed-run" in problems, problems
    assert lab_status(lab.directory, expect=lab.spec, fresh=True).problems == []


def test_node_state_guard_sees_a_change_and_its_undoing(lab: LabInfo) -> None:
    guard = state.NodeStateGuard(lab, ready_timeout=0)
    node = lab.workers[-1].name
    guard.capture(node)
    path = "/etc/systemd/system/kubelet.service.d/99-shimshift-test.conf"
    lab.exec(node, ["sh", "-c", 'mkdir -p "$(dirname "$1")" && echo "# test" > "$1"', "sh", path], check=True)
    try:
        with pytest.raises(AssertionError, match=r"99-shimshift-test\.conf"):
            guard.assert_as_found(node)
    finally:
        lab.exec(node, ["rm", "-f", path], check=True)
    guard.assert_as_found(node)


def test_cri_dockerd_can_be_stopped_removed_and_restored_on_one_node(
    lab: LabInfo, node_state: state.NodeStateGuard
) -> None:
    # What `--cri-dockerd stopped|absent` does at `lab up`, on one node, then back to running: the
    # preflight tests of other issues use the same function.
    node = lab.workers[-1].name
    node_state.capture(node)
    cluster.set_cri_dockerd(node, CriDockerdMode.STOPPED)
    assert cluster.cri_dockerd_state(node) is CriDockerdMode.STOPPED
    # systemd leaves the socket file (RemoveOnStop=no): a file that exists but does not answer.
    assert cri_version(node) is None
    cluster.set_cri_dockerd(node, CriDockerdMode.ABSENT)
    assert cluster.cri_dockerd_state(node) is CriDockerdMode.ABSENT
    assert lab.exec(node, ["sh", "-c", "command -v cri-dockerd"]).returncode != 0
    assert lab.exec(node, ["systemctl", "cat", "cri-docker.service"]).returncode != 0
    assert cri_version(node) is None
    cluster.set_cri_dockerd(node, CriDockerdMode.RUNNING)
    assert cluster.cri_dockerd_state(node) is CriDockerdMode.RUNNING
    assert cri_version(node) is not None
    # node_state checks at teardown that the node is exactly as found.
