"""The traps on the journey: what each release after 1.24 breaks on a kubeadm cluster running Docker
Engine through cri-dockerd, as a :class:`Finding` per trap and node, known before anything changes.

Each rule below is a pure function of the schedule (schedule.py: which kubelet and which kubeadm reach
which release, on which node) and of facts read beforehand: the node's kubelet files (``NodeView``), its
cgroup version, its cri-dockerd and crictl versions, the kube-apiserver manifests' flags and the APIs
clients still request. A rule fires only when the journey crosses the release that sets the trap, and
names the node, what breaks, the drain or step where it would break, and the way on.

Severity: ERROR (blocking: the run stops before its first change) when the operator must act first -
a setting shimshift will not change on its own, or a binary only the operator can supply; WARNING when
the journey itself deals with it (the change is named) or when it breaks something outside the cluster's
own operation (clients of removed APIs).

Decisions where the issue was silent:

- Removed APIs are warnings: the objects stay readable under the API's newer version (the API server
  converts stored objects), only clients still calling the old version fail; shimshift cannot change
  those clients. The Kubernetes deprecated API migration guide
  (kubernetes.io/docs/reference/using-api/deprecation-guide/) gives each removal's release.
- cgroup v1 is blocking without ``--allow-cgroup-v1``; with it the finding stays, as a warning, so the
  run's report records that the operator accepted it.
- ExtendWebSocketsToKubelet (1.36) is blocking without ``--kubelet-websockets-off``: exec and attach
  through cri-dockerd fail (Mirantis/cri-dockerd#560, #569, open; exec broke on the 1.37.2 lab, where
  port-forward still answered: docs/lab.md), so the journey's own
  check at each stop - an exec into the canary - would fail half-way. Turning the gate off before the
  run is impossible on a journey from below 1.36 (older kubelets exit on the unknown gate), so the
  opt-in has the engine set it, node by node, in the drain where the node's kubelet first reaches 1.36
  (sequence.py, node_edits.py); with it the finding stays, as a warning naming that change. The option is
  named for what it changes (the kubelet's WebSocket streaming) and where (the kubelet, not the API
  server, whose gate stays on: it proxies WebSockets only to nodes that declare the feature).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from shimshift.core.errors import Refusal
from shimshift.core.findings import Finding, Severity, Subject
from shimshift.core.journey.node_edits import kubelet_flag_gate, kubelet_websockets_off
from shimshift.core.journey.schedule import ControlPlaneStep, Drain, Journey
from shimshift.core.node_files import INSTANCE_CONFIG, KUBEADM_FLAGS_ENV, KUBELET_CONFIG, NodeView
from shimshift.core.upgrade.cri_dockerd_swap import moves_back
from shimshift.core.versions import (
    FLAG_RULES_BY_NAME,
    CriDockerdVersion,
    FlagStatus,
    KubernetesVersion,
    cri_dockerd_serves,
    facts_for,
    flag_status,
)
from shimshift.core.wellknown import CRI_DOCKERD_ENDPOINT

__all__ = [
    "TRAP_CODES",
    "ApiserverManifest",
    "ClusterFacts",
    "NodeFacts",
    "RequestedApi",
    "TrapOptions",
    "journey_findings",
]

APISERVER_MANIFEST = "/etc/kubernetes/manifests/kube-apiserver.yaml"

#: Every code a trap's finding can carry, for scripts that match them (stable; add, never rename).
TRAP_CODES: frozenset[str] = frozenset(
    {
        "psp-admission-plugin",
        "removed-api-requested",
        "cri-dockerd-cri-version",
        "cri-dockerd-replacement-older",
        "cri-dockerd-replaced",
        "crictl-missing",
        "crictl-cri-version",
        "kubelet-flag-removed",
        "endpoint-only-in-config",
        "endpoint-flag-deprecated",
        "endpoint-missing",
        "separate-disk-gc",
        "websocket-streaming",
        "node-local-cri-socket",
        "cri-socket-autodetect",
        "cgroup-v1",
        "dockershim-under-new-control-plane",
        "dockershim-crictl-cri-version",
    }
)


@dataclass(frozen=True)
class NodeFacts:
    """What was read on one node before the journey. ``None``: not known (not read)."""

    name: str
    view: NodeView | None = None  # the kubelet's files, parsed
    cgroup_version: int | None = None  # 1 or 2 (`stat -fc %T /sys/fs/cgroup`: tmpfs or cgroup2fs)
    cri_dockerd: CriDockerdVersion | None = None  # installed, or the one `--cri-dockerd` brings
    crictl: KubernetesVersion | None = None  # crictl's release follows Kubernetes' minors
    crictl_found: bool | None = None  # False: no crictl on the PATH
    containerd_socket: bool | None = None  # Docker's containerd answers on /run/containerd/containerd.sock


@dataclass(frozen=True)
class ApiserverManifest:
    """The flags of one kube-apiserver static pod (``--name`` -> (value, line in the manifest))."""

    node: str
    flags: Mapping[str, tuple[str, int | None]]
    path: str = APISERVER_MANIFEST


@dataclass(frozen=True)
class RequestedApi:
    """An API version clients still request: the API server's ``apiserver_requested_deprecated_apis``
    metric (labels group, version, resource, removed_release) or an audit of the manifests in use."""

    group: str
    version: str
    resource: str
    removed_release: str | None = None  # the metric's label, e.g. "1.25"

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


@dataclass(frozen=True)
class ClusterFacts:
    apiservers: tuple[ApiserverManifest, ...] = ()
    requested_apis: tuple[RequestedApi, ...] = ()
    # Nodes whose runtime is neither dockershim nor cri-dockerd (containerd, CRI-O): the Docker traps
    # are not theirs, only the kubelet's own (removed flags, cgroup v1).
    other_runtimes: frozenset[str] = frozenset()


@dataclass(frozen=True)
class TrapOptions:
    allow_cgroup_v1: bool = False  # `--allow-cgroup-v1`: set failCgroupV1: false, recorded
    kubelet_websockets_off: bool = False  # `--kubelet-websockets-off`: the gate off in each 1.36 drain
    # `--cri-dockerd PATH`: the version it reports, put in place in each node's first drain
    # (sequence.py replaces_cri_dockerd), and the path, for the findings' words.
    replacement_cri_dockerd: CriDockerdVersion | None = None
    replacement_source: str = "--cri-dockerd"


# --------------------------------------------------------------------------------------------------
# Where the journey crosses a release


def _node_drains(journey: Journey, node: str) -> tuple[Drain, ...]:
    return journey.drains(node)


def first_drain_reaching(journey: Journey, node: str, minor: int) -> Drain | None:
    """The node's drain whose new kubelet is the first at 1.<minor> or later (None: it never gets there,
    or is there already)."""
    for drain in _node_drains(journey, node):
        if drain.from_release.minor < minor <= drain.to_release.minor:
            return drain
    return None


def control_plane_reaching(journey: Journey, minor: int) -> ControlPlaneStep | None:
    for step in journey.control_plane_steps():
        if step.release.minor >= minor and (journey.start.control_plane.minor < minor):
            return step
    return None


def _kubeadm_minors(journey: Journey) -> list[int]:
    """The kubeadm releases that run on each node in the journey, in order: every control-plane step's, on
    every node (``kubeadm upgrade apply`` or ``kubeadm upgrade node``; sequence.py says why a worker too)."""
    return [step.release.minor for step in journey.control_plane_steps()]


def _at(drain: Drain) -> str:
    return f"drain {drain.number} ({drain.from_release} -> {drain.to_release})"


def _node_subject(name: str) -> Subject:
    return Subject.of_node(name)


# --------------------------------------------------------------------------------------------------
# 1.25: PodSecurityPolicy and the APIs removed on the way

#: (group, version, resource) -> the minor that removes it: the deprecated API migration guide.
REMOVED_APIS: Mapping[tuple[str, str, str], int] = {
    ("admissionregistration.k8s.io", "v1beta1", "mutatingwebhookconfigurations"): 22,
    ("admissionregistration.k8s.io", "v1beta1", "validatingwebhookconfigurations"): 22,
    ("apiextensions.k8s.io", "v1beta1", "customresourcedefinitions"): 22,
    ("apiregistration.k8s.io", "v1beta1", "apiservices"): 22,
    ("certificates.k8s.io", "v1beta1", "certificatesigningrequests"): 22,
    ("coordination.k8s.io", "v1beta1", "leases"): 22,
    ("extensions", "v1beta1", "ingresses"): 22,
    ("networking.k8s.io", "v1beta1", "ingresses"): 22,
    ("networking.k8s.io", "v1beta1", "ingressclasses"): 22,
    ("rbac.authorization.k8s.io", "v1beta1", "clusterroles"): 22,
    ("rbac.authorization.k8s.io", "v1beta1", "clusterrolebindings"): 22,
    ("rbac.authorization.k8s.io", "v1beta1", "roles"): 22,
    ("rbac.authorization.k8s.io", "v1beta1", "rolebindings"): 22,
    ("scheduling.k8s.io", "v1beta1", "priorityclasses"): 22,
    ("storage.k8s.io", "v1beta1", "csidrivers"): 22,
    ("storage.k8s.io", "v1beta1", "csinodes"): 22,
    ("storage.k8s.io", "v1beta1", "storageclasses"): 22,
    ("storage.k8s.io", "v1beta1", "volumeattachments"): 22,
    ("batch", "v1beta1", "cronjobs"): 25,
    ("discovery.k8s.io", "v1beta1", "endpointslices"): 25,
    ("events.k8s.io", "v1beta1", "events"): 25,
    ("autoscaling", "v2beta1", "horizontalpodautoscalers"): 25,
    ("policy", "v1beta1", "poddisruptionbudgets"): 25,
    ("policy", "v1beta1", "podsecuritypolicies"): 25,
    ("node.k8s.io", "v1beta1", "runtimeclasses"): 25,
    ("flowcontrol.apiserver.k8s.io", "v1beta1", "flowschemas"): 26,
    ("flowcontrol.apiserver.k8s.io", "v1beta1", "prioritylevelconfigurations"): 26,
    ("autoscaling", "v2beta2", "horizontalpodautoscalers"): 26,
    ("storage.k8s.io", "v1beta1", "csistoragecapacities"): 27,
    ("flowcontrol.apiserver.k8s.io", "v1beta2", "flowschemas"): 29,
    ("flowcontrol.apiserver.k8s.io", "v1beta2", "prioritylevelconfigurations"): 29,
    ("flowcontrol.apiserver.k8s.io", "v1beta3", "flowschemas"): 32,
    ("flowcontrol.apiserver.k8s.io", "v1beta3", "prioritylevelconfigurations"): 32,
}

PSP_PLUGIN = "PodSecurityPolicy"


def psp_admission_plugin(journey: Journey, cluster: ClusterFacts) -> list[Finding]:
    """1.25 removes PodSecurityPolicy (CHANGELOG/CHANGELOG-1.25.md): a kube-apiserver whose
    ``--enable-admission-plugins`` still names it exits on start ("plugin PodSecurityPolicy not found").
    kubeadm writes the manifest from ClusterConfiguration ``apiServer.extraArgs`` on every apply, so the
    plugin must leave that first; the manifest follows."""
    step = control_plane_reaching(journey, 25)
    if step is None:
        return []
    out = []
    for manifest in cluster.apiservers:
        value, line = manifest.flags.get("--enable-admission-plugins", ("", None))
        if PSP_PLUGIN not in [item.strip() for item in value.split(",")]:
            continue
        out.append(
            Finding(
                Severity.ERROR,
                "psp-admission-plugin",
                f"kube-apiserver {step.release} does not start with the {PSP_PLUGIN} admission plugin enabled "
                "(PodSecurityPolicy is removed in 1.25)",
                Subject.of_file(manifest.path, line, node=manifest.node),
                f"move the policies to Pod Security Admission, then drop {PSP_PLUGIN} from apiServer.extraArgs "
                "enable-admission-plugins in the kubeadm-config ConfigMap and from this manifest",
                "--enable-admission-plugins",
            )
        )
    return out


def removed_apis(journey: Journey, cluster: ClusterFacts) -> list[Finding]:
    out = []
    for api in cluster.requested_apis:
        minor = REMOVED_APIS.get((api.group, api.version, api.resource))
        if minor is None and api.removed_release:
            minor = int(api.removed_release.split(".")[1])
        step = None if minor is None else control_plane_reaching(journey, minor)
        if step is None:
            continue
        out.append(
            Finding(
                Severity.WARNING,
                "removed-api-requested",
                f"clients still request {api.resource} in {api.group_version}, removed in 1.{minor}: they fail "
                f"once the control plane reaches {step.release} (stored objects stay, served by the newer version)",
                hint=f"move those clients and manifests off {api.group_version} before the 1.{minor} apply "
                "(kubernetes.io/docs/reference/using-api/deprecation-guide/)",
                setting=f"{api.group_version}/{api.resource}",
            )
        )
    return out


# --------------------------------------------------------------------------------------------------
# 1.26: CRI v1alpha2 removed; crictl


def cri_dockerd_replacement(journey: Journey, node: NodeFacts, options: TrapOptions) -> list[Finding]:
    """What `--cri-dockerd PATH` does to the node: refused when it is older than the node's own (a journey
    never moves cri-dockerd back); a warning, naming it, where the node's own would not serve a kubelet of
    the journey and the replacement, put in place in the node's first drain, does."""
    replacement, own = options.replacement_cri_dockerd, node.cri_dockerd
    if replacement is None or own is None or not _node_drains(journey, node.name):
        return []
    first = _node_drains(journey, node.name)[0]
    if moves_back(replacement, own):
        return [
            Finding(
                Severity.ERROR,
                "cri-dockerd-replacement-older",
                f"{options.replacement_source} is cri-dockerd {replacement}, older than the node's {own}",
                _node_subject(node.name),
                f"give --cri-dockerd a cri-dockerd of {own} or later (the journey does not move it back), or leave "
                "--cri-dockerd out",
                "--cri-dockerd",
            )
        ]
    unserved = [drain for drain in _node_drains(journey, node.name) if not cri_dockerd_serves(drain.to_release, own)]
    if not unserved or not cri_dockerd_serves(unserved[0].to_release, replacement):
        return []
    return [
        Finding(
            Severity.WARNING,
            "cri-dockerd-replaced",
            f"cri-dockerd {own} shares no CRI API version with kubelet {unserved[0].to_release}; "
            f"{options.replacement_source} (cri-dockerd {replacement}) replaces it in {_at(first)}",
            _node_subject(node.name),
            "nothing: the drain keeps the old binary beside the new one and puts it back if the drain rolls back",
            "--cri-dockerd",
        )
    ]


