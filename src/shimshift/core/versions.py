"""Kubelet and cri-dockerd versions, and the rule table: what each kubelet minor accepts.

Everything version-dependent that shimshift knows lives in the tables below (``FLAG_RULES``,
``MINOR_FACTS``, ``CRI_DOCKERD_FACTS``), one row per rule, each row citing its source. The sources are
summarised in docs/runtime-facts.md (kubelet flags by minor version, kubeadm, cri-dockerd); "RN-1.XX"
means the release notes of that minor (kubernetes/kubernetes CHANGELOG/CHANGELOG-1.XX.md), "#N" a
kubernetes/kubernetes pull request unless another repository is named ("cri-dockerd#N" is
Mirantis/cri-dockerd#N). Rows marked "inferred" are deductions from the code, not upstream statements.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from shimshift.core.errors import OPTION_INVALID, Refusal
from shimshift.core.wellknown import CONTAINERD_ENDPOINT, CRI_DOCKERD_ENDPOINT, DOCKERSHIM_ENDPOINT

# Finding codes (docs/findings.md).
VERSION_INVALID = "version-invalid"
VERSION_UNSUPPORTED = "version-unsupported"

#: The kubelet minors this table covers. Anything else is refused: we do not guess about versions we
#: have not read the release notes of.
FIRST_MINOR = 20
LAST_MINOR = 37

#: dockershim's checkpoint root, the default of the hidden kubelet flag
#: --experimental-dockershim-root-directory (docs/runtime-facts.md#dockershims-settings-move-to-cri-dockerd).
DOCKERSHIM_ROOT_DIRECTORY = "/var/lib/dockershim"


# --------------------------------------------------------------------------------------------------
# Versions


_KUBE_VERSION = re.compile(
    r"^\s*(?:Kubernetes\s+)?v?(?P<major>\d+)\.(?P<minor>\d+)(?:\.(?P<patch>\d+))?(?P<rest>[-+][0-9A-Za-z.+-]*)?\s*$"
)


@dataclass(frozen=True, order=True)
class KubernetesVersion:
    """A Kubernetes release the rule table covers (1.20 to 1.37), a kubelet's or an API server's; ``patch``
    None when only a minor was given."""

    minor: int
    patch: int | None = None

    def __str__(self) -> str:
        return f"1.{self.minor}" if self.patch is None else f"1.{self.minor}.{self.patch}"


def parse_kubelet_version(text: str, *, what: str = "kubelet version") -> KubernetesVersion:
    """Parse ``1.23``, ``1.23.17``, ``v1.23.17``, ``Kubernetes v1.23.17`` (``kubelet --version``).

    Raises Refusal for garbage and for minors outside 1.20-1.37.
    """
    m = _KUBE_VERSION.match(text)
    if m is None:
        raise Refusal(
            f"{what} {text!r} is not a Kubernetes version",
            hint="give it as 1.MINOR or 1.MINOR.PATCH, e.g. 1.23.17 (the output of `kubelet --version`)",
            code=VERSION_INVALID,
        )
    major, minor = int(m["major"]), int(m["minor"])
    if major != 1 or not FIRST_MINOR <= minor <= LAST_MINOR:
        raise Refusal(
            f"{what} {text.strip()} is outside the versions shimshift knows "
            f"(1.{FIRST_MINOR} to 1.{LAST_MINOR})",
            hint="shimshift acts only on versions whose flag rules it has read; do this node by hand",
            code=VERSION_UNSUPPORTED,
        )
    return KubernetesVersion(minor=minor, patch=int(m["patch"]) if m["patch"] is not None else None)


_CRI_DOCKERD_VERSION = re.compile(
    r"^\s*(?:cri-dockerd\s+)?v?(?P<major>\d+)\.(?P<minor>\d+)\.(?P<patch>\d+)(?:[-+~][0-9A-Za-z.+~-]*)?(?:\s+\([0-9a-fA-F]+\))?\s*$"
)


@dataclass(frozen=True, order=True)
class CriDockerdVersion:
    major: int
    minor: int
    patch: int

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"

    def at_least(self, major: int, minor: int, patch: int) -> bool:
        return (self.major, self.minor, self.patch) >= (major, minor, patch)


def parse_cri_dockerd_version(text: str) -> CriDockerdVersion:
    """Parse ``0.3.16``, ``v0.3.16`` or ``cri-dockerd 0.3.16 (71198646)`` (``cri-dockerd --version``)."""
    m = _CRI_DOCKERD_VERSION.match(text)
    if m is None:
        raise Refusal(
            f"cri-dockerd version {text!r} is not a version",
            hint="give it as X.Y.Z, e.g. 0.3.16 (the output of `cri-dockerd --version`)",
            code=VERSION_INVALID,
        )
    return CriDockerdVersion(int(m["major"]), int(m["minor"]), int(m["patch"]))


def cri_dockerd_version_word(output: str) -> str | None:
    """The version in what `cri-dockerd --version` printed (``cri-dockerd 0.3.21 (abc1234)``, maybe among
    other lines), as written, for :func:`parse_cri_dockerd_version`; None when there is none."""
    for word in output.split():
        candidate = word.lstrip("v")
        if candidate[:1].isdigit() and candidate.count(".") >= 2:
            return candidate
    return None


CGROUP_DRIVERS = ("cgroupfs", "systemd")


def parse_cgroup_driver(text: str, *, what: str = "Docker cgroup driver") -> str:
    value = text.strip()
    if value not in CGROUP_DRIVERS:
        raise Refusal(
            f"{what} {text!r} is neither cgroupfs nor systemd",
            hint="pass the CgroupDriver that `docker info --format '{{.CgroupDriver}}'` prints",
            code=OPTION_INVALID,
        )
    return value


# --------------------------------------------------------------------------------------------------
# The kubelet flag table


@dataclass(frozen=True)
class FlagRule:
    """One kubelet command-line flag that matters for the runtime.

    ``deprecated``/``removed``: kubelet minors (None: not within 1.20-1.37, or not confirmed).
    ``dockershim_only``: only dockershim read it; with a remote runtime it is dead weight, and it is in
    the 1.24 removal list. ``cri_dockerd_flag``: where its value must go so that pods keep the same
    network, pause image and storage after the switch.
    """

    flag: str
    source: str
    deprecated: int | None = None
    removed: int | None = None
    dockershim_only: bool = False
    cri_dockerd_flag: str | None = None


_DOCKERSHIM_FLAGS = (
    "deprecated by #98730 (RN-1.21), removed by #106907 (RN-1.24); cri-dockerd flag: docs/runtime-facts.md"
)

# fmt: off
FLAG_RULES: tuple[FlagRule, ...] = (
    # docs/runtime-facts.md, kubelet flags, `--container-runtime`. Before 1.24 its value `remote` is what makes the
    # kubelet a
    # CRI client instead of starting dockershim (kubernetes/website#42442, kubernetes/website#42739).
    FlagRule("--container-runtime", "#107094 (RN-1.24), #114017 (RN-1.27)", deprecated=24, removed=27),
    # Stable in 1.24 (#106954); moved into KubeletConfiguration in 1.27 (#112136); the flag
    # still works, deprecated like every config-backed flag (kubelet v1.27.2 log, usernetes#281).
    FlagRule("--container-runtime-endpoint", "#106954 (RN-1.24), #112136 (RN-1.27)", deprecated=27),
    # Moved to config in 1.27 (#112136); deprecation inferred from AddKubeletConfigFlags.
    FlagRule("--image-service-endpoint", "#112136 (RN-1.27), deprecation inferred", deprecated=27),
    # With a remote runtime it only protects the image from GC; the sandbox image is
    # cri-dockerd's own flag (Mirantis/cri-dockerd#230): copied there, and kept on the kubelet while accepted.
    FlagRule(
        "--pod-infra-container-image", "#108045 (RN-1.24), #133779 (RN-1.35 ACTION REQUIRED)",
        deprecated=24, removed=35, cri_dockerd_flag="--pod-infra-container-image",
    ),
    # The dockershim flags; their cri-dockerd names: docs/runtime-facts.md#dockershims-settings-move-to-cri-dockerd.
    FlagRule(
        "--network-plugin", _DOCKERSHIM_FLAGS,
        deprecated=21, removed=24, dockershim_only=True, cri_dockerd_flag="--network-plugin",
    ),
    FlagRule(
        "--cni-bin-dir", _DOCKERSHIM_FLAGS,
        deprecated=21, removed=24, dockershim_only=True, cri_dockerd_flag="--cni-bin-dir",
    ),
    FlagRule(
        "--cni-conf-dir", _DOCKERSHIM_FLAGS,
        deprecated=21, removed=24, dockershim_only=True, cri_dockerd_flag="--cni-conf-dir",
    ),
    FlagRule(
        "--cni-cache-dir", _DOCKERSHIM_FLAGS,
        deprecated=21, removed=24, dockershim_only=True, cri_dockerd_flag="--cni-cache-dir",
    ),
    FlagRule(
        "--network-plugin-mtu", _DOCKERSHIM_FLAGS,
        deprecated=21, removed=24, dockershim_only=True, cri_dockerd_flag="--network-plugin-mtu",
    ),
    FlagRule(
        "--docker-endpoint", _DOCKERSHIM_FLAGS,
        deprecated=21, removed=24, dockershim_only=True, cri_dockerd_flag="--docker-endpoint",
    ),
    FlagRule(
        "--image-pull-progress-deadline", _DOCKERSHIM_FLAGS,
        deprecated=21, removed=24, dockershim_only=True, cri_dockerd_flag="--image-pull-progress-deadline",
    ),
    # Hidden flag (default /var/lib/dockershim); cri-dockerd's is --cri-dockerd-root-directory
    # (config/options.go@v0.3.21).
    FlagRule(
        "--experimental-dockershim-root-directory", _DOCKERSHIM_FLAGS,
        deprecated=21, removed=24, dockershim_only=True, cri_dockerd_flag="--cri-dockerd-root-directory",
    ),
    # kubenet-only; deprecation release not confirmed. cri-dockerd has no such flag
    # (hard-coded 10.0.0.0/8 in its options), so nothing carries it.
    FlagRule("--non-masquerade-cidr", "#107096 (RN-1.24)", removed=24, dockershim_only=True),
    # "no longer functional, will be removed in v1.22" (#95935). No release note confirms the
    # removal; the kubelet v1.23.17 binary rejects it ("unknown flag", tests/e2e/core), so
    # 1.23 is the latest removal release. 1.22 is unverified.
    FlagRule(
        "--redirect-container-streaming", "#95935 (RN-1.20); kubelet v1.23.17 rejects it",
        deprecated=20, removed=23,
    ),
    # cri-dockerd has --runtime-cgroups too (config/options.go@v0.3.21); the kubelet keeps its own
    # (pkg/kubelet/config/flags.go).
    FlagRule("--runtime-cgroups", "kubelet flags.go, cri-dockerd options.go", cri_dockerd_flag="--runtime-cgroups"),
    # cri-dockerd --hairpin-mode (v0.2.2+) replaces the kubelet's for dockershim.
    FlagRule("--hairpin-mode", "cri-dockerd options.go (v0.2.2+)", cri_dockerd_flag="--hairpin-mode"),
)
# fmt: on

FLAG_RULES_BY_NAME: dict[str, FlagRule] = {rule.flag: rule for rule in FLAG_RULES}
DOCKERSHIM_ONLY_FLAGS: tuple[str, ...] = tuple(r.flag for r in FLAG_RULES if r.dockershim_only)


class FlagStatus(Enum):
    ACCEPTED = "accepted"
    DEPRECATED = "deprecated"
    REMOVED = "removed"


def flag_status(flag: str, minor: int) -> FlagStatus:
    """What kubelet 1.<minor> does with ``flag``. Flags outside the table are ACCEPTED (not our concern)."""
    rule = FLAG_RULES_BY_NAME.get(flag)
    if rule is None:
        return FlagStatus.ACCEPTED
    if rule.removed is not None and minor >= rule.removed:
        return FlagStatus.REMOVED
    if rule.deprecated is not None and minor >= rule.deprecated:
        return FlagStatus.DEPRECATED
    return FlagStatus.ACCEPTED


# --------------------------------------------------------------------------------------------------
# Per-minor facts


class EndpointHome(Enum):
    FLAG = "flag"  # only --container-runtime-endpoint
    FLAG_OR_CONFIG = "flag-or-config"  # the flag, or KubeletConfiguration containerRuntimeEndpoint


class CriSocketRecord(Enum):
    """Where kubeadm keeps the node's CRI socket."""

    ANNOTATION = "annotation"  # kubeadm.alpha.kubernetes.io/cri-socket
    ANNOTATION_OR_INSTANCE_CONFIG = "annotation (instance-config.yaml if NodeLocalCRISocket is on)"
    INSTANCE_CONFIG = "instance-config.yaml (annotation as fallback)"


