"""CriClient against a REAL cri-dockerd on this machine, talking to this machine's dockerd.

cri-dockerd is the binary the `lab_binaries` fixture ensures (src/shimshift/lab/assets/build) in
/var/cache/shimshift/bin/cri-dockerd-v<version>/ (built first on a cold cache; override with
SHIMSHIFT_CRI_DOCKERD). It listens on a socket in a temp directory, with its own root directory,
the cni network plugin and an EMPTY CNI config directory (so NetworkReady is false, as on a node whose
CNI is missing) and its streaming server on loopback.

Matrix:
- Version: runtime_name "docker", API v1, runtime_version = this dockerd's version.
- Status: RuntimeReady true; NetworkReady false with cri-dockerd's reason, through the CNI plugin.
- ListPodSandbox / ListContainers: a sandbox and a container created the way dockershim names and
  labels them (docker run, k8s_POD_<pod>_<ns>_<uid>_<attempt>) are listed with their metadata; the
  ready-only filter and the sandbox filter work.
- the same calls through an SSH forward of the socket (connect_cri over SSHNodeAccess).
- a missing socket and a socket nobody answers on → CriUnavailable naming node, socket, systemctl.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import tarfile
import tempfile
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from shimshift.adapters.cri import CriClient, CriUnavailable, connect_cri
from shimshift.adapters.local import LocalNodeAccess
from shimshift.adapters.ssh import SSHNodeAccess

from .conftest import HOST_ALIAS, Sshd

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

    from shimshift.lab.images import LabBinaries

IMAGE = "shimshift-test/busybox:1"


def _find_cri_dockerd(built: LabBinaries) -> Path:
    explicit = os.environ.get("SHIMSHIFT_CRI_DOCKERD")
    return Path(explicit) if explicit else built.cri_dockerd


def _docker(*args: str) -> str:
    return subprocess.run(["docker", *args], check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture(scope="module")
def busybox_image() -> str:
    """A one-file image (Debian's busybox-static), imported offline."""
    if (
        subprocess.run(["docker", "image", "inspect", IMAGE], capture_output=True, check=False).returncode
        == 0
    ):
        return IMAGE
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / "rootfs.tar"
        with tarfile.open(archive, "w") as tar:
            tar.add("/bin/busybox", arcname="bin/busybox")
        subprocess.run(["docker", "import", str(archive), IMAGE], check=True, capture_output=True)
    return IMAGE


@pytest.fixture(scope="module")
def cri_dockerd(lab_binaries: LabBinaries) -> Iterator[Path]:
    """cri-dockerd on a temp socket; yields the socket path."""
    binary = _find_cri_dockerd(lab_binaries)
    directory = Path(tempfile.mkdtemp(prefix="shimshift-cri-"))
    sock = directory / "cri.sock"
    (directory / "net.d").mkdir()
    log = (directory / "cri-dockerd.log").open("wb")
    process = subprocess.Popen(
        [
            str(binary),
            "--container-runtime-endpoint",
            f"unix://{sock}",
            "--cri-dockerd-root-directory",
            str(directory / "root"),
            "--network-plugin",
            "cni",
            "--cni-bin-dir",
            "/usr/lib/cni",
            "--cni-conf-dir",
            str(directory / "net.d"),
            "--cni-cache-dir",
            str(directory / "cni-cache"),
            "--streaming-bind-addr",
            "127.0.0.1:0",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
    while not sock.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(
                f"cri-dockerd did not create {sock}: {(directory / 'cri-dockerd.log').read_text()[-3000:]}"
            )
        time.sleep(0.1)
    try:
        yield sock
    finally:
        process.terminate()
        process.wait(15)
        log.close()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="module")
def dockershim_pod(busybox_image: str) -> Iterator[dict[str, str]]:
    """A sandbox and a container named and labelled as dockershim/cri-dockerd name them."""
    uid = str(uuid.uuid4())
    pod, namespace = "web-0", "shimshift-test"
    sandbox = _docker(
        "run", "-d", "--name", f"k8s_POD_{pod}_{namespace}_{uid}_0",
        "--label", "io.kubernetes.docker.type=podsandbox",
        "--label", f"io.kubernetes.pod.name={pod}",
        "--label", f"io.kubernetes.pod.namespace={namespace}",
        "--label", f"io.kubernetes.pod.uid={uid}",
        "--label", "app=web",
        busybox_image, "/bin/busybox", "sleep", "600",
    )  # fmt: skip
    container = _docker(
        "run", "-d", "--name", f"k8s_app_{pod}_{namespace}_{uid}_0",
        "--label", "io.kubernetes.docker.type=container",
        "--label", f"io.kubernetes.sandbox.id={sandbox}",
        "--label", "io.kubernetes.container.name=app",
        "--label", f"io.kubernetes.pod.name={pod}",
        "--label", f"io.kubernetes.pod.namespace={namespace}",
        "--label", f"io.kubernetes.pod.uid={uid}",
        busybox_image, "/bin/busybox", "sleep", "600",
    )  # fmt: skip
    stopped = _docker(
        "run", "-d", "--name", f"k8s_POD_gone_{namespace}_{uid}-2_0",
        "--label", "io.kubernetes.docker.type=podsandbox",
        "--label", "io.kubernetes.pod.name=gone",
        "--label", f"io.kubernetes.pod.namespace={namespace}",
        "--label", f"io.kubernetes.pod.uid={uid}-2",
        busybox_image, "/bin/busybox", "true",
    )  # fmt: skip
    subprocess.run(["docker", "wait", stopped], check=True, capture_output=True)
    try:
        yield {
            "sandbox": sandbox,
            "container": container,
            "stopped": stopped,
            "uid": uid,
            "pod": pod,
            "ns": namespace,
        }
    finally:
        subprocess.run(["docker", "rm", "-f", sandbox, container, stopped], check=False, capture_output=True)


@pytest.fixture
async def cri(cri_dockerd: Path) -> AsyncIterator[CriClient]:
    async with CriClient(str(cri_dockerd), node="this-host") as client:
        yield client


async def test_version(cri: CriClient) -> None:
    version = await cri.version()
    assert version.runtime_name == "docker"
    assert version.runtime_api_version == "v1"
    assert version.runtime_version == _docker("version", "--format", "{{.Server.Version}}")


async def test_status_reports_runtime_ready_and_network_not_ready(cri: CriClient) -> None:
    status = await cri.status()
    assert status.runtime_ready
    assert not status.network_ready
    network = status.condition("NetworkReady")
    assert network is not None
    assert network.reason == "NetworkPluginNotReady"
    assert "network plugin is not ready" in network.message


async def test_list_pod_sandboxes(cri: CriClient, dockershim_pod: dict[str, str]) -> None:
    ready = await cri.list_pod_sandboxes()
    ours = [s for s in ready if s.namespace == dockershim_pod["ns"]]
    assert [(s.id, s.name, s.uid, s.attempt, s.state) for s in ours] == [
        (dockershim_pod["sandbox"], dockershim_pod["pod"], dockershim_pod["uid"], 0, "SANDBOX_READY")
    ]
    assert ours[0].labels["app"] == "web"
    every = await cri.list_pod_sandboxes(ready_only=False)
    states = {s.name: s.state for s in every if s.namespace == dockershim_pod["ns"]}
    assert states == {"web-0": "SANDBOX_READY", "gone": "SANDBOX_NOTREADY"}


async def test_list_containers(cri: CriClient, dockershim_pod: dict[str, str]) -> None:
    containers = await cri.list_containers(pod_sandbox_id=dockershim_pod["sandbox"])
    assert [(c.id, c.name, c.pod_sandbox_id, c.state, c.image) for c in containers] == [
        (dockershim_pod["container"], "app", dockershim_pod["sandbox"], "CONTAINER_RUNNING", IMAGE)
    ]
    running = await cri.list_containers(running_only=True)
    assert dockershim_pod["container"] in {c.id for c in running}


async def test_through_an_ssh_forward(sshd: Sshd, cri_dockerd: Path, dockershim_pod: dict[str, str]) -> None:
    access = await SSHNodeAccess.connect(HOST_ALIAS, ssh_config=sshd.ssh_config)
    try:
        async with connect_cri(access, str(cri_dockerd)) as cri:
            assert (await cri.version()).runtime_name == "docker"
            assert dockershim_pod["sandbox"] in {s.id for s in await cri.list_pod_sandboxes()}
    finally:
        await access.close()


async def test_missing_socket_over_ssh_is_unavailable(sshd: Sshd, tmp_path: Path) -> None:
    access = await SSHNodeAccess.connect(HOST_ALIAS, ssh_config=sshd.ssh_config)
    missing = str(tmp_path / "cri-dockerd.sock")
    try:
        async with connect_cri(access, missing, timeout=5) as cri:
            with pytest.raises(CriUnavailable) as unavailable:
                await cri.version()
    finally:
        await access.close()
    text = str(unavailable.value)
    assert HOST_ALIAS in text
    assert missing in text
    assert "systemctl status cri-docker.socket" in text


async def test_missing_local_socket_is_unavailable(tmp_path: Path) -> None:
    missing = str(tmp_path / "cri-dockerd.sock")
    async with connect_cri(LocalNodeAccess("this-host"), missing, timeout=5) as cri:
        with pytest.raises(CriUnavailable, match=r"this-host.*is not answering"):
            await cri.status()


async def test_silent_socket_times_out(tmp_path: Path) -> None:
    """A socket that accepts but never speaks HTTP/2 (a wedged runtime) hits the deadline."""
    path = tmp_path / "silent.sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.listen(8)
    try:
        async with CriClient(str(path), node="this-host", timeout=1) as cri:
            with pytest.raises(CriUnavailable, match=r"did not answer in time|is not answering"):
                await asyncio.wait_for(cri.version(), 30)
    finally:
        server.close()