def cri_versions(journey: Journey, node: NodeFacts, options: TrapOptions) -> list[Finding]:
    """1.26 kubelets speak CRI v1 only (kubernetes/kubernetes#110618); cri-dockerd 0.2 serves only
    v1alpha2, 0.3.22+ and 0.4.2+ only v1 (Mirantis/cri-dockerd#487). kubeadm up to 1.30 reaches the
    runtime through crictl (cmd/kubeadm/app/util/runtime/runtime.go at v1.30.14), whose CRI versions
    follow the same minors; cri-tools 1.26 with cri-dockerd 0.2 broke `kubeadm upgrade` (kubernetes/kubeadm#2819)."""
    cri_dockerd = options.replacement_cri_dockerd or node.cri_dockerd
    out = cri_dockerd_replacement(journey, node, options)
    replaced = options.replacement_cri_dockerd is not None
    for drain in _node_drains(journey, node.name):
        if cri_dockerd is not None and not cri_dockerd_serves(drain.to_release, cri_dockerd):
            out.append(
                Finding(
                    Severity.ERROR,
                    "cri-dockerd-cri-version",
                    f"cri-dockerd {cri_dockerd} and kubelet {drain.to_release} share no CRI API version: the "
                    f"kubelet of {_at(drain)} cannot reach the runtime",
                    _node_subject(node.name),
                    "give --cri-dockerd PATH a cri-dockerd 0.3 or later (each node's first drain puts it in place), "
                    "or install cri-dockerd 0.3 or later on the node before the journey; `plan --to` checks again"
                    if not replaced
                    else "give a cri-dockerd that serves CRI v1",
                )
            )
            break
    kubeadm_minors = [minor for minor in _kubeadm_minors(journey) if minor <= 30]
    if kubeadm_minors and node.crictl_found is False:
        out.append(
            Finding(
                Severity.ERROR,
                "crictl-missing",
                f"kubeadm 1.{kubeadm_minors[0]} reaches cri-dockerd only through crictl, and this node has none "
                "(its preflight requires crictl up to 1.30)",
                _node_subject(node.name),
                "install cri-tools (crictl) of the control plane's minor on the node",
                "crictl",
            )
        )
    elif (
        kubeadm_minors
        and node.crictl is not None
        and cri_dockerd is not None
        and not cri_dockerd_serves(node.crictl, cri_dockerd)
    ):
        out.append(
            Finding(
                Severity.ERROR,
                "crictl-cri-version",
                f"crictl {node.crictl} and cri-dockerd {cri_dockerd} share no CRI API version: kubeadm "
                f"1.{kubeadm_minors[0]} cannot pull images or list containers through it",
                _node_subject(node.name),
                "install a crictl (cri-tools) that speaks a CRI version cri-dockerd serves (1.23-1.25 "
                "speak both; 1.26 and later v1 only)",
                "crictl",
            )
        )
    return out