@dataclass(frozen=True)
class MinorFacts:
    """What holds for kubelet minors ``first`` to ``last`` (inclusive)."""

    first: int
    last: int
    source: str
    has_dockershim: bool = False
    needs_remote_runtime_flag: bool = False  # --container-runtime=remote required to use a CRI socket
    endpoint_home: EndpointHome = EndpointHome.FLAG_OR_CONFIG
    default_endpoint: str | None = CONTAINERD_ENDPOINT  # with neither the flag nor the config field
    kubeadm_writes: tuple[str, ...] = ()  # runtime flags kubeadm writes to kubeadm-flags.env (CRI socket)
    cri_socket_record: CriSocketRecord = CriSocketRecord.ANNOTATION
    cgroup_driver_from_cri: bool = False  # KubeletCgroupDriverFromCRI on by default
    cri_v1: bool = True
    cri_v1alpha2: bool = False


_RUNTIME_PAIR = ("--container-runtime", "--container-runtime-endpoint")
_ENDPOINT_PAUSE = ("--container-runtime-endpoint", "--pod-infra-container-image")

# fmt: off
MINOR_FACTS: tuple[MinorFacts, ...] = (
    # Dockershim deprecated in 1.20 (#94624); default endpoint dockershim.sock (website PR#34799 diff);
    # kubeadm writes remote + endpoint for non-Docker sockets (cmd/kubeadm/app/phases/kubelet/flags.go@v1.23.17,
    # docs/runtime-facts.md#kubeadm-flagsenv).
    # CRI v1 only arrives in 1.23 (#106501), so v1alpha2 only.
    MinorFacts(
        20, 22, "#94624 (RN-1.20), website PR#34799, kubeadm flags.go @04791b49",
        has_dockershim=True, needs_remote_runtime_flag=True, endpoint_home=EndpointHome.FLAG,
        default_endpoint=DOCKERSHIM_ENDPOINT, kubeadm_writes=_RUNTIME_PAIR, cri_v1=False, cri_v1alpha2=True,
    ),
    # 1.23: CRI v1 by default, v1alpha2 fallback (#106501, RN-1.23).
    MinorFacts(
        23, 23, "#106501 (RN-1.23)",
        has_dockershim=True, needs_remote_runtime_flag=True, endpoint_home=EndpointHome.FLAG,
        default_endpoint=DOCKERSHIM_ENDPOINT, kubeadm_writes=_RUNTIME_PAIR, cri_v1alpha2=True,
    ),
    # 1.24: dockershim removed (#97252); every runtime is remote; default endpoint empty (PR#34799);
    # kubeadm writes runtime=remote + endpoint (#106973); 1.25 stops --network-plugin (#110022).
    MinorFacts(
        24, 25, "#97252, #106973 (RN-1.24), #110022 (RN-1.25)",
        endpoint_home=EndpointHome.FLAG, default_endpoint=None,
        kubeadm_writes=(*_RUNTIME_PAIR, "--pod-infra-container-image"), cri_v1alpha2=True,
    ),
    # 1.26: endpoint must be non-empty (#112542); v1alpha2 dropped (#110618); kubeadm stops writing
    # --container-runtime and strips it on upgrade (#112000).
    MinorFacts(
        26, 26, "#112542, #110618, #112000 (RN-1.26)",
        endpoint_home=EndpointHome.FLAG, default_endpoint=None, kubeadm_writes=_ENDPOINT_PAUSE,
    ),
    # 1.27: endpoint in KubeletConfiguration (#112136); default containerd (defaults.go @030891da).
    MinorFacts(27, 30, "#112136 (RN-1.27), defaults.go @030891da", kubeadm_writes=_ENDPOINT_PAUSE),
    # 1.31: KubeletCgroupDriverFromCRI beta, on by default (RN-1.31; alpha in 1.28, #118770).
    MinorFacts(
        31, 31, "#118770 (RN-1.28), RN-1.31", kubeadm_writes=_ENDPOINT_PAUSE, cgroup_driver_from_cri=True,
    ),
    # 1.32-1.33: NodeLocalCRISocket alpha, off by default (#128031; #129278/#129279 in 1.33).
    MinorFacts(
        32, 33, "#128031 (RN-1.32), #129278, #129279 (RN-1.33), KEP-4656",
        kubeadm_writes=_ENDPOINT_PAUSE, cri_socket_record=CriSocketRecord.ANNOTATION_OR_INSTANCE_CONFIG,
        cgroup_driver_from_cri=True,
    ),
    # 1.34: NodeLocalCRISocket beta, on by default (#131981): the endpoint lives in instance-config.yaml.
    MinorFacts(
        34, 34, "#131981, #133157 (RN-1.34)",
        kubeadm_writes=("--pod-infra-container-image",), cri_socket_record=CriSocketRecord.INSTANCE_CONFIG,
        cgroup_driver_from_cri=True,
    ),
    # 1.35: kubeadm stops writing --pod-infra-container-image (#133778), the kubelet rejects it
    # (#133779); 1.36 NodeLocalCRISocket GA (#135742); 1.37 gate removed (#138645).
    MinorFacts(
        35, 37, "#133778, #133779 (RN-1.35), #135742 (RN-1.36), #138645 (RN-1.37)",
        cri_socket_record=CriSocketRecord.INSTANCE_CONFIG, cgroup_driver_from_cri=True,
    ),
)
# fmt: on


