"""Upgrade readiness: would a kubelet of the target version start, and on the runtime you expect?

For a target version (e.g. 1.24, 1.27, 1.35) and the node's files as they are, list every setting that
would stop that kubelet from starting (a removed flag, kubernetes/website#34755) or silently change its
runtime (dockershim gone; no endpoint on 1.27+, where the default is containerd; the endpoint alone before
1.24, kubernetes/website#42442; a pause image or cgroup driver that differs between kubelet, cri-dockerd
and Docker, Mirantis/cri-dockerd#230 and #101). The facts with their sources: docs/runtime-facts.md.
Each finding names the file and line. Pure: the files come in as bytes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shimshift.core.dropin import cri_dockerd_exec_start
from shimshift.core.findings import Finding, Severity, Subject
from shimshift.core.flagfile import group_flags
from shimshift.core.kubelet_settings import (
    ENDPOINT_FIELD,
    ENDPOINT_FLAG,
    CgroupDrivers,
    cgroup_driver,
    compare_cgroup_drivers,
    configured_endpoint,
)
from shimshift.core.listeners import STREAMING_FLAG, streaming_bind_address
from shimshift.core.node_files import CRI_DOCKERD_DROPIN, KUBELET_CONFIG, NodeView
from shimshift.core.versions import (
    FLAG_RULES_BY_NAME,
    CriDockerdVersion,
    EndpointHome,
    FlagStatus,
    KubernetesVersion,
    cri_dockerd_facts,
    cri_dockerd_serves,
    facts_for,
    flag_status,
    is_cri_dockerd_endpoint,
    is_dockershim_endpoint,
    parse_cgroup_driver,
    parse_cri_dockerd_version,
    parse_kubelet_version,
)
from shimshift.core.wellknown import CONTAINERD_ENDPOINT

if TYPE_CHECKING:
    from collections.abc import Mapping


__all__ = ["Finding", "Severity", "check_readiness"]


def _finding(
    code: str,
    file: str | None,
    line: int | None,
    severity: Severity,
    message: str,
    hint: str,
    flag: str | None = None,
) -> Finding:
    subject = Subject.of_file(file, line) if file else None
    return Finding(severity, code, message, subject, hint, flag)


def check_readiness(
    *,
    target_version: str,
    files: Mapping[str, bytes | None],
    cri_dockerd_version: str | None = None,
    docker_cgroup_driver: str | None = None,
    node: str | None = None,
) -> list[Finding]:
    """Findings for starting a kubelet of ``target_version`` on these files, in file order.

    Raises Refusal for unreadable input (the same refusals as plan_node).
    """
    target = parse_kubelet_version(target_version, what="target version")
    cri_version = None if cri_dockerd_version is None else parse_cri_dockerd_version(cri_dockerd_version)
    docker_driver = None if docker_cgroup_driver is None else parse_cgroup_driver(docker_cgroup_driver)
    view = NodeView.load(files, node=node)
    out: list[Finding] = []
    out += _flag_findings(view, target)
    endpoint = _runtime_findings(view, target, out)
    uses_cri_dockerd = endpoint is not None and is_cri_dockerd_endpoint(endpoint)
    if uses_cri_dockerd:
        out += _cri_dockerd_findings(view, target, cri_version)
        out += _streaming_findings(view, cri_version)
    out += _cgroup_findings(view, target, cri_version if uses_cri_dockerd else None, docker_driver)
    return out


def _flag_findings(view: NodeView, target: KubernetesVersion) -> list[Finding]:
    out: list[Finding] = []
    for f in view.flags:
        rule = FLAG_RULES_BY_NAME.get(f.name)
        if rule is None:
            continue
        status = flag_status(f.name, target.minor)
        if status is FlagStatus.REMOVED:
            if rule.cri_dockerd_flag is not None:
                hint = (
                    f"set {rule.cri_dockerd_flag} on cri-dockerd, then delete it here (shimshift flags plan)"
                )
            else:
                hint = "delete it"
            out.append(
                _finding(
                    "flag-removed",
                    f.file,
                    f.line,
                    Severity.ERROR,
                    f"kubelet {target} exits on {f.name}: removed in 1.{rule.removed} ({rule.source})",
                    hint,
                    f.name,
                )
            )
        elif status is FlagStatus.DEPRECATED:
            removal = f"; removed in 1.{rule.removed}" if rule.removed is not None else ""
            out.append(
                _finding(
                    "flag-deprecated",
                    f.file,
                    f.line,
                    Severity.WARNING,
                    f"{f.name} is deprecated in kubelet {target}{removal} ({rule.source})",
                    "plan its removal before that version",
                    f.name,
                )
            )
    return out


def _runtime_findings(view: NodeView, target: KubernetesVersion, out: list[Finding]) -> str | None:
    """Append findings about which runtime the target kubelet would use; return its endpoint."""
    facts = facts_for(target)
    runtime = view.last("--container-runtime")
    flag = view.last(ENDPOINT_FLAG)
    config = view.config
    field = config.get_str(ENDPOINT_FIELD) if config is not None else None
    if facts.has_dockershim:
        if runtime is None or runtime.value == "docker":
            if flag is not None and flag.value and not is_dockershim_endpoint(flag.value):
                out.append(
                    _finding(
                        "endpoint-without-remote",
                        flag.file,
                        flag.line,
                        Severity.ERROR,
                        f"kubelet {target} without --container-runtime=remote runs its built-in dockershim "
                        "and "
                        f"serves it at {flag.value}, taking that socket over (website#42442)",
                        "add --container-runtime=remote next to the endpoint",
                        flag.name,
                    )
                )
            return None  # dockershim: fine before 1.24
        return flag.value if flag is not None and flag.value else facts.default_endpoint
    if (
        runtime is not None
        and runtime.value != "remote"
        and flag_status(runtime.name, target.minor) is not (FlagStatus.REMOVED)
    ):
        out.append(
            _finding(
                "runtime-not-remote",
                runtime.file,
                runtime.line,
                Severity.ERROR,
                f"--container-runtime={runtime.value}: kubelet {target} has no dockershim; "
                "remote is the only value",
                "migrate the node to cri-dockerd first (shimshift flags plan)",
                runtime.name,
            )
        )
    if field is not None and facts.endpoint_home is EndpointHome.FLAG and config is not None:
        out.append(
            _finding(
                "config-field-ignored",
                config.path,
                config.line_of("containerRuntimeEndpoint"),
                Severity.WARNING,
                f"containerRuntimeEndpoint is a config field only from 1.27; kubelet {target} ignores it",
                "give the endpoint as --container-runtime-endpoint",
                None,
            )
        )
    written = configured_endpoint(view, facts)
    if written is not None:
        endpoint: str | None = written.value
        where: tuple[str | None, int | None] = (written.file, written.line)
    else:
        endpoint, where = None, (view.dropin.path if config is None else KUBELET_CONFIG, None)
    dockershim_today = runtime is None and endpoint is None
    if endpoint is None:
        if facts.default_endpoint == CONTAINERD_ENDPOINT:
            out.append(
                _finding(
                    "no-endpoint-containerd-default",
                    where[0],
                    where[1],
                    Severity.ERROR,
                    f"no container runtime endpoint: kubelet {target} defaults to containerd "
                    f"({CONTAINERD_ENDPOINT}), "
                    "not Docker Engine (kubelet defaults.go@v1.27.0)",
                    "migrate to cri-dockerd first (shimshift flags plan) or set containerRuntimeEndpoint",
                )
            )
        else:
            out.append(
                _finding(
                    "no-endpoint",
                    where[0],
                    where[1],
                    Severity.ERROR,
                    f"no --container-runtime-endpoint: kubelet {target} has no dockershim and needs one"
                    + (" (this node uses dockershim today)" if dockershim_today else ""),
                    "migrate to cri-dockerd first (shimshift flags plan)",
                    "--container-runtime-endpoint",
                )
            )
        return None
    if is_dockershim_endpoint(endpoint):
        out.append(
            _finding(
                "dockershim-endpoint",
                where[0],
                where[1],
                Severity.ERROR,
                f"the endpoint is dockershim's socket; nothing serves it for kubelet {target}",
                "migrate to cri-dockerd (shimshift flags plan)",
                "--container-runtime-endpoint",
            )
        )
    return endpoint


def _cri_dockerd_args(view: NodeView) -> tuple[str | None, list[str]]:
    dropin = view.files.get(CRI_DOCKERD_DROPIN)
    if dropin is not None:
        words = cri_dockerd_exec_start(CRI_DOCKERD_DROPIN, dropin)
        if words:
            return CRI_DOCKERD_DROPIN, [w.text for w in words]
    if view.cri_dockerd_exec is not None:
        return view.cri_dockerd_unit_path, [w.text for w in view.cri_dockerd_exec]
    return None, []


def _cri_dockerd_settings(view: NodeView) -> tuple[str | None, dict[str, str]]:
    """cri-dockerd's flags (a flag without a value maps to ""), and the file its command line is in."""
    unit, args = _cri_dockerd_args(view)
    grouped = group_flags(args[1:]) if args else []
    return unit, {} if isinstance(grouped, int) else {n: v or "" for n, v, _s, _i in grouped}