# --------------------------------------------------------------------------------------------------
# Kubelet flags removed on the way (1.27 --container-runtime, 1.35 --pod-infra-container-image)


def removed_kubelet_flags(journey: Journey, node: NodeFacts) -> list[Finding]:
    """A kubelet exits on an unknown flag. kubeadm strips ``--container-runtime`` only in its 1.26
    upgrade and ``--pod-infra-container-image`` only in its 1.35 post-upgrade phase, and only from
    kubeadm-flags.env (cmd/kubeadm/app/cmd/phases/upgrade/postupgrade.go at v1.35.8; kubernetes/kubeadm#3281
    for extraArgs), so a kubelet that jumps past 1.26 or 1.35, or takes the flag from another file, starts
    with it. The dockershim-only flags are the migration's (node_planner.py) and are left out here."""
    if node.view is None:
        return []
    out = []
    for flag in node.view.flags:
        rule = FLAG_RULES_BY_NAME.get(flag.name)
        if rule is None or rule.removed is None or rule.dockershim_only:
            continue
        drain = first_drain_reaching(journey, node.name, rule.removed)
        if drain is None or flag_status(flag.name, drain.to_release.minor) is not FlagStatus.REMOVED:
            continue
        moved = f"; its value goes to cri-dockerd's {rule.cri_dockerd_flag}" if rule.cri_dockerd_flag else ""
        out.append(
            Finding(
                Severity.WARNING,
                "kubelet-flag-removed",
                f"kubelet {drain.to_release} exits on {flag.name} (removed in 1.{rule.removed}, {rule.source}); "
                f"it is first started in {_at(drain)}",
                Subject.of_file(flag.file, flag.line, node=node.name),
                f"the drain removes it from {flag.file} before the kubelet starts (the migration's engine, "
                f"planned for kubelet {drain.to_release}){moved}",
                flag.name,
            )
        )
    return out


