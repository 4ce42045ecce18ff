"""A node's planned change as the journal keeps it: enough to apply it, verify it and undo it later.

The plan is made once, at preflight, and stored; a resumed run or a later `shimshift rollback` works
from the stored copy, never from a re-plan of files that may already be half-changed.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class FileEdit:
    path: str
    before: bytes | None  # None: the file did not exist
    after: bytes | None  # None: the file is to be removed


@dataclass(frozen=True)
class ChangeSet:
    edits: tuple[FileEdit, ...]
    cri_socket_before: str | None
    cri_socket_after: str
    expected_kubelet_args: Mapping[str, str]
    forbidden_kubelet_args: tuple[str, ...]
    cri_dockerd_config_changed: bool
    noop_reason: str | None = None
    # The dockershim settings the plan moved to cri-dockerd; verified on its running command line.
    cri_dockerd_args: Mapping[str, str] = field(default_factory=dict)
    # From 1.27 the endpoint may live in config.yaml only; verify reads it back from the live
    # KubeletConfiguration (/configz) then (../shared/reference/dockershim-to-cri-dockerd.md §5).
    expected_kubelet_config: Mapping[str, str] = field(default_factory=dict)
    cni_conf_dir: str = "/etc/cni/net.d"
    notes: tuple[str, ...] = field(default=())

    @property
    def is_noop(self) -> bool:
        return self.noop_reason is not None

    def to_record(self) -> dict[str, Any]:
        return {
            "edits": [
                {"path": edit.path, "before": _encode(edit.before), "after": _encode(edit.after)} for edit in self.edits
            ],
            "cri_socket_before": self.cri_socket_before,
            "cri_socket_after": self.cri_socket_after,
            "expected_kubelet_args": dict(self.expected_kubelet_args),
            "forbidden_kubelet_args": list(self.forbidden_kubelet_args),
            "cri_dockerd_config_changed": self.cri_dockerd_config_changed,
            "noop_reason": self.noop_reason,
            "cri_dockerd_args": dict(self.cri_dockerd_args),
            "expected_kubelet_config": dict(self.expected_kubelet_config),
            "cni_conf_dir": self.cni_conf_dir,
            "notes": list(self.notes),
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> ChangeSet:
        return cls(
            edits=tuple(
                FileEdit(item["path"], _decode(item["before"]), _decode(item["after"])) for item in record["edits"]
            ),
            cri_socket_before=record["cri_socket_before"],
            cri_socket_after=record["cri_socket_after"],
            expected_kubelet_args=dict(record["expected_kubelet_args"]),
            forbidden_kubelet_args=tuple(record["forbidden_kubelet_args"]),
            cri_dockerd_config_changed=bool(record["cri_dockerd_config_changed"]),
            noop_reason=record.get("noop_reason"),
            cri_dockerd_args=dict(record.get("cri_dockerd_args", {})),
            expected_kubelet_config=dict(record.get("expected_kubelet_config", {})),
            cni_conf_dir=record.get("cni_conf_dir", "/etc/cni/net.d"),
            notes=tuple(record.get("notes", ())),
        )


def _encode(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode("ascii")


def _decode(text: str | None) -> bytes | None:
    return None if text is None else base64.b64decode(text.encode("ascii"))