def _cri_dockerd_findings(
    view: NodeView, target: KubernetesVersion, version: CriDockerdVersion | None
) -> list[Finding]:
    out: list[Finding] = []
    if version is not None and not cri_dockerd_serves(target, version):
        out.append(
            _finding(
                "cri-api-skew",
                None,
                None,
                Severity.ERROR,
                f"cri-dockerd {version} and kubelet {target} share no CRI API version (Mirantis/cri-dockerd#136)",
                "kubelet 1.26+ needs cri-dockerd 0.3.0+; kubelet 1.22 and older need cri-dockerd "
                "<= 0.3.21/0.4.1",
            )
        )
    unit, settings = _cri_dockerd_settings(view)
    pause = view.last("--pod-infra-container-image")
    if pause is not None and pause.value:
        facts = None if version is None else cri_dockerd_facts(version)
        theirs = settings.get("--pod-infra-container-image") or (facts.default_pause_image if facts else None)
        if theirs is not None and theirs != pause.value:
            out.append(
                _finding(
                    "pause-image-drift",
                    pause.file,
                    pause.line,
                    Severity.WARNING,
                    f"the kubelet names pause image {pause.value} but cri-dockerd uses {theirs} "
                    f"({unit or 'its default'}); the kubelet flag no longer chooses the sandbox image",
                    f"run cri-dockerd with --pod-infra-container-image={pause.value}",
                    pause.name,
                )
            )
    return out


