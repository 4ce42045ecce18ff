"""The migration plan for one node, as data: which files change and how, what verify and rollback hold
the node to, and its exact inverse.

The planner (core/node_planner.py) makes it from the node's files; the journal keeps it as the record
of core/node_plan_record.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import Enum
from typing import TYPE_CHECKING

from shimshift.core.node_files import CRI_DOCKERD_DROPIN, INSTANCE_CONFIG

if TYPE_CHECKING:
    from collections.abc import Mapping

    from shimshift.core.findings import Finding

__all__ = [
    "DEFAULT_CNI_CONF_DIR",
    "FileChange",
    "NodePlan",
    "RuntimeState",
    "apply_changes",
]

# cri-dockerd's --cni-conf-dir default (Mirantis/cri-dockerd config/options.go@v0.3.21).
DEFAULT_CNI_CONF_DIR = "/etc/cni/net.d"


class RuntimeState(Enum):
    DOCKERSHIM = "dockershim"  # kubelet <=1.23 running its built-in dockershim
    STALE_DOCKERSHIM_CONFIG = "stale-dockershim-config"  # no dockershim in this kubelet, but its config is
    CRI_DOCKERD = "cri-dockerd"  # already pointed at cri-dockerd


@dataclass(frozen=True)
class FileChange:
    """``before``/``after`` are whole-file contents; None means absent (after None: delete the file)."""

    path: str
    before: bytes | None
    after: bytes | None

    def inverse(self) -> FileChange:
        return FileChange(self.path, self.after, self.before)


@dataclass(frozen=True)
class NodePlan:
    """What to change on one node, and what verify and rollback hold it to.

    The planner returns it, preflight records it in the journal (``plan_record``), and every later step,
    a resumed run, `shimshift rollback`, `shimshift verify` and the reports read that record back
    (``plan_from_record``), never a re-plan of files that may already be half-changed. ``changes`` is empty
    when there is nothing to do (``noop_reason``).
    """

    kubelet_version: str
    node: str | None
    state: RuntimeState
    changes: tuple[FileChange, ...]
    # The kubeadm.alpha.kubernetes.io/cri-socket annotation. In a forward plan ``after`` is always the
    # cri-dockerd socket; in a rollback it is the original value (None: remove it).
    cri_socket_before: str | None
    cri_socket_after: str | None
    # What verify must see in /proc/<kubelet pid>/cmdline, and must not see.
    expected_kubelet_args: Mapping[str, str]
    forbidden_kubelet_args: tuple[str, ...]
    # What verify must see in the live KubeletConfiguration (/configz), 1.27+ when the endpoint is there.
    expected_kubelet_config: Mapping[str, str]
    # cri-dockerd: the settings moved from the kubelet (verified on its running command line after its
    # restart), and its full command line after the change.
    cri_dockerd_settings: Mapping[str, str]
    cri_dockerd_args: tuple[str, ...]
    noop_reason: str | None
    warnings: tuple[Finding, ...] = ()
    is_rollback: bool = False
    # The other side, for rollback(): what verify looks for once the plan is undone (the runtime flags
    # as they were, the flags the plan added must be gone, nothing to check in the config).
    original_kubelet_args: Mapping[str, str] = field(default_factory=dict)
    original_forbidden_kubelet_args: tuple[str, ...] = ()
    original_kubelet_config: Mapping[str, str] = field(default_factory=dict)

    @property
    def is_noop(self) -> bool:
        return self.noop_reason is not None

    @property
    def rollback_changes(self) -> tuple[FileChange, ...]:
        return tuple(c.inverse() for c in reversed(self.changes))

    @property
    def instance_config(self) -> FileChange | None:
        """kubeadm's instance-config.yaml (KEP-4656, NodeLocalCRISocket), when the plan changes it."""
        return next((c for c in self.changes if c.path == INSTANCE_CONFIG), None)

    @property
    def cri_dockerd_dropin(self) -> str:
        return CRI_DOCKERD_DROPIN

    @property
    def cri_dockerd_config_changed(self) -> bool:
        """cri-dockerd must be restarted (forward or back) to take the plan's settings."""
        return any(c.path == CRI_DOCKERD_DROPIN for c in self.changes)

    @property
    def cni_conf_dir(self) -> str:
        """Where cri-dockerd will look for the pod network's configuration (preflight checks it)."""
        return self.cri_dockerd_settings.get("--cni-conf-dir", DEFAULT_CNI_CONF_DIR)

    def rollback(self) -> NodePlan:
        """The exact inverse: applying it after this plan restores every original byte.
        ``plan.rollback().rollback() == plan``."""
        return replace(
            self,
            changes=self.rollback_changes,
            cri_socket_before=self.cri_socket_after,
            cri_socket_after=self.cri_socket_before,
            expected_kubelet_args=self.original_kubelet_args,
            forbidden_kubelet_args=self.original_forbidden_kubelet_args,
            expected_kubelet_config=self.original_kubelet_config,
            is_rollback=not self.is_rollback,
            original_kubelet_args=self.expected_kubelet_args,
            original_forbidden_kubelet_args=self.forbidden_kubelet_args,
            original_kubelet_config=self.expected_kubelet_config,
        )


def apply_changes(
    files: Mapping[str, bytes | None], changes: tuple[FileChange, ...]
) -> dict[str, bytes | None]:
    """The node files after ``changes`` (pure; what the executor does with atomic writes)."""
    out = dict(files)
    for c in changes:
        out[c.path] = c.after
    return out
