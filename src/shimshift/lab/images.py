"""The lab's artifacts: built binaries, the node image and the images loaded inside the nodes.

Everything is made offline on this machine by the scripts shipped inside the package, under
``shimshift/lab/assets/{build,image}`` (Go modules through the Go module proxy, Debian packages
through apt, ``docker import``; nothing is pulled from a container registry), so an installed wheel
builds its lab as a checkout does. Each script skips work whose result is already there, so
``ensure_artifacts`` is cheap when everything is cached: it only checks.

What the cluster side needs to know about the images is in ``assets/image/README.md``.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import time
from collections import deque
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from shimshift.core.errors import Refusal
from shimshift.lab.releases import ADDONS, DEFAULT_CRI_DOCKERD_VERSION, Release, release

# Finding codes (docs/findings.md): a lab build step failed; the package lacks its build scripts; the cache
# holds one part of a built release without the other.
LAB_BUILD_FAILED = "lab-build-failed"
LAB_INSTALL_INCOMPLETE = "lab-install-incomplete"
LAB_CACHE_DAMAGED = "lab-cache-damaged"

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

KUBERNETES_VERSION = "v1.23.17"
# Only its kubelet for `lab up`: it proves a migrated node is ready for 1.24 (no dockershim there).
# The rest of v1.24.17 (control plane, kubeadm, kubectl, their images) is the upgrade's, built only
# by ensure_upgrade_artifacts.
KUBELET_NEXT_VERSION = "v1.24.17"
UPGRADE_VERSION = KUBELET_NEXT_VERSION
# kubeadm 1.24 needs crictl on every node (build-crictl.sh says why); the Go module proxy here serves
# v1.34.0 and v1.37.0 of cri-tools, and v1.34.0 builds with the Go on this machine.
CRICTL_VERSION = "v1.34.0"
# releases.DEFAULT_CRI_DOCKERD_VERSION says which cri-dockerd, and why.
CRI_DOCKERD_VERSION = DEFAULT_CRI_DOCKERD_VERSION
NODE_IMAGE = f"shimshift/node:{KUBERNETES_VERSION}"
WORKLOAD_IMAGE = "shimshift.local/busybox:1.0"
# The CNI daemon: the newest flannel whose whole module graph this machine's Go module proxy serves
# (v0.28.4 and later import a cloud SDK whose versions it refuses).
FLANNEL_VERSION = "v0.28.0"
FLANNEL_IMAGE = f"shimshift.local/flannel:{FLANNEL_VERSION}"


DEFAULT_CACHE_DIR = Path("/var/cache/shimshift")

KUBERNETES_COMPONENTS = (
    "kubeadm",
    "kubelet",
    "kubectl",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kube-proxy",
)

# Exit status of build-node-image.sh / build-inner-images.sh --check when a rebuild is due.
_STALE = 3
_LOG_TAIL_LINES = 25
# Measured on this kind of machine (2 cores), cold Go and apt caches; see assets/image/README.md.
_COLD_ESTIMATES = {
    "kubernetes": "about 20 minutes",
    "cri-dockerd": "about 5 minutes",
    "kubelet": "about 12 minutes",
    "node-image": "about 4 minutes",
    "inner-images": "under a minute",
    "upgrade-control-plane": "about 20 minutes",
    "upgrade-images": "under a minute",
    "crictl": "about 3 minutes",
    "addons": "about 10 minutes",
    "release": "about 5 to 13 minutes",  # 1.27.16 276 s, 1.30.14 720 s, 1.35.8 766 s (two at once)
    "node-image-release": "about 2 minutes",
    "lab-images": "under a minute",
}
# The addon versions per release (releases.ADDONS), kept under this name for the code that reads them here.
ADDON_VERSIONS = ADDONS


@dataclass(frozen=True)
class LabVersions:
    """What the lab is made of."""

    kubernetes: str = KUBERNETES_VERSION
    kubelet_next: str = KUBELET_NEXT_VERSION
    cri_dockerd: str = CRI_DOCKERD_VERSION


@dataclass(frozen=True)
class LabArtifacts:
    """Where the built artifacts are.

    ``inner_images_tar`` is one ``docker save`` archive to ``docker load`` in every node; it holds
    ``inner_images`` (the exact references kubeadm 1.23.17 and the kubelet use, plus
    ``workload_image``).
    """

    node_image: str
    inner_images_tar: Path
    inner_images: tuple[str, ...]
    workload_image: str
    kubelet_124: Path
    cri_dockerd: Path
    bin_dir_123: Path
    versions: LabVersions


@dataclass(frozen=True)
class UpgradeArtifacts:
    """What the lab's upgrade to ``version`` needs, all built here.

    ``bin_dir`` holds every binary of :data:`KUBERNETES_COMPONENTS` at ``version`` (kubeadm, kubelet
    and kubectl are what an upgrade copies onto the nodes). ``images_tar`` is one ``docker save``
    archive to ``docker load`` in every node before the upgrade; it holds ``images``, the exact
    references ``kubeadm config images list --kubernetes-version <version>`` names for the control
    plane, etcd and pause (no workload image: the nodes have it from ``lab up``). ``crictl`` goes
    to ``/usr/bin/crictl`` on every node before kubeadm 1.24 runs there.
    """

    version: str
    bin_dir: Path
    images_tar: Path
    images: tuple[str, ...]
    crictl: Path


def lab_scripts_dir() -> Path:
    """The lab's build scripts (``build/``, ``image/``), package data of ``shimshift.lab``.

    A real directory: the scripts are executed, and a wheel is always unpacked on install. Their
    staleness checks hash the scripts' contents, never their path, so where the package lives does
    not invalidate a warm cache.
    """
    return Path(str(resources.files("shimshift.lab").joinpath("assets")))


def ensure_artifacts(
    *,
    cache_dir: Path = DEFAULT_CACHE_DIR,
    progress: Callable[[str], None] | None = None,
    lab_dir: Path | None = None,
) -> LabArtifacts:
    """Build whatever lab artifact is missing or out of date, and say where they all are.

    Idempotent and safe to call from two processes at once (a lock under ``cache_dir``). Builds run
    the scripts under ``lab_dir`` (default: :func:`lab_scripts_dir`); each build's full output goes
    to ``cache_dir/logs/<step>.log``. ``progress`` hears one line when a build starts and one when it
    ends; nothing is reported for what is already cached.

    Raises :class:`Refusal` if the scripts are missing or a build fails (with the end of its log).
    """
    scripts, runner = _prepare(cache_dir=cache_dir, progress=progress, lab_dir=lab_dir)
    images_tar = _images_tar(cache_dir, KUBERNETES_VERSION)

    with _locked(cache_dir / ".artifacts.lock"):
        binaries = _build_binaries(runner, scripts, cache_dir, kubelet_next=True)
        bin_123 = binaries.bin_dir_123
        addons = _build_addons(runner, scripts, cache_dir, KUBERNETES_VERSION)
        node_argv = [
            str(scripts / "image" / "build-node-image.sh"),
            NODE_IMAGE,
            str(bin_123),
            str(binaries.cri_dockerd.parent),
            str(cache_dir),
        ]
        runner.build_if_stale(f"node image {NODE_IMAGE}", "node-image", node_argv)
        inner_argv = [str(scripts / "image" / "build-inner-images.sh"), str(bin_123), *addons, str(images_tar)]
        runner.build_if_stale(f"images for inside the nodes ({images_tar.name})", "inner-images", inner_argv)

    return LabArtifacts(
        node_image=NODE_IMAGE,
        inner_images_tar=images_tar,
        inner_images=_read_image_list(images_tar),
        workload_image=WORKLOAD_IMAGE,
        kubelet_124=binaries.kubelet_124,
        cri_dockerd=binaries.cri_dockerd,
        bin_dir_123=bin_123,
        versions=LabVersions(),
    )


@dataclass(frozen=True)
class LabBinaries:
    """Where the built binaries are: Kubernetes 1.23 (``bin_dir_123``), cri-dockerd, the 1.24 kubelet."""

    bin_dir_123: Path
    cri_dockerd: Path
    kubelet_124: Path


def ensure_binaries(
    *,
    cache_dir: Path = DEFAULT_CACHE_DIR,
    progress: Callable[[str], None] | None = None,
    lab_dir: Path | None = None,
    kubelet_next: bool = True,
) -> LabBinaries:
    """The binaries part of :func:`ensure_artifacts` alone (no images): what the tests that run
    kube-apiserver or cri-dockerd on this machine need. ``kubelet_next=False`` skips the 1.24 kubelet.

    Same lock, logs and refusals as :func:`ensure_artifacts`; a few file checks when all is built.
    """
    scripts, runner = _prepare(cache_dir=cache_dir, progress=progress, lab_dir=lab_dir)
    with _locked(cache_dir / ".artifacts.lock"):
        return _build_binaries(runner, scripts, cache_dir, kubelet_next=kubelet_next)


def _build_binaries(runner: _Runner, scripts: Path, cache_dir: Path, *, kubelet_next: bool) -> LabBinaries:
    """Build the missing lab binaries; the caller holds the artifacts lock."""
    bin_123 = cache_dir / "bin" / KUBERNETES_VERSION
    bin_124 = cache_dir / "bin" / KUBELET_NEXT_VERSION
    cri_dir = cache_dir / "bin" / f"cri-dockerd-{CRI_DOCKERD_VERSION}"
    _build_kubernetes(
        runner, scripts, f"Kubernetes {KUBERNETES_VERSION} binaries", "kubernetes", bin_123, KUBERNETES_COMPONENTS
    )
    _build_cri_dockerd(runner, scripts, CRI_DOCKERD_VERSION, cri_dir)
    if kubelet_next:
        _build_kubernetes(runner, scripts, f"kubelet {KUBELET_NEXT_VERSION}", "kubelet", bin_124, ("kubelet",))
    return LabBinaries(bin_dir_123=bin_123, cri_dockerd=cri_dir / "cri-dockerd", kubelet_124=bin_124 / "kubelet")


def ensure_upgrade_artifacts(
    *,
    version: str = UPGRADE_VERSION,
    cache_dir: Path = DEFAULT_CACHE_DIR,
    progress: Callable[[str], None] | None = None,
    lab_dir: Path | None = None,
) -> UpgradeArtifacts:
    """Build whatever the lab's upgrade to ``version`` (default :data:`UPGRADE_VERSION`) lacks, and say
    where it all is: the binaries, crictl and the images kubeadm of ``version`` lists, to load into a
    running lab (``upgrade_prep.load_release_images``).

    Not part of :func:`ensure_artifacts` (so not of ``lab up``): the control plane's cold build is
    about as long as the 1.23 one, and only the upgrade's tests need it. Same cache, same lock,
    same logs and same refusals as :func:`ensure_artifacts`. The binaries go next to the v1.24.17
    kubelet that ``lab up`` builds (build-kubernetes.sh builds only the missing ones); the image
    tarball is rebuilt when ``build-inner-images.sh --check`` says its inputs changed.
    """
    target = release(version).version
    scripts, runner = _prepare(cache_dir=cache_dir, progress=progress, lab_dir=lab_dir)
    bin_dir = cache_dir / "bin" / target
    crictl_dir = cache_dir / "bin" / f"crictl-{CRICTL_VERSION}"
    images_tar = cache_dir / "images" / f"upgrade-images-{target}.tar"

    with _locked(cache_dir / ".artifacts.lock"):
        _build_kubernetes(
            runner,
            scripts,
            f"Kubernetes {target} control plane, kubeadm and kubectl",
            "upgrade-control-plane",
            bin_dir,
            KUBERNETES_COMPONENTS,
        )
        _build_crictl(runner, scripts, crictl_dir)
        addons = _build_addons(runner, scripts, cache_dir, target)
        images_argv = [
            str(scripts / "image" / "build-inner-images.sh"),
            "--no-workload",
            str(bin_dir),
            *addons,
            str(images_tar),
        ]
        runner.build_if_stale(
            f"images for the upgrade to {target} ({images_tar.name})",
            "upgrade-images-" + target,
            images_argv,
        )

    return UpgradeArtifacts(
        version=target,
        bin_dir=bin_dir,
        images_tar=images_tar,
        images=_read_image_list(images_tar),
        crictl=crictl_dir / "crictl",
    )


def _build_crictl(runner: _Runner, scripts: Path, crictl_dir: Path) -> None:
    _build_tool(runner, scripts, "crictl", CRICTL_VERSION, crictl_dir, done=_all_executable(crictl_dir, ("crictl",)))


def _build_tool(runner: _Runner, scripts: Path, name: str, version: str, out: Path, *, done: bool) -> None:
    """Run build-NAME.sh VERSION OUT unless ``done``."""
    if not done:
        argv = [str(scripts / "build" / f"build-{name}.sh"), version, str(out)]
        runner.build(f"{name} {version}", f"{name}-{version}", argv)


@dataclass(frozen=True)
class ReleaseArtifacts:
    """What a lab at one release is made of, all built here (:func:`ensure_release_artifacts`).

    ``bin_dir`` holds every binary of :data:`KUBERNETES_COMPONENTS` at ``version``; ``node_image`` has its
    kubeadm, kubelet and kubectl, cri-dockerd and (from 1.24) crictl; ``inner_images_tar`` holds
    ``inner_images``: the exact references that release's ``kubeadm config images list`` names, flannel
    and the workload image."""

    version: str
    bin_dir: Path
    node_image: str
    inner_images_tar: Path
    inner_images: tuple[str, ...]
    cri_dockerd: Path
    crictl: Path | None


def release_node_image(version: str, cri_dockerd_version: str = CRI_DOCKERD_VERSION) -> str:
    """The node image of a lab at ``version``: one per release (and per cri-dockerd, when not the default)."""
    tag = release(version).version
    return f"shimshift/node:{tag}" if cri_dockerd_version == CRI_DOCKERD_VERSION else (
        f"shimshift/node:{tag}-cri-dockerd-{cri_dockerd_version}"
    )


def ensure_release_artifacts(
    version: str,
    *,
    cri_dockerd_version: str = CRI_DOCKERD_VERSION,
    cache_dir: Path = DEFAULT_CACHE_DIR,
    progress: Callable[[str], None] | None = None,
    lab_dir: Path | None = None,
) -> ReleaseArtifacts:
    """Build whatever a lab at ``version`` lacks (binaries, cri-dockerd, crictl from 1.24, etcd and
    CoreDNS at the versions its kubeadm asks for, the node image, the images for inside the nodes) and say
    where it all is. Each release is cached beside the others (``cache_dir/bin/<version>``,
    ``cache_dir/images/lab-images-<version>.tar``); same lock, logs, progress and refusals as
    :func:`ensure_artifacts`, which stays the default lab's (it also builds the 1.24.17 kubelet)."""
    wanted = release(version)
    scripts, runner = _prepare(cache_dir=cache_dir, progress=progress, lab_dir=lab_dir)
    bin_dir = cache_dir / "bin" / wanted.version
    cri_dir = cache_dir / "bin" / f"cri-dockerd-{cri_dockerd_version}"
    crictl_dir = cache_dir / "bin" / f"crictl-{CRICTL_VERSION}"
    images_tar = _images_tar(cache_dir, wanted.version)
    node_image = release_node_image(wanted.version, cri_dockerd_version)

    with _locked(cache_dir / ".artifacts.lock"):
        _build_kubernetes(
            runner, scripts, f"Kubernetes {wanted.version} binaries", "release", bin_dir, KUBERNETES_COMPONENTS
        )
        _build_cri_dockerd(runner, scripts, cri_dockerd_version, cri_dir)
        if wanted.needs_crictl:
            _build_crictl(runner, scripts, crictl_dir)
        addons = _build_addons(runner, scripts, cache_dir, wanted.version)
        node_argv = [
            str(scripts / "image" / "build-node-image.sh"),
            node_image,
            str(bin_dir),
            str(cri_dir),
            str(cache_dir),
            *([str(crictl_dir / "crictl")] if wanted.needs_crictl else []),
        ]
        runner.build_if_stale(f"node image {node_image}", "node-image-release-" + wanted.version, node_argv)
        inner_argv = [str(scripts / "image" / "build-inner-images.sh"), str(bin_dir), *addons, str(images_tar)]
        runner.build_if_stale(
            f"images for inside the nodes ({images_tar.name})", "lab-images-" + wanted.version, inner_argv
        )

    return ReleaseArtifacts(
        version=wanted.version,
        bin_dir=bin_dir,
        node_image=node_image,
        inner_images_tar=images_tar,
        inner_images=_read_image_list(images_tar),
        cri_dockerd=cri_dir / "cri-dockerd",
        crictl=crictl_dir / "crictl" if wanted.needs_crictl else None,
    )


