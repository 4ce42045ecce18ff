"""The cluster's copy of a run: what a second machine needs to show it and to finish it (rollback included).

The local journal (adapters/journal.py) stays the full record. The copy holds, per run, the run's options
(its selection, its upgrade's roles and binaries' digests) and, per node, every journal record of that
node in order: preflight's record carries the node's plan with the original contents of each file the run
changes (what rollback writes back), and later steps carry what they kept (backups, replaced binaries).
A resume on a machine whose journal lacks some of it appends the missing records (``missing_records``).

Encoding: one ConfigMap per run, one key per node (adapters/kube/run_state.py); each node's records as
gzip'd JSON with the SHA-256 of that JSON beside it, checked before anything is taken from the copy.
Pure data: takes bytes and records, returns them.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shimshift.core.errors import Refusal

# Finding codes (docs/findings.md): a run's record (in the journal, or its copy on the cluster) is not what
# shimshift writes, and the copy no longer fits its ConfigMap.
RUN_RECORD_INVALID = "run-record-invalid"
RUN_STATE_TOO_LARGE = "run-state-too-large"

# The API server refuses a ConfigMap whose data and binaryData exceed 1 MiB (k8s.io/kubernetes
# pkg/apis/core/validation/validation.go at v1.23.17, ValidateConfigMap: MaxSecretSize); a margin is kept
# for the metadata and the run's own key.
MAX_BYTES = 1024 * 1024 - 16 * 1024
RUN_KEY = "run"
NODE_PREFIX = "node."
SHA_PREFIX = "sha256."  # data key of a node's checksum: "sha256.node.NAME" (never a node key)
_KEY = re.compile(r"[-._a-zA-Z0-9]+")


@dataclass(frozen=True)
class CopiedRecord:
    step: str
    phase: str
    detail: dict[str, Any]
    at: datetime

    def to_json(self) -> dict[str, Any]:
        return {"step": self.step, "phase": self.phase, "detail": self.detail, "at": self.at.isoformat()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CopiedRecord:
        return cls(str(data["step"]), str(data["phase"]), dict(data.get("detail") or {}), _time(data["at"]))


@dataclass(frozen=True)
class RunCopy:
    """A run as the cluster keeps it. ``status``: the journal's run status; ``by``: who began or last resumed it."""

    run_id: str
    options: dict[str, Any]
    started_at: datetime
    status: str
    by: str = ""
    nodes: dict[str, list[CopiedRecord]] = field(default_factory=dict)

    def run_json(self) -> str:
        return json.dumps(
            {
                "id": self.run_id,
                "options": self.options,
                "started_at": self.started_at.isoformat(),
                "status": self.status,
                "by": self.by,
            },
            sort_keys=True,
            default=str,
        )


def node_key(node: str) -> str:
    if not _KEY.fullmatch(node):
        # Node names are DNS subdomains, so this is a name the API server itself would not have accepted.
        raise Refusal(f"node name {node!r} cannot be a ConfigMap key", node=node, code=RUN_RECORD_INVALID)
    return NODE_PREFIX + node


def encode_node(records: list[CopiedRecord]) -> tuple[bytes, str]:
    """A node's records as stored (gzip'd JSON) and the SHA-256 of the JSON."""
    text = json.dumps([record.to_json() for record in records], sort_keys=True, default=str).encode()
    return gzip.compress(text, mtime=0), hashlib.sha256(text).hexdigest()


def decode_node(node: str, data: bytes, sha256: str, *, where: str) -> list[CopiedRecord]:
    """The node's records; a Refusal naming ``where`` when they are unreadable or their checksum differs."""
    try:
        text = gzip.decompress(data)
    except (OSError, EOFError) as error:
        raise Refusal(
            f"the records of node {node} are not gzip'd JSON ({error})", file=where, node=node, code=RUN_RECORD_INVALID
        ) from error
    if hashlib.sha256(text).hexdigest() != sha256:
        raise Refusal(
            f"the records of node {node} do not match their SHA-256 (changed by hand?)",
            hint="restore the ConfigMap from the journal of the machine that began the run, or roll the node "
            "back by hand",
            file=where,
            node=node,
            code=RUN_RECORD_INVALID,
        )
    return [CopiedRecord.from_json(item) for item in json.loads(text)]


def decode_run(text: str, *, where: str) -> RunCopy:
    try:
        data = json.loads(text)
        return RunCopy(
            run_id=str(data["id"]),
            options=dict(data["options"]),
            started_at=_time(data["started_at"]),
            status=str(data["status"]),
            by=str(data.get("by", "")),
        )
    except (ValueError, KeyError, TypeError) as error:
        raise Refusal(
            f"the run's record is not what shimshift writes ({error})", file=where, code=RUN_RECORD_INVALID
        ) from error


def size_after(sizes: dict[str, int], key: str, size: int) -> int:
    """The ConfigMap's payload once ``key`` holds ``size`` bytes (``sizes``: every key's current size)."""
    return sum(value for name, value in sizes.items() if name != key) + size


def missing_records(have: int, copied: list[CopiedRecord]) -> list[CopiedRecord]:
    """What the local journal lacks of a node's records: the journal appends records in order, and the copy
    is written after each one, so a journal holding ``have`` of them holds the first ``have``."""
    return copied[have:]


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text)