def endpoint_home(journey: Journey, node: NodeFacts) -> list[Finding]:
    """1.27 moves the endpoint into KubeletConfiguration ``containerRuntimeEndpoint``
    (kubernetes/kubernetes#112136) and defaults it to containerd's socket
    (pkg/kubelet/apis/config/v1beta1/defaults.go at v1.27.16). But /var/lib/kubelet/config.yaml is no home
    for a node's own setting: ``kubeadm upgrade node`` writes it again from the cluster's kubelet-config
    ConfigMap (cmd/kubeadm/app/cmd/phases/upgrade/node/kubeletconfig.go at v1.28.15), so an endpoint
    kept only there is gone after the node's first kubeadm upgrade and the kubelet falls back to
    containerd. kubeadm keeps it in kubeadm-flags.env up to 1.33 and in instance-config.yaml from 1.34.
    A dockershim node gets its endpoint from the migration, in its first drain."""
    view = node.view
    if view is None or node.name in journey.start.dockershim:
        return []
    flag = view.last("--container-runtime-endpoint")
    has_flag = flag is not None and bool(flag.value)
    config, instance = view.config, view.instance_config
    in_config = config is not None and bool(config.get_str("containerRuntimeEndpoint"))
    in_instance = instance is not None and bool(instance.get_str("containerRuntimeEndpoint"))
    kubeadm = _kubeadm_minors(journey)
    drain = first_drain_reaching(journey, node.name, 27)
    out = []
    if in_config and not has_flag and not in_instance and kubeadm and kubeadm[0] < 34:
        out.append(
            Finding(
                Severity.ERROR,
                "endpoint-only-in-config",
                f"the runtime endpoint is only in {KUBELET_CONFIG}, which kubeadm 1.{kubeadm[0]} writes again from "
                "the kube-system/kubelet-config ConfigMap when it upgrades the node: the kubelet then falls back "
                "to containerd's socket",
                Subject.of_file(
                    KUBELET_CONFIG, config.line_of("containerRuntimeEndpoint") if config else None, node=node.name
                ),
                f"add --container-runtime-endpoint={CRI_DOCKERD_ENDPOINT} to KUBELET_KUBEADM_ARGS in "
                f"{KUBEADM_FLAGS_ENV}, where kubeadm keeps it",
                "containerRuntimeEndpoint",
            )
        )
    elif drain is not None and has_flag and flag is not None and not in_config:
        out.append(
            Finding(
                Severity.WARNING,
                "endpoint-flag-deprecated",
                f"kubelet {drain.to_release} takes the runtime endpoint from KubeletConfiguration; the "
                f"--container-runtime-endpoint flag is deprecated from 1.27 (first in {_at(drain)})",
                Subject.of_file(flag.file, flag.line, node=node.name),
                "nothing to do: the kubelet still takes the flag, and kubeadm 1.34 moves it into "
                f"{INSTANCE_CONFIG} ({KUBELET_CONFIG} is written again by every kubeadm upgrade)",
                "containerRuntimeEndpoint",
            )
        )
    elif drain is not None and not (has_flag or in_config or in_instance):
        out.append(
            Finding(
                Severity.ERROR,
                "endpoint-missing",
                f"no runtime endpoint is set: kubelet {drain.to_release} of {_at(drain)} would use containerd's "
                "socket, not cri-dockerd's",
                _node_subject(node.name),
                f"add --container-runtime-endpoint={CRI_DOCKERD_ENDPOINT} to KUBELET_KUBEADM_ARGS in "
                f"{KUBEADM_FLAGS_ENV}",
                "containerRuntimeEndpoint",
            )
        )
    return out


