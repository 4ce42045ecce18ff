"""Make a running lab ready for `kubeadm upgrade` to a release (v1.24.17 by default) with nothing pulled.

`prepare_upgrade` builds what the upgrade needs if the cache lacks it (``ensure_upgrade_artifacts``),
then on every node of the lab:

1. crictl at ``/usr/bin/crictl``: kubeadm 1.24 talks to every runtime through it and refuses to run
   without it on the PATH (build-crictl.sh has the source references). No ``/etc/crictl.yaml`` is
   written: kubeadm passes the node's CRI endpoint to each crictl call itself (``crictl -r <socket>``,
   cmd/kubeadm/app/util/runtime/runtime.go), taken from the node's ``cri-socket`` annotation; a
   config file would be a second copy of that endpoint which the migration and its rollback do not
   rewrite, and it would go stale exactly as the annotation does in kubeadm issues #2597/#2870.
2. the v1.24.17 images (kube-apiserver, kube-controller-manager, kube-scheduler, kube-proxy, etcd and
   CoreDNS under the tags kubeadm 1.24.17 names, pause 3.7) ``docker load``-ed into the node's own
   Docker, unless every one of them is already there with the same image ID. With every image kubeadm
   1.24.17 lists present, and CoreDNS and kube-proxy running as kubeadm 1.23.17 installed them, its
   upgrade needs no preflight error ignored.

It returns the folder that holds kubeadm, kubelet and kubectl v1.24.17 (``shimshift upgrade --binaries``).

Not part of ``lab up``: a cold build of the v1.24.17 control plane takes about as long as the lab's own
(about 20 minutes on 2 cores), and only the upgrade needs it; and a prepared lab is still the same
1.23.17 dockershim lab (the extra images and crictl change nothing it runs), so ``lab up``'s reuse
check needs no new state. Warm, this is a few seconds per node, so a test fixture simply calls it.

Holds the lab lock *shared*: it adds files and images and removes nothing, so it can run beside a test
session (which holds the lock shared too) but never while ``lab up``/``down`` rebuild the lab.
"""

from __future__ import annotations

import hashlib
import json
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from shimshift.lab import cluster
from shimshift.lab.docker import LabError, copy_to_node, docker, node_exec
from shimshift.lab.lock import LabLock
from shimshift.lab.model import DEFAULT_DIRECTORY, LABEL

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from shimshift.lab.images import UpgradeArtifacts
    from shimshift.lab.model import LabInfo, LabNode

CRICTL_PATH = "/usr/bin/crictl"



@dataclass(frozen=True)
class NodePreparation:
    """What one node needed: False means it was already there (nothing done)."""

    name: str
    crictl_installed: bool
    images_loaded: bool
    seconds: float


@dataclass(frozen=True)
class UpgradePreparation:
    artifacts: UpgradeArtifacts
    nodes: tuple[NodePreparation, ...]

    @property
    def binaries_dir(self) -> Path:
        """kubeadm, kubelet and kubectl at the upgrade's version (and the control plane's binaries)."""
        return self.artifacts.bin_dir


def prepare_upgrade(
    *,
    version: str = "v1.24.17",
    directory: Path = DEFAULT_DIRECTORY,
    cache_dir: Path | None = None,
    artifacts: UpgradeArtifacts | None = None,
    progress: Callable[[str], None] | None = None,
    lock_timeout: float = 1800,
) -> UpgradePreparation:
    """Give every node of the lab in ``directory`` crictl and the images of ``version``'s kubeadm; idempotent.

    ``artifacts`` defaults to :func:`shimshift.lab.images.ensure_upgrade_artifacts` (which builds on a
    cold cache, before the lab lock is taken: a long build must not keep `lab up` waiting).
    Raises LabError (no lab, a node container not running, a node command failing) or Refusal (a build).
    """
    say = progress or _silent
    if cluster.load(directory) is None:
        raise LabError(f"no lab in {directory}; run `shimshift lab up` first")
    if artifacts is None:
        from shimshift.lab.images import DEFAULT_CACHE_DIR, ensure_upgrade_artifacts

        artifacts = ensure_upgrade_artifacts(
            version=version, cache_dir=cache_dir or DEFAULT_CACHE_DIR, progress=progress
        )
    wanted = saved_image_ids(artifacts.images_tar)
    missing_refs = sorted(set(artifacts.images) - set(wanted))
    if missing_refs:
        raise LabError(
            f"{artifacts.images_tar} lacks {', '.join(missing_refs)} named in its .images list; "
            "delete the tarball and run again to rebuild it"
        )
    with artifacts.crictl.open("rb") as stream:
        crictl_digest = hashlib.file_digest(stream, "sha256").hexdigest()

    lock = LabLock(directory, timeout=lock_timeout, on_wait=progress)
    lock.acquire(exclusive=False)
    try:
        info = cluster.load(directory)  # again, under the lock: a `lab up --replace` may have run meanwhile
        if info is None:
            raise LabError(f"no lab in {directory}; run `shimshift lab up` first")
        _check_running(info)

        def one(node: LabNode) -> NodePreparation:
            started = time.monotonic()
            installed = _ensure_crictl(node, artifacts.crictl, crictl_digest)
            loaded = _ensure_images(node, artifacts.images_tar, wanted)
            done = NodePreparation(node.name, installed, loaded, time.monotonic() - started)
            say(
                f"{node.name}: crictl {'installed' if installed else 'already there'}, "
                f"images {'loaded' if loaded else 'already there'} ({done.seconds:.0f}s)"
            )
            return done

        nodes = tuple(cluster._parallel(one, info.nodes))
    finally:
        lock.release()
    return UpgradePreparation(artifacts=artifacts, nodes=nodes)