def _streaming_findings(view: NodeView, version: CriDockerdVersion | None) -> list[Finding]:
    """Mirantis/cri-dockerd#106: cri-dockerd's streaming server on every address, where dockershim's was on
    localhost."""
    unit, settings = _cri_dockerd_settings(view)
    if streaming_bind_address(settings) is not None:
        return []
    if version is not None and not version.at_least(0, 2, 6):
        hint = f"cri-dockerd {version} has no {STREAMING_FLAG}: upgrade it (v0.2.6+), then set it to 127.0.0.1"
    else:
        hint = f"add {STREAMING_FLAG}=127.0.0.1 to cri-dockerd's command line (shimshift migrate does)"
    return [
        _finding(
            "streaming-all-addresses",
            unit,
            None,
            Severity.WARNING,
            "cri-dockerd's streaming server (exec, attach, port-forward) listens on every address: "
            f"{STREAMING_FLAG} is {'unset' if STREAMING_FLAG not in settings else 'an unspecified address'} "
            f"on {unit or 'its packaged command line'}; dockershim's listened on localhost only",
            hint,
            STREAMING_FLAG,
        )
    ]


def _cgroup_findings(
    view: NodeView, target: KubernetesVersion, cri_version: CriDockerdVersion | None, docker_driver: str | None
) -> list[Finding]:
    if docker_driver is None:
        return []
    kubelet = cgroup_driver(view)
    drivers = compare_cgroup_drivers(kubelet, docker_driver, facts=facts_for(target), cri_version=cri_version)
    if drivers is not CgroupDrivers.MISMATCH:
        # Or KubeletCgroupDriverFromCRI: the kubelet takes Docker's driver from cri-dockerd
        # (kubernetes/kubernetes#118770).
        return []
    # A default is placed on the config file, where the operator would set it.
    file = kubelet.file or (view.config.path if view.config is not None else None)
    driver, line = kubelet.value, kubelet.line
    return [
        _finding(
            "cgroup-driver-mismatch",
            file,
            line,
            Severity.ERROR,
            f"the kubelet's cgroup driver is {driver} but Docker's is {docker_driver}; dockershim refuses to "
            "start, cri-dockerd runs with the mismatch silently (cri-dockerd#101)",
            f"set cgroupDriver: {docker_driver} in the kubelet config",
            "--cgroup-driver",
        )
    ]