# --------------------------------------------------------------------------------------------------
# 1.31 KubeletSeparateDiskGC; 1.36 WebSocket streaming


def _kubelet_gate(view: NodeView | None, gate: str) -> bool | None:
    config = None if view is None else view.config
    gates = None if config is None else config.data.get("featureGates")
    value = gates.get(gate) if isinstance(gates, dict) else None
    return value if isinstance(value, bool) else None


def _apiserver_gate(cluster: ClusterFacts, gate: str) -> bool | None:
    for manifest in cluster.apiservers:
        value, _ = manifest.flags.get("--feature-gates", ("", None))
        for item in value.split(","):
            name, _, setting = item.partition("=")
            if name.strip() == gate:
                return setting.strip().lower() == "true"
    return None


def separate_disk_gc(journey: Journey, node: NodeFacts) -> list[Finding]:
    """1.31 turns KubeletSeparateDiskGC on (kubernetes/kubernetes#120914): the kubelet's image GC and
    eviction manager want ContainerFilesystems in ImageFsInfo, which cri-dockerd sent only from
    Mirantis/cri-dockerd#407 (release/0.3 branch; issue #408). Without it: ImageGCFailed "missing image
    stats", and no image garbage collection (rancher/rancher#47698)."""
    drain = first_drain_reaching(journey, node.name, 31)
    if drain is None or _kubelet_gate(node.view, "KubeletSeparateDiskGC") is False:
        return []
    return [
        Finding(
            Severity.WARNING,
            "separate-disk-gc",
            f"kubelet {drain.to_release} (from {_at(drain)}) garbage-collects images by the container "
            "filesystem stats cri-dockerd reports; a cri-dockerd without Mirantis/cri-dockerd#407 reports "
            "none and image GC fails (ImageGCFailed: missing image stats)",
            _node_subject(node.name),
            "use a cri-dockerd that carries #407, or set featureGates: {KubeletSeparateDiskGC: false} in the "
            "kubelet configuration (kube-system/kubelet-config)",
            "KubeletSeparateDiskGC",
        )
    ]