def _build_cri_dockerd(runner: _Runner, scripts: Path, version: str, cri_dir: Path) -> None:
    done = _all_executable(cri_dir, ("cri-dockerd",)) and (cri_dir / "systemd").is_dir()
    _build_tool(runner, scripts, "cri-dockerd", version, cri_dir, done=done)


@dataclass(frozen=True)
class ReleaseCache:
    """What the cache holds of one release: its binaries, and its lab's images for inside the nodes."""

    release: Release
    binaries: bool
    lab_images: bool

    @property
    def built(self) -> bool:
        return self.binaries and self.lab_images


def cached_releases(cache_dir: Path = DEFAULT_CACHE_DIR) -> list[ReleaseCache]:
    """Every release the lab knows, with what of it is built (``lab status``); file checks only."""
    return [
        ReleaseCache(
            release=r,
            binaries=_all_executable(cache_dir / "bin" / r.version, KUBERNETES_COMPONENTS),
            lab_images=_images_tar(cache_dir, r.version).is_file()
            and _images_tar(cache_dir, r.version).with_name(f"lab-images-{r.version}.tar.images").is_file(),
        )
        for r in (release(v) for v in ADDONS)
    ]


def tail_lines(text: str, count: int) -> list[str]:
    """The last ``count`` non-empty lines of ``text`` (for error messages)."""
    return list(deque((line for line in text.splitlines() if line.strip()), maxlen=count))


