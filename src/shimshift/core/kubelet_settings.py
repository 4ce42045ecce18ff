"""Where a kubelet takes its runtime endpoint and its cgroup driver from, on one node's files.

A flag beats the config file; the config field counts only where the kubelet version reads it (the
endpoint from 1.27); with neither, the kubelet's default applies (``file`` None). The readiness check
and the planner both ask here, so they never disagree about what a node runs with.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

from shimshift.core.versions import EndpointHome, cri_dockerd_facts

if TYPE_CHECKING:
    from shimshift.core.node_files import NodeView
    from shimshift.core.versions import CriDockerdVersion, MinorFacts

ENDPOINT_FLAG = "--container-runtime-endpoint"
ENDPOINT_FIELD = "containerRuntimeEndpoint"
CGROUP_DRIVER_FLAG = "--cgroup-driver"
CGROUP_DRIVER_FIELD = "cgroupDriver"
# KubeletConfiguration v1beta1 defaults cgroupDriver to cgroupfs
# (pkg/kubelet/apis/config/v1beta1/defaults.go in kubernetes/kubernetes).
DEFAULT_CGROUP_DRIVER = "cgroupfs"


@dataclass(frozen=True)
class Setting:
    """A kubelet setting's value and where it is written; ``file`` None is the kubelet's own default."""

    value: str
    file: str | None = None
    line: int | None = None

    @property
    def is_default(self) -> bool:
        return self.file is None

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}" if self.file is not None else "the kubelet default"


def configured_endpoint(view: NodeView, facts: MinorFacts) -> Setting | None:
    """The runtime endpoint written for this kubelet (flag, or config field where its version reads
    one); None when neither is, and the version's default applies."""
    flag = view.last(ENDPOINT_FLAG)
    if flag is not None and flag.value:
        return Setting(flag.value, flag.file, flag.line)
    config = view.config
    if facts.endpoint_home is EndpointHome.FLAG_OR_CONFIG and config is not None:
        value = config.get_str(ENDPOINT_FIELD)
        if value:
            return Setting(value, config.path, config.line_of(ENDPOINT_FIELD))
    return None


def runtime_endpoint(view: NodeView, facts: MinorFacts) -> Setting | None:
    """The endpoint this kubelet uses: the one written, or its version's default (None: it has none)."""
    written = configured_endpoint(view, facts)
    if written is not None:
        return written
    return Setting(facts.default_endpoint) if facts.default_endpoint is not None else None


def cgroup_driver(view: NodeView) -> Setting:
    """The kubelet's cgroup driver: --cgroup-driver, else the config's cgroupDriver, else the default."""
    flag = view.last(CGROUP_DRIVER_FLAG)
    if flag is not None and flag.value:
        return Setting(flag.value, flag.file, flag.line)
    config = view.config
    if config is not None:
        value = config.get_str(CGROUP_DRIVER_FIELD)
        if value:
            return Setting(value, config.path, config.line_of(CGROUP_DRIVER_FIELD))
    return Setting(DEFAULT_CGROUP_DRIVER)


class CgroupDrivers(Enum):
    """How the kubelet's cgroup driver stands to Docker's."""

    UNKNOWN = "unknown"  # Docker's is not known: nothing to compare
    MATCH = "match"
    # They differ, but this kubelet takes Docker's from a cri-dockerd that reports it
    # (KubeletCgroupDriverFromCRI).
    TAKEN_FROM_CRI = "taken-from-cri"
    # They differ: dockershim refused to start, cri-dockerd runs with the mismatch silently (cri-dockerd#101).
    MISMATCH = "mismatch"


def compare_cgroup_drivers(
    kubelet: Setting, docker_driver: str | None, *, facts: MinorFacts, cri_version: CriDockerdVersion | None
) -> CgroupDrivers:
    if docker_driver is None:
        return CgroupDrivers.UNKNOWN
    if kubelet.value == docker_driver:
        return CgroupDrivers.MATCH
    cri = None if cri_version is None else cri_dockerd_facts(cri_version)
    if facts.cgroup_driver_from_cri and cri is not None and cri.reports_cgroup_driver:
        return CgroupDrivers.TAKEN_FROM_CRI
    return CgroupDrivers.MISMATCH