def facts_for(version: KubernetesVersion | int) -> MinorFacts:
    minor = version if isinstance(version, int) else version.minor
    for row in MINOR_FACTS:
        if row.first <= minor <= row.last:
            return row
    raise Refusal(
        f"no rules for kubelet 1.{minor}", hint=f"shimshift knows 1.{FIRST_MINOR} to 1.{LAST_MINOR}",
        code=VERSION_UNSUPPORTED,
    )


# --------------------------------------------------------------------------------------------------
# cri-dockerd facts (docs/runtime-facts.md#cri-dockerd)


@dataclass(frozen=True)
class CriDockerdFacts:
    """What holds for cri-dockerd ``first`` to ``last`` (inclusive)."""

    first: tuple[int, int, int]
    last: tuple[int, int, int]
    source: str
    default_pause_image: str
    default_network_plugin: str = "cni"
    cri_v1: bool = True
    cri_v1alpha2: bool = True
    reports_cgroup_driver: bool = False  # CRI RuntimeConfig


_PAUSE_36_OLD = "k8s.gcr.io/pause:3.6"
_PAUSE_310 = "registry.k8s.io/pause:3.10"
_Y, _N = True, False

# fmt: off
CRI_DOCKERD_FACTS: tuple[CriDockerdFacts, ...] = (
    # Network plugin default: none in v0.2.0-v0.2.3 (cri-dockerd#73), kubenet in v0.2.4
    # (#104), cni from v0.2.5 (PR#103). v0.2.x serves only CRI v1alpha2; v0.3.0 adds v1 (45857d7e);
    # v0.3.22+ and v0.4.2+ drop v1alpha2 (#487). RuntimeConfig (cgroup driver) from v0.3.17
    # (680cec44, PR#302).
    CriDockerdFacts((0, 2, 0), (0, 2, 0), "cri-dockerd v0.2.0", "k8s.gcr.io/pause:3.1", "", cri_v1=False),
    CriDockerdFacts((0, 2, 1), (0, 2, 3), "cri-dockerd#73", _PAUSE_36_OLD, "", cri_v1=False),
    CriDockerdFacts((0, 2, 4), (0, 2, 4), "cri-dockerd#104", _PAUSE_36_OLD, "kubenet", cri_v1=False),
    CriDockerdFacts((0, 2, 5), (0, 2, 5), "cri-dockerd PR#103", _PAUSE_36_OLD, cri_v1=False),
    CriDockerdFacts((0, 2, 6), (0, 2, 999), "cri-dockerd v0.2.6", "registry.k8s.io/pause:3.6", cri_v1=False),
    CriDockerdFacts((0, 3, 0), (0, 3, 9), "45857d7e", "registry.k8s.io/pause:3.6"),
    CriDockerdFacts((0, 3, 10), (0, 3, 16), "cri-dockerd v0.3.10", "registry.k8s.io/pause:3.9"),
    CriDockerdFacts((0, 3, 17), (0, 3, 21), "680cec44", _PAUSE_310, reports_cgroup_driver=True),
    CriDockerdFacts((0, 3, 22), (0, 3, 999), "#487", _PAUSE_310, cri_v1alpha2=_N, reports_cgroup_driver=_Y),
    # v0.4.0 (2025-04-16) came after v0.3.17 (2025-04-01): RuntimeConfig there is inferred from the dates.
    CriDockerdFacts((0, 4, 0), (0, 4, 1), "cri-dockerd v0.4.0, inferred", _PAUSE_310, reports_cgroup_driver=True),
    CriDockerdFacts((0, 4, 2), (0, 999, 999), "#487", _PAUSE_310, cri_v1alpha2=_N, reports_cgroup_driver=_Y),
)
# fmt: on