def load_release_images(
    version: str,
    *,
    directory: Path = DEFAULT_DIRECTORY,
    cache_dir: Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> UpgradePreparation:
    """What a journey through the releases calls before each minor: build ``version``'s binaries, crictl and
    the images its kubeadm lists (``images.ensure_upgrade_artifacts``), load them into every node of the
    running lab, and say where kubeadm, kubelet and kubectl of ``version`` are (``binaries_dir``)."""
    return prepare_upgrade(version=version, directory=directory, cache_dir=cache_dir, progress=progress)


# --------------------------------------------------------------------------------------------------
# pure helpers


def saved_image_ids(tar: Path) -> dict[str, str]:
    """Reference -> image ID (``sha256:...``) of every tagged image in a ``docker save`` archive.

    Read from the archive's ``manifest.json``: ``Config`` is ``<id hex>.json`` in Docker's own layout
    (20.10, this machine) and ``blobs/sha256/<id hex>`` in the OCI layout of Docker 25+; the image ID
    is that digest either way. Raises LabError when the archive has no readable manifest.
    """
    try:
        with tarfile.open(tar) as archive:
            member = archive.extractfile("manifest.json")
            if member is None:
                raise KeyError("manifest.json")
            manifest = json.loads(member.read())
    except (OSError, KeyError, ValueError, tarfile.TarError) as error:
        raise LabError(f"{tar} is not a readable `docker save` archive ({error}); delete it and run again") from error
    found: dict[str, str] = {}
    for entry in manifest:
        digest = PurePosixPath(entry["Config"]).name.removesuffix(".json")
        for ref in entry.get("RepoTags") or ():
            found[ref] = f"sha256:{digest}"
    return found


def parse_image_list(stdout: str) -> dict[str, str]:
    """``docker images --no-trunc --format '{{.Repository}}:{{.Tag}} {{.ID}}'`` -> reference -> ID."""
    found = {}
    for line in stdout.splitlines():
        ref, _, image_id = line.strip().partition(" ")
        if ref and image_id and not ref.endswith(":<none>"):
            found[ref] = image_id
    return found


def images_to_load(wanted: Mapping[str, str], present: Mapping[str, str]) -> list[str]:
    """The references of ``wanted`` the node lacks or has as another image (rebuilt since it was loaded)."""
    return sorted(ref for ref, image_id in wanted.items() if present.get(ref) != image_id)


# --------------------------------------------------------------------------------------------------
# node side


def _check_running(info: LabInfo) -> None:
    states = {}
    listing = docker("ps", "-a", "--filter", f"label={LABEL}=1", "--format", "{{.Names}} {{.State}}").stdout
    for line in listing.splitlines():
        name, _, state = line.partition(" ")
        states[name] = state
    down = [f"{n.name} is {states.get(n.name, 'missing')}" for n in info.nodes if states.get(n.name) != "running"]
    if down:
        raise LabError(f"lab node container {', '.join(down)}; run `shimshift lab up --replace`")


def _ensure_crictl(node: LabNode, crictl: Path, digest: str) -> bool:
    """Put ``crictl`` at CRICTL_PATH unless the same file is there; True when it was copied."""
    there = node_exec(node.name, ["sha256sum", CRICTL_PATH], check=False).stdout.split()
    if there[:1] == [digest]:
        return False
    copy_to_node(node.name, CRICTL_PATH, crictl, mode="0755")
    version = node_exec(node.name, [CRICTL_PATH, "--version"], check=False)
    if version.returncode != 0:
        raise LabError(f"{node.name}: {CRICTL_PATH} --version failed after the copy: {version.stderr.strip()[-200:]}")
    return True


def _ensure_images(node: LabNode, tar: Path, wanted: Mapping[str, str]) -> bool:
    """``docker load`` the tarball into the node unless every image is there with its ID; True when loaded.

    A load re-tags references that already exist (etcd has the same tag in the 1.23.17 and 1.24.17 lists):
    a running container keeps the image it started from, so nothing the lab runs changes.
    """
    if not images_to_load(wanted, _node_images(node)):
        return False
    cluster.load_images(node, tar)
    still = images_to_load(wanted, _node_images(node))
    if still:
        raise LabError(f"{node.name}: `docker load` of {tar.name} left out {', '.join(still)}")
    return True


def _node_images(node: LabNode) -> dict[str, str]:
    listing = node_exec(
        node.name, ["docker", "images", "--no-trunc", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"]
    )
    return parse_image_list(listing.stdout)



def _silent(_: str) -> None:
    return None