def _silent(_: str) -> None:
    return None


def _prepare(*, cache_dir: Path, progress: Callable[[str], None] | None, lab_dir: Path | None) -> tuple[Path, _Runner]:
    """The scripts folder (refused when it is missing) and a runner whose builds log under the cache."""
    scripts = lab_dir if lab_dir is not None else lab_scripts_dir()
    if not (scripts / "build").is_dir() or not (scripts / "image").is_dir():
        raise Refusal(
            what=f"the lab build scripts are not at {scripts}",
            hint="reinstall shimshift: its lab build scripts ship inside the package (shimshift/lab/assets)",
            file=str(scripts),
            code=LAB_INSTALL_INCOMPLETE,
        )
    cache_dir.mkdir(parents=True, exist_ok=True)
    # build-kubernetes.sh keeps its generated k/k source copy under $SHIMSHIFT_CACHE/src.
    env = {**os.environ, "SHIMSHIFT_CACHE": str(cache_dir)}
    report = progress if progress is not None else _silent
    return scripts, _Runner(logs=cache_dir / "logs", report=report, env=env)


def _build_kubernetes(
    runner: _Runner, scripts: Path, label: str, step: str, bin_dir: Path, components: Sequence[str]
) -> None:
    """Build the ``components`` missing from ``bin_dir``, at the version the folder is named after."""
    if _all_executable(bin_dir, components):
        return
    version = bin_dir.name
    argv = [str(scripts / "build" / "build-kubernetes.sh"), version, str(bin_dir), *components]
    runner.build(label, f"{step}-{version}", argv)