def _command_line_gate(view: NodeView | None, gate: str) -> bool | None:
    try:
        return None if view is None else kubelet_flag_gate(view, gate)
    except Refusal:  # a value the kubelet refuses: the drain's preflight refuses it, naming file and line
        return None


def websocket_streaming(
    journey: Journey, node: NodeFacts, cluster: ClusterFacts, options: TrapOptions
) -> list[Finding]:
    """1.36 turns ExtendWebSocketsToKubelet on: the kubelet proxies WebSocket exec/attach/port-forward to
    the runtime's streaming server, and cri-dockerd's relative redirect is then taken for HTTPS ("server
    gave HTTP response to HTTPS client": Mirantis/cri-dockerd#560, #569; kubespray#13360). On the 1.37.2
    lab exec broke and port-forward still answered (docs/lab.md); attach takes exec's path in the kubelet
    (getAttach, pkg/kubelet/server/server.go at v1.37.2). The kubelet's
    gate alone decides it: the API server proxies WebSockets only to a node whose status declares the
    feature (pkg/registry/core/pod/rest/subresources.go at v1.37.2)."""
    drain = first_drain_reaching(journey, node.name, 36)
    gate = "ExtendWebSocketsToKubelet"
    if (
        drain is None
        or _kubelet_gate(node.view, gate) is False
        or _command_line_gate(node.view, gate) is False
        or _apiserver_gate(cluster, gate) is False
    ):
        return []
    if options.kubelet_websockets_off:
        try:
            if node.view is not None:
                kubelet_websockets_off(node.view)  # the drain's own edit: refused now, not at that drain
        except Refusal as refused:
            return [
                Finding(
                    Severity.ERROR,
                    "websocket-streaming",
                    f"--kubelet-websockets-off cannot turn {gate} off on this node: {refused.what}",
                    refused.subject or _node_subject(node.name),
                    refused.hint or "fix the kubelet's --feature-gates, then plan again",
                    gate,
                )
            ]
        return [
            Finding(
                Severity.WARNING,
                "websocket-streaming",
                f"kubelet {drain.to_release} ({_at(drain)}) would break kubectl exec and attach "
                "through cri-dockerd (Mirantis/cri-dockerd#560, #569); --kubelet-websockets-off writes "
                f"--feature-gates={gate}=false into KUBELET_EXTRA_ARGS in that drain (accepted, recorded)",
                _node_subject(node.name),
                "take the flag out of KUBELET_EXTRA_ARGS once cri-dockerd answers WebSocket streams",
                gate,
            )
        ]
    return [
        Finding(
            Severity.ERROR,
            "websocket-streaming",
            f"kubectl exec and attach to pods on this node fail once its kubelet is "
            f"{drain.to_release} ({_at(drain)}): cri-dockerd's streaming server answers the WebSocket "
            "stream with plain HTTP (Mirantis/cri-dockerd#560, #569)",
            _node_subject(node.name),
            f"pass --kubelet-websockets-off: shimshift then sets --feature-gates={gate}=false in the node's "
            "KUBELET_EXTRA_ARGS in that drain (a kubelet before 1.36 refuses the gate, so it cannot be set "
            "before the run)",
            gate,
        )
    ]


