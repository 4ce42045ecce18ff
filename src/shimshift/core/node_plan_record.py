"""The node plan as the journal keeps it (JSON-ready and exact: file contents in base64) and as
`shimshift flags plan -o json` shows it; the records older builds journalled read back as today's plan.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any

from shimshift.core.errors import Refusal
from shimshift.core.findings import Finding, Severity
from shimshift.core.node_files import CRI_DOCKERD_DROPIN
from shimshift.core.node_plan import FileChange, NodePlan, RuntimeState
from shimshift.core.versions import facts_for, parse_kubelet_version

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

PLAN_NOTE = "plan-note"  # a warning as a journal of an older build kept it: its words only (docs/findings.md)


def plan_record(plan: NodePlan) -> dict[str, Any]:
    """The plan as the journal keeps it; ``plan_from_record(plan_record(plan)) == plan``."""
    return {
        "kubelet_version": plan.kubelet_version,
        "node": plan.node,
        "state": plan.state.value,
        "changes": [{"path": c.path, "before": _encode(c.before), "after": _encode(c.after)} for c in plan.changes],
        "cri_socket_before": plan.cri_socket_before,
        "cri_socket_after": plan.cri_socket_after,
        "expected_kubelet_args": dict(plan.expected_kubelet_args),
        "forbidden_kubelet_args": list(plan.forbidden_kubelet_args),
        "expected_kubelet_config": dict(plan.expected_kubelet_config),
        "cri_dockerd_settings": dict(plan.cri_dockerd_settings),
        "cri_dockerd_args": list(plan.cri_dockerd_args),
        "noop_reason": plan.noop_reason,
        "warnings": [warning.to_json() for warning in plan.warnings],
        "is_rollback": plan.is_rollback,
        "original_kubelet_args": dict(plan.original_kubelet_args),
        "original_forbidden_kubelet_args": list(plan.original_forbidden_kubelet_args),
        "original_kubelet_config": dict(plan.original_kubelet_config),
    }


def plan_from_record(record: Mapping[str, Any]) -> NodePlan:
    return NodePlan(
        kubelet_version=str(record["kubelet_version"]),
        node=record["node"],
        state=RuntimeState(record["state"]),
        changes=tuple(
            FileChange(item["path"], _decode(item["before"]), _decode(item["after"]))
            for item in record["changes"]
        ),
        cri_socket_before=record["cri_socket_before"],
        cri_socket_after=record["cri_socket_after"],
        expected_kubelet_args=dict(record["expected_kubelet_args"]),
        forbidden_kubelet_args=tuple(record["forbidden_kubelet_args"]),
        expected_kubelet_config=dict(record["expected_kubelet_config"]),
        cri_dockerd_settings=dict(record["cri_dockerd_settings"]),
        cri_dockerd_args=tuple(record["cri_dockerd_args"]),
        noop_reason=record["noop_reason"],
        warnings=warnings_from_record(record["warnings"]),
        is_rollback=bool(record["is_rollback"]),
        original_kubelet_args=dict(record["original_kubelet_args"]),
        original_forbidden_kubelet_args=tuple(record["original_forbidden_kubelet_args"]),
        original_kubelet_config=dict(record["original_kubelet_config"]),
    )


def plan_from_change_set_record(
    record: Mapping[str, Any], *, kubelet_version: str, node: str | None
) -> NodePlan:
    """The plan from the ``change_set`` record that builds up to 41920b0 journalled (their ChangeSet
    model), so that `--resume`, `rollback` and `verify` still work on runs such a build started.

    That record kept what apply, verify and rollback need and nothing else: the kubelet version
    comes from beside it in the preflight detail, the runtime state is inferred (it is only shown),
    cri-dockerd's full command line and the rollback's verify expectations are left empty (nothing
    that runs reads them). Its ``cri_dockerd_config_changed`` is not read: it was always whether the
    drop-in changes, which the plan derives from its changes. Keys added over time
    (``cri_dockerd_args``, which held the moved settings; ``expected_kubelet_config``; ``notes``) may be
    missing, as they may be in those journals.
    """
    changes = tuple(
        FileChange(item["path"], _decode(item["before"]), _decode(item["after"])) for item in record["edits"]
    )
    noop_reason = record.get("noop_reason")
    try:
        parsed = parse_kubelet_version(kubelet_version)
        version, has_dockershim = str(parsed), facts_for(parsed).has_dockershim
    except Refusal:  # it was planned, so it parsed then; the state below is only ever shown
        version, has_dockershim = kubelet_version, True
    if noop_reason is not None or not any(c.path == CRI_DOCKERD_DROPIN for c in changes):
        # Nothing to do, or (no drop-in written) only removing flags a migrated kubelet rejects.
        state = RuntimeState.CRI_DOCKERD
    elif has_dockershim:
        state = RuntimeState.DOCKERSHIM
    else:
        state = RuntimeState.STALE_DOCKERSHIM_CONFIG
    return NodePlan(
        kubelet_version=version,
        node=node,
        state=state,
        changes=changes,
        cri_socket_before=record["cri_socket_before"],
        cri_socket_after=record["cri_socket_after"],
        expected_kubelet_args=dict(record["expected_kubelet_args"]),
        forbidden_kubelet_args=tuple(record["forbidden_kubelet_args"]),
        expected_kubelet_config=dict(record.get("expected_kubelet_config", {})),
        cri_dockerd_settings=dict(record.get("cri_dockerd_args", {})),
        cri_dockerd_args=(),
        noop_reason=noop_reason,
        warnings=warnings_from_record(record.get("notes", ())),
    )


# -- what `shimshift flags plan -o json` prints -----------------------------------------------


def plan_data(plan: NodePlan) -> dict[str, Any]:
    """JSON-ready form for people (file contents as UTF-8 text with undecodable bytes escaped)."""

    def text(data: bytes | None) -> str | None:
        return None if data is None else data.decode("utf-8", "backslashreplace")

    return {
        "node": plan.node,
        "kubelet_version": plan.kubelet_version,
        "state": plan.state.value,
        "noop_reason": plan.noop_reason,
        "changes": [
            {"path": c.path, "before": text(c.before), "after": text(c.after)} for c in plan.changes
        ],
        "cri_socket_annotation": {"before": plan.cri_socket_before, "after": plan.cri_socket_after},
        "instance_config_changed": plan.instance_config is not None,
        "expected_kubelet_args": dict(plan.expected_kubelet_args),
        "forbidden_kubelet_args": list(plan.forbidden_kubelet_args),
        "expected_kubelet_config": dict(plan.expected_kubelet_config),
        "cri_dockerd": {
            "dropin": plan.cri_dockerd_dropin,
            "changed": plan.cri_dockerd_config_changed,
            "settings": dict(plan.cri_dockerd_settings),
            "args": list(plan.cri_dockerd_args),
        },
        "warnings": [warning.to_json() for warning in plan.warnings],
        "is_rollback": plan.is_rollback,
    }


def warnings_from_record(items: Iterable[Mapping[str, Any] | str]) -> tuple[Finding, ...]:
    """The plan's warnings as the journal keeps them; builds before they were findings kept their words
    only, which become warnings with the code ``plan-note``."""
    return tuple(
        Finding(Severity.WARNING, PLAN_NOTE, item) if isinstance(item, str) else Finding.from_json(item)
        for item in items
    )


def _encode(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode("ascii")


def _decode(text: str | None) -> bytes | None:
    return None if text is None else base64.b64decode(text.encode("ascii"), validate=True)