def addon_dirs(cache_dir: Path, kubernetes: str) -> tuple[Path, Path, Path]:
    """Where etcd, CoreDNS (at the versions ``kubernetes``'s kubeadm asks for) and flannel are built: the
    folders build-inner-images.sh takes. Each version is built once, under ``cache_dir/bin/<name>-<version>``,
    for every release that asks for it."""
    wanted = ADDON_VERSIONS[kubernetes]
    bin_dir = cache_dir / "bin"
    return (
        bin_dir / f"etcd-{wanted.etcd}",
        bin_dir / f"coredns-{wanted.coredns}",
        bin_dir / f"flannel-{FLANNEL_VERSION}",
    )


def _build_addons(runner: _Runner, scripts: Path, cache_dir: Path, kubernetes: str) -> list[str]:
    """Build what :func:`addon_dirs` names if any of it is missing; return those folders."""
    wanted = ADDON_VERSIONS[kubernetes]
    etcd, coredns, flannel = addon_dirs(cache_dir, kubernetes)
    done = (
        _all_executable(etcd, ("etcd", "etcdctl"))
        and _all_executable(coredns, ("coredns",))
        and _all_executable(flannel, ("flanneld", "flannel"))
    )
    if not done:
        runner.build(
            f"etcd {wanted.etcd}, CoreDNS {wanted.coredns} and flannel {FLANNEL_VERSION}",
            f"addons-{kubernetes}",
            [str(scripts / "build" / "build-addons.sh"), str(cache_dir), wanted.etcd, wanted.coredns, FLANNEL_VERSION],
        )
    return [str(d) for d in (etcd, coredns, flannel)]