def cri_dockerd_facts(version: CriDockerdVersion) -> CriDockerdFacts | None:
    key = (version.major, version.minor, version.patch)
    for row in CRI_DOCKERD_FACTS:
        if row.first <= key <= row.last:
            return row
    return None


def cri_dockerd_serves(kubelet: KubernetesVersion, cri_dockerd: CriDockerdVersion) -> bool:
    """Whether the two share a CRI API version (docs/runtime-facts.md#cri-dockerd, CRI API versions)."""
    k = facts_for(kubelet)
    c = cri_dockerd_facts(cri_dockerd)
    if c is None:
        return True  # a version newer than the table: assume it serves v1, which every 1.23+ kubelet speaks
    return (k.cri_v1 and c.cri_v1) or (k.cri_v1alpha2 and c.cri_v1alpha2)


def normalize_endpoint(endpoint: str) -> str:
    """``/var/run/x.sock``, ``unix:///run/x.sock`` and ``unix:///var/run/x.sock`` name the same socket.

    The kubelet prepends ``unix://`` to a bare path (pkg/kubelet/util/util_unix.go@v1.23.17) and systemd
    treats /var/run as an alias of /run.
    """
    value = endpoint.strip()
    if value.startswith("unix://"):
        value = value[len("unix://") :]
    elif "://" in value:
        return value
    if value.startswith("/var/run/"):
        value = "/run/" + value[len("/var/run/") :]
    return "unix://" + value


def is_cri_dockerd_endpoint(endpoint: str) -> bool:
    return normalize_endpoint(endpoint) == normalize_endpoint(CRI_DOCKERD_ENDPOINT)


def is_dockershim_endpoint(endpoint: str) -> bool:
    return normalize_endpoint(endpoint) == normalize_endpoint(DOCKERSHIM_ENDPOINT)