# --------------------------------------------------------------------------------------------------
# 1.34 NodeLocalCRISocket; 1.37 socket detection


def node_local_cri_socket(journey: Journey, node: NodeFacts) -> list[Finding]:
    """kubeadm 1.34 (NodeLocalCRISocket on) keeps the socket in /var/lib/kubelet/instance-config.yaml:
    on its first upgrade of a node without that file it takes ``--container-runtime-endpoint`` out of
    kubeadm-flags.env and writes it there - an EMPTY value when the flag was not in that file, which
    leaves the kubelet on containerd's default - and drops the cri-socket annotation
    (cmd/kubeadm/app/phases/kubelet/flags.go and phases/upgrade/postupgrade.go at v1.34.12). kubeadm 1.37
    reads only that file; without it, it detects the socket and falls back to containerd when Docker's
    containerd socket also answers (cmd/kubeadm/app/util/config/cluster.go at v1.37.2)."""
    view = node.view
    if view is None or view.instance_config is not None:
        return []
    minors = _kubeadm_minors(journey)
    first_new = next((minor for minor in minors if minor >= 34), None)
    if first_new is None:
        return []
    # A dockershim node's first drain (at 1.25 at the latest) writes the endpoint flag into kubeadm-flags.env
    # (node_planner.py's kubelet edits), long before any kubeadm 1.34 runs on it.
    in_flags_file = node.name in journey.start.dockershim or any(
        flag.name == "--container-runtime-endpoint" and flag.file == KUBEADM_FLAGS_ENV for flag in view.flags
    )
    if first_new >= 37:
        detected = "containerd's" if node.containerd_socket else "whichever socket answers"
        return [
            Finding(
                Severity.ERROR,
                "cri-socket-autodetect",
                f"kubeadm 1.37 finds no {INSTANCE_CONFIG} and detects the runtime: with Docker's containerd "
                f"socket live it picks {detected}, not cri-dockerd's",
                Subject.of_file(INSTANCE_CONFIG, node=node.name),
                f"shimshift writes {INSTANCE_CONFIG} with containerRuntimeEndpoint: unix:///var/run/cri-dockerd.sock "
                "before kubeadm 1.37 runs on the node",
                "containerRuntimeEndpoint",
            )
        ]
    if in_flags_file:
        return [
            Finding(
                Severity.WARNING,
                "node-local-cri-socket",
                f"kubeadm 1.{first_new} moves the runtime endpoint from {KUBEADM_FLAGS_ENV} to {INSTANCE_CONFIG} "
                "and removes the kubeadm.alpha.kubernetes.io/cri-socket annotation",
                Subject.of_file(INSTANCE_CONFIG, node=node.name),
                "nothing to do: the endpoint moves with its value; shimshift checks it after that step",
                "containerRuntimeEndpoint",
            )
        ]
    return [
        Finding(
            Severity.WARNING,
            "node-local-cri-socket",
            f"kubeadm 1.{first_new} finds no --container-runtime-endpoint in {KUBEADM_FLAGS_ENV} and writes an "
            f"empty containerRuntimeEndpoint into {INSTANCE_CONFIG}: the kubelet would fall back to "
            "containerd's socket",
            Subject.of_file(INSTANCE_CONFIG, node=node.name),
            f"shimshift writes {INSTANCE_CONFIG} with containerRuntimeEndpoint: unix:///var/run/cri-dockerd.sock "
            f"before kubeadm 1.{first_new} runs on the node",
            "containerRuntimeEndpoint",
        )
    ]


# --------------------------------------------------------------------------------------------------
# 1.35 cgroup v1


def cgroup_v1(journey: Journey, node: NodeFacts, options: TrapOptions) -> list[Finding]:
    """From 1.35 ``failCgroupV1`` defaults to true: the kubelet refuses to start on a cgroup v1 host
    (pkg/kubelet/apis/config/v1beta1/defaults.go and validation/validation_linux.go at v1.35.8), and
    kubeadm's SystemVerification errors when it checks a 1.35+ kubelet (k8s.io/system-validators
    v1.12.1). kubeadm never sets the field; moving a host to cgroup v2 needs a reboot."""
    drain = first_drain_reaching(journey, node.name, 35)
    if drain is None or node.cgroup_version != 1:
        return []
    config = None if node.view is None else node.view.config
    if config is not None and config.data.get("failCgroupV1") is False:
        return []
    if options.allow_cgroup_v1:
        return [
            Finding(
                Severity.WARNING,
                "cgroup-v1",
                f"the host runs cgroup v1; kubelet {drain.to_release} ({_at(drain)}) starts only because "
                "--allow-cgroup-v1 sets failCgroupV1: false (accepted by the operator, recorded)",
                _node_subject(node.name),
                "plan the move to cgroup v2: cgroup v1 support is deprecated and will be removed",
                "failCgroupV1",
            )
        ]
    return [
        Finding(
            Severity.ERROR,
            "cgroup-v1",
            f"kubelet {drain.to_release} refuses to start on this cgroup v1 host ({_at(drain)}): "
            "failCgroupV1 defaults to true from 1.35",
            _node_subject(node.name),
            "boot the host with cgroup v2 (systemd.unified_cgroup_hierarchy=1), or pass --allow-cgroup-v1 to "
            "set failCgroupV1: false in kube-system/kubelet-config and ignore kubeadm's SystemVerification",
            "failCgroupV1",
        )
    ]