def _images_tar(cache_dir: Path, version: str) -> Path:
    return cache_dir / "images" / f"lab-images-{version}.tar"


def _all_executable(directory: Path, names: Sequence[str]) -> bool:
    return all(os.access(directory / name, os.X_OK) for name in names)


def _read_image_list(images_tar: Path) -> tuple[str, ...]:
    listing = images_tar.with_name(images_tar.name + ".images")
    try:
        return tuple(line for line in listing.read_text().splitlines() if line)
    except FileNotFoundError as missing:
        raise Refusal(
            what=f"the image list {listing} is missing although {images_tar.name} was built",
            hint=f"delete {images_tar} and run again to rebuild it",
            file=str(listing),
            code=LAB_CACHE_DAMAGED,
        ) from missing


class _locked:
    """An exclusive ``flock`` on ``path`` for the duration of a ``with`` block."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._fd = -1

    def __enter__(self) -> None:
        self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(self._fd, fcntl.LOCK_EX)

    def __exit__(self, *_: object) -> None:
        os.close(self._fd)  # closing releases the lock


@dataclass
class _Runner:
    logs: Path
    report: Callable[[str], None]
    env: dict[str, str]

    def build_if_stale(self, label: str, step: str, argv: list[str]) -> None:
        """Run ``argv`` if its ``--check`` form says the result is out of date."""
        check_argv = [argv[0], "--check", *argv[1:]]
        check = self._run(check_argv, capture_output=True, text=True)
        if check.returncode == 0:
            return
        if check.returncode != _STALE:
            output = check.stdout + check.stderr
            self.logs.mkdir(parents=True, exist_ok=True)
            (self.logs / f"{step}.log").write_text(output)
            self._fail(label, step, check_argv, check.returncode, output)
        self.build(label, step, argv)

    def build(self, label: str, step: str, argv: list[str]) -> None:
        estimate = _COLD_ESTIMATES.get(step.split("-v")[0])
        self.report(f"building {label}" + (f" (first build: {estimate})" if estimate else ""))
        self.logs.mkdir(parents=True, exist_ok=True)
        log = self.logs / f"{step}.log"
        started = time.monotonic()
        with log.open("w") as out:
            result = self._run(argv, stdout=out, stderr=subprocess.STDOUT)
        if result.returncode != 0:
            self._fail(label, step, argv, result.returncode, log.read_text(errors="replace"))
        self.report(f"built {label} in {time.monotonic() - started:.0f}s")

    def _run(self, argv: list[str], **options: Any) -> subprocess.CompletedProcess[Any]:
        try:
            return subprocess.run(argv, check=False, env=self.env, **options)
        except OSError as error:  # missing or not executable
            raise Refusal(
                what=f"cannot run the lab build script {argv[0]}: {error.strerror}",
                hint="reinstall shimshift, whose package holds the lab build scripts (shimshift/lab/assets)",
                file=argv[0],
                code=LAB_INSTALL_INCOMPLETE,
            ) from error

    def _fail(self, label: str, step: str, argv: list[str], code: int, output: str) -> NoReturn:
        tail = "\n".join(tail_lines(output, _LOG_TAIL_LINES))
        raise Refusal(
            what=f"building {label} failed (exit status {code}):\n{tail}",
            hint=f"full log: {self.logs / f'{step}.log'}; fix the cause and run again (finished steps are kept)",
            file=argv[0],
            code=LAB_BUILD_FAILED,
        )
