"""What a lab at one Kubernetes release is made of, and how its nodes are configured: pure rules.

Every rule that differs between the releases the lab runs (1.21 to 1.37) lives here, named by what it
decides, so the build and `lab up` only ask. Versions of the addon images are what each release's
kubeadm asks for (k8s.io/kubernetes ``cmd/kubeadm/app/constants/constants.go`` at the tag:
DefaultEtcdVersion, CoreDNSVersion, PauseVersion); build-inner-images.sh refuses a binary whose version
is not the tag the built kubeadm names, so a wrong entry here cannot go unnoticed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from shimshift.core.errors import Refusal
from shimshift.core.versions import VERSION_INVALID, VERSION_UNSUPPORTED
from shimshift.core.wellknown import CRI_DOCKERD_ENDPOINT, DOCKERSHIM_SOCKET

DEFAULT_VERSION = "v1.23.17"
# The cri-dockerd every lab node carries unless `lab up --cri-dockerd-version` says otherwise: the newest
# release this machine's Go module proxy serves that builds. On 2026-12-07 it serves v0.3.17, v0.4.0,
# v0.4.3, v0.4.4 and v0.4.6 (403 "not available" for v0.3.18 to v0.3.23, v0.4.1, v0.4.2, v0.4.5, v0.4.7,
# v0.5.0); v0.4.6 builds here (docs/lab.md). It serves CRI v1 only (v0.4.2 dropped v1alpha2,
# Mirantis/cri-dockerd#487), which every kubelet from 1.23 speaks; `--cri-dockerd-version v0.3.17` gives a
# lab whose cri-dockerd still serves v1alpha2 too (docs/runtime-facts.md#cri-dockerd).
DEFAULT_CRI_DOCKERD_VERSION = "v0.4.6"


@dataclass(frozen=True)
class AddonVersions:
    """The etcd, CoreDNS and pause releases one kubeadm release asks for (constants.go at its tag).

    ``etcd`` and ``coredns`` are the Go module versions built (the image tags are ``etcd`` without the
    ``v`` plus ``-0``, and ``coredns`` as is); ``pause`` is the tag our pause.c is imported under."""

    etcd: str
    coredns: str
    pause: str


# constants.go at each tag (read in the module the Go proxy serves, `go mod download k8s.io/kubernetes@V`).
ADDONS: dict[str, AddonVersions] = {
    "v1.21.14": AddonVersions(etcd="v3.4.13", coredns="v1.8.0", pause="3.4.1"),
    "v1.22.17": AddonVersions(etcd="v3.5.6", coredns="v1.8.4", pause="3.5"),
    "v1.23.17": AddonVersions(etcd="v3.5.6", coredns="v1.8.6", pause="3.6"),
    "v1.24.17": AddonVersions(etcd="v3.5.6", coredns="v1.8.6", pause="3.7"),
    "v1.25.16": AddonVersions(etcd="v3.5.9", coredns="v1.9.3", pause="3.8"),
    "v1.26.15": AddonVersions(etcd="v3.5.10", coredns="v1.9.3", pause="3.9"),
    "v1.27.16": AddonVersions(etcd="v3.5.12", coredns="v1.10.1", pause="3.9"),
    "v1.28.15": AddonVersions(etcd="v3.5.15", coredns="v1.10.1", pause="3.9"),
    "v1.29.15": AddonVersions(etcd="v3.5.16", coredns="v1.11.1", pause="3.9"),
    "v1.30.14": AddonVersions(etcd="v3.5.15", coredns="v1.11.3", pause="3.9"),
    "v1.31.14": AddonVersions(etcd="v3.5.24", coredns="v1.11.3", pause="3.10"),
    "v1.32.13": AddonVersions(etcd="v3.5.24", coredns="v1.11.3", pause="3.10"),
    "v1.33.13": AddonVersions(etcd="v3.5.24", coredns="v1.12.0", pause="3.10"),
    "v1.34.12": AddonVersions(etcd="v3.6.5", coredns="v1.12.1", pause="3.10.1"),
    "v1.35.8": AddonVersions(etcd="v3.6.6", coredns="v1.13.1", pause="3.10.1"),
    "v1.36.5": AddonVersions(etcd="v3.6.8", coredns="v1.14.2", pause="3.10.2"),
    "v1.37.2": AddonVersions(etcd="v3.7.0", coredns="v1.14.6", pause="3.10.2"),
}

_VERSION = re.compile(r"^v?1\.(\d+)\.(\d+)$")


@dataclass(frozen=True)
class Release:
    """One Kubernetes release as the lab runs it."""

    version: str  # "v1.27.16"
    minor: int
    addons: AddonVersions

    @property
    def uses_dockershim(self) -> bool:
        """The kubelet's built-in dockershim before 1.24, cri-dockerd from 1.24 on (dockershim was
        removed in 1.24, kubernetes/kubernetes#97252, CHANGELOG-1.24.md)."""
        return self.minor < 24

    @property
    def cri_socket(self) -> str:
        """kubeadm's ``nodeRegistration.criSocket``, which it also writes into the node annotation.

        Always set: kubeadm 1.37 auto-detects containerd first on a host where both sockets exist
        (cmd/kubeadm/app/util/runtime/runtime.go, DetectCRISocket), and the nodes' Docker brings
        containerd. Below 1.24, the schemeless Docker socket kubeadm 1.23 itself writes
        (docs/lab.md#kubeadm-offline); from 1.24, cri-dockerd's endpoint with its URL scheme (kubeadm 1.24
        warns about, and 1.25+ refuses, a socket without one: kubernetes/kubeadm#2426)."""
        return DOCKERSHIM_SOCKET if self.uses_dockershim else CRI_DOCKERD_ENDPOINT

    @property
    def cri_socket_annotation(self) -> str | None:
        """What kubeadm writes into the node annotation ``kubeadm.alpha.kubernetes.io/cri-socket``: the
        socket up to 1.33; nothing from 1.34, where the NodeLocalCRISocket gate (beta, on by default) keeps
        it in ``/var/lib/kubelet/instance-config.yaml`` instead (cmd/kubeadm/app/features/features.go and
        CHANGELOG-1.34.md)."""
        return self.cri_socket if self.minor < 34 else None

    @property
    def kubeadm_api(self) -> str:
        """The kubeadm configuration API the lab writes: v1beta3 appeared in 1.22 and v1beta4 in 1.31;
        1.37 reads only v1beta4 (cmd/kubeadm/app/apis/kubeadm/ at each tag)."""
        if self.minor < 22:
            return "kubeadm.k8s.io/v1beta2"
        if self.minor < 31:
            return "kubeadm.k8s.io/v1beta3"
        return "kubeadm.k8s.io/v1beta4"

    @property
    def runtime_endpoint_in_kubelet_config(self) -> bool:
        """From 1.27 the kubelet takes its CRI endpoint in KubeletConfiguration ``containerRuntimeEndpoint``
        (the field is new in 1.27, k8s.io/kubelet config/v1beta1/types.go; ``--container-runtime`` is gone,
        CHANGELOG-1.27.md); earlier kubelets know only the flag, which kubeadm writes."""
        return not self.uses_dockershim and self.minor >= 27

    @property
    def needs_fail_cgroup_v1_false(self) -> bool:
        """From 1.35 the kubelet refuses to start on a cgroup v1 host unless ``failCgroupV1: false``
        (KEP-5573, kubernetes/kubernetes#134298, CHANGELOG-1.35.md); this machine's kernel runs cgroup v1."""
        return self.minor >= 35

    @property
    def cgroup_v1_preflight_error(self) -> bool:
        """From 1.35 kubeadm's SystemVerification fails on a cgroup v1 host when the kubelet is 1.35+
        (k8s.io/system-validators v1.12.1 cgroup_validator_linux.go, kubernetes/kubernetes CHANGELOG-1.35.md
        asks to skip the check): the one preflight error the lab must ignore there."""
        return self.minor >= 35

    @property
    def needs_crictl(self) -> bool:
        """kubeadm 1.24+ talks to every runtime through crictl and refuses to run without it on the PATH
        (cmd/kubeadm/app/util/runtime/runtime.go at v1.24.17)."""
        return not self.uses_dockershim

    @property
    def pause_image(self) -> str:
        return f"{self.registry}/pause:{self.addons.pause}"

    @property
    def registry(self) -> str:
        """kubeadm's default image registry: registry.k8s.io from 1.22.17/1.23.15/1.24.9 on, k8s.gcr.io
        before (kubernetes/kubernetes#113393, CHANGELOG-1.22/1.23/1.24.md)."""
        return "k8s.gcr.io" if self.minor < 22 else "registry.k8s.io"


def parse_version(text: str) -> tuple[int, int]:
    """(minor, patch) of ``1.X.Y`` or ``v1.X.Y``; refuses anything else."""
    match = _VERSION.match(text.strip())
    if match is None:
        raise Refusal(
            f"--version {text!r} is not a Kubernetes release",
            hint="give it as 1.X.Y, e.g. 1.27.16",
            code=VERSION_INVALID,
        )
    return int(match.group(1)), int(match.group(2))


def release(text: str) -> Release:
    """The lab's rules for ``text`` (``1.27.16`` or ``v1.27.16``); refuses a release the lab does not know."""
    minor, patch = parse_version(text)
    version = f"v1.{minor}.{patch}"
    addons = ADDONS.get(version)
    if addons is None:
        known = ", ".join(v.removeprefix("v") for v in ADDONS)
        raise Refusal(
            f"the lab does not know Kubernetes {version}",
            hint=f"choose one of {known} (each one's addon versions are in shimshift/lab/releases.py)",
            code=VERSION_UNSUPPORTED,
        )
    return Release(version=version, minor=minor, addons=addons)


def known_releases() -> list[Release]:
    return [release(v) for v in ADDONS]