# --------------------------------------------------------------------------------------------------
# dockershim under a newer control plane


def dockershim_under_new_control_plane(journey: Journey, node: NodeFacts) -> list[Finding]:
    """A node whose first drain comes after the 1.24 apply stays on dockershim under a newer control
    plane: within the skew policy, and kubeadm 1.24 keeps a kubelet older than 1.24 on its built-in
    dockershim (kubernetes/kubernetes#106973); but kubeadm 1.25 no longer writes dockershim's flags, and
    a control-plane node then runs kubeadm 1.24 (and 1.25) on its dockershim socket, through crictl. The
    1.23 dockershim serves CRI v1alpha2 only (kubernetes/kubernetes#106798, #106803) and crictl 1.26 and
    later speak v1 only: kubeadm's image pre-pull then fails (killer-sh/cks-course-environment#43)."""
    name = node.name
    if name not in journey.start.dockershim:
        return []
    drains = journey.drains(name)
    if not drains:
        return []
    index = journey.steps.index(drains[0])
    before = [s for s in journey.steps[:index] if isinstance(s, ControlPlaneStep) and s.release.minor >= 24]

    def in_the_drain(step: ControlPlaneStep) -> bool:
        # The node's kubeadm of its first drain's release runs in that drain, after the migration
        # (sequence.py), unless the apply is forced.
        return step.release == drains[0].to_release and not step.force

    # The node that applies moves its own API server inside its drain; the others see it move before.
    before = [s for s in before if not (in_the_drain(s) and s.apply_on == name)]
    if not before:
        return []
    out = [
        Finding(
            Severity.WARNING,
            "dockershim-under-new-control-plane",
            f"the node stays on dockershim (kubelet {drains[0].from_release}) while the control plane goes to "
            f"{before[-1].release}; it moves to cri-dockerd in its {_at(drains[0])}",
            _node_subject(name),
            "keep its cri-socket annotation on dockershim until that drain",
        )
    ]
    control_plane = any(n.name == name and n.control_plane for n in journey.nodes)
    on_dockershim = [s for s in before if not in_the_drain(s)]  # kubeadm's own steps there, via crictl
    if control_plane and on_dockershim and node.crictl is not None and not facts_for(node.crictl).cri_v1alpha2:
        out.append(
            Finding(
                Severity.ERROR,
                "dockershim-crictl-cri-version",
                f"kubeadm {on_dockershim[0].release} reaches this node's dockershim through crictl {node.crictl}, "
                "which speaks CRI v1 only; the 1.23 dockershim serves v1alpha2 only",
                _node_subject(name),
                "install a crictl (cri-tools) 1.23 to 1.25 on the node for the journey's first steps",
                "crictl",
            )
        )
    return out


# --------------------------------------------------------------------------------------------------
# All of them


def journey_findings(
    journey: Journey,
    *,
    cluster: ClusterFacts,
    nodes: Sequence[NodeFacts],
    options: TrapOptions | None = None,
) -> list[Finding]:
    """Every trap the journey meets: the cluster's first, then each node's in the schedule's order."""
    options = options or TrapOptions()
    out = psp_admission_plugin(journey, cluster) + removed_apis(journey, cluster)
    facts = {node.name: node for node in nodes}
    for name in (node.name for node in journey.nodes):
        node = facts.get(name, NodeFacts(name))
        if name in cluster.other_runtimes:
            out += removed_kubelet_flags(journey, node) + cgroup_v1(journey, node, options)
            continue
        out += dockershim_under_new_control_plane(journey, node)
        out += cri_versions(journey, node, options)
        out += removed_kubelet_flags(journey, node)
        out += endpoint_home(journey, node)
        out += separate_disk_gc(journey, node)
        out += node_local_cri_socket(journey, node)
        out += cgroup_v1(journey, node, options)
        out += websocket_streaming(journey, node, cluster, options)
    return out
