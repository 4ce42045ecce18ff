"""The plan as the journal keeps it: one model, recorded at preflight and read back by every later step.

Matrix: any plan (every field drawn by hypothesis) and its rollback read back equal through the journal's
JSON; the plans of every kubeadm layout per kubelet minor do too; the record is plain JSON (no
``default=str`` fallback needed); the ChangeSet records that builds up to 41920b0 journalled (literal
files in fixtures/journal/, as that build wrote them for the lab's 1.23 dockershim node and for a node
already on cri-dockerd) read as the plan the planner makes today minus what those records never held;
the older shapes of that record (no moved settings, no config expectations) and the runtime state it
implies for each kubelet minor.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shimshift.core.findings import Finding, Severity, Subject
from shimshift.core.node_files import CRI_DOCKERD_DROPIN, KUBEADM_FLAGS_ENV
from shimshift.core.node_plan import FileChange, NodePlan, RuntimeState, apply_changes
from shimshift.core.node_plan_record import plan_from_change_set_record, plan_from_record, plan_record
from shimshift.core.node_planner import plan_node

from .nodes import MINORS, cri_dockerd_node, dockershim_node, version

JOURNAL_FIXTURES = Path(__file__).parent / "fixtures" / "journal"
CRI_DOCKERD_ENDPOINT = "unix:///var/run/cri-dockerd.sock"


def journalled(record: dict[str, Any]) -> dict[str, Any]:
    """What a later run reads back: the journal stores a detail as json.dumps(sort_keys=True, default=str)."""
    loaded: dict[str, Any] = json.loads(json.dumps(record, sort_keys=True, default=str))
    return loaded


def legacy_detail(name: str) -> dict[str, Any]:
    """A preflight detail exactly as the journal of build 41920b0 held it."""
    loaded: dict[str, Any] = json.loads((JOURNAL_FIXTURES / f"preflight-41920b0-{name}.json").read_text())
    return loaded


TEXT = st.text(max_size=20)
FLAGS = st.dictionaries(TEXT, TEXT, max_size=4)
WARNING = st.builds(
    Finding,
    st.sampled_from(Severity),
    TEXT,
    TEXT,
    st.none() | st.builds(Subject.of_node, TEXT),
    TEXT,
    st.none() | TEXT,
)
PLANS = st.builds(
    NodePlan,
    kubelet_version=TEXT,
    node=st.none() | TEXT,
    state=st.sampled_from(RuntimeState),
    changes=st.lists(
        st.builds(FileChange, TEXT, st.none() | st.binary(max_size=64), st.none() | st.binary(max_size=64)),
        max_size=4,
    ).map(tuple),
    cri_socket_before=st.none() | TEXT,
    cri_socket_after=st.none() | TEXT,
    expected_kubelet_args=FLAGS,
    forbidden_kubelet_args=st.lists(TEXT, max_size=4).map(tuple),
    expected_kubelet_config=FLAGS,
    cri_dockerd_settings=FLAGS,
    cri_dockerd_args=st.lists(TEXT, max_size=6).map(tuple),
    noop_reason=st.none() | TEXT,
    warnings=st.lists(WARNING, max_size=3).map(tuple),
    is_rollback=st.booleans(),
    original_kubelet_args=FLAGS,
    original_forbidden_kubelet_args=st.lists(TEXT, max_size=4).map(tuple),
    original_kubelet_config=FLAGS,
)


@given(PLANS)
def test_any_plan_and_its_rollback_read_back_equal(plan: NodePlan) -> None:
    assert plan_from_record(journalled(plan_record(plan))) == plan
    assert plan_from_record(journalled(plan_record(plan.rollback()))) == plan.rollback()


@pytest.mark.parametrize("minor", MINORS)
@pytest.mark.parametrize("layout", [dockershim_node, cri_dockerd_node], ids=["dockershim", "cri-dockerd"])
def test_every_layout_s_plan_reads_back_equal(minor: int, layout: Any) -> None:
    files = layout(minor)
    plan = plan_node(
        kubelet_version=version(minor),
        files=files,
        cri_dockerd_version="0.3.17",
        docker_cgroup_driver="systemd",
        node="w1",
        cri_socket_annotation="/var/run/dockershim.sock",
    )
    # Strict JSON: nothing in the record relies on the journal's default=str.
    record = json.loads(json.dumps(plan_record(plan), allow_nan=False))
    read = plan_from_record(record)
    assert read == plan
    assert apply_changes(apply_changes(files, read.changes), read.rollback_changes) == files
    assert read.is_noop == (read.changes == ())


# -- the record of builds up to 41920b0 (their ChangeSet model) ------------------------------------------


def plan_of_the_lab_node(files: dict[str, bytes | None], annotation: str) -> NodePlan:
    """What preflight plans for the node NodeWorld plays (tests/unit/core/procedures/node_world.py)."""
    return plan_node(
        kubelet_version="v1.23.17",
        files=files,
        cri_dockerd_version="0.3.17",
        docker_cgroup_driver="systemd",
        node="w1",
        cri_socket_annotation=annotation,
    )


def from_legacy(detail: dict[str, Any]) -> NodePlan:
    return plan_from_change_set_record(
        detail["change_set"], kubelet_version=detail["kubelet_version"], node="w1"
    )


def test_a_dockershim_node_s_old_record_is_today_s_plan_less_what_it_never_held() -> None:
    detail = legacy_detail("dockershim-node")
    today = plan_of_the_lab_node(dockershim_node(23), "/var/run/dockershim.sock")
    old = from_legacy(detail)
    # Only cri-dockerd's full command line (shown by `flags plan`) and the rollback's verify
    # expectations are not in the old record; everything apply, verify and rollback read is.
    assert old == replace(today, cri_dockerd_args=(), original_kubelet_args={}, original_forbidden_kubelet_args=())
    assert old.state is RuntimeState.DOCKERSHIM and old.kubelet_version == "1.23.17"
    assert [c.path for c in old.changes] == [KUBEADM_FLAGS_ENV, CRI_DOCKERD_DROPIN]
    assert old.cri_dockerd_config_changed is detail["change_set"]["cri_dockerd_config_changed"] is True
    assert old.cri_dockerd_settings["--streaming-bind-addr"] == "127.0.0.1"
    assert old.cni_conf_dir == detail["change_set"]["cni_conf_dir"]
    # Once read, it is recorded (a `rollback` run copies it) in today's record, exactly.
    assert plan_from_record(journalled(plan_record(old))) == old


def test_an_already_migrated_node_s_old_record_is_a_noop() -> None:
    detail = legacy_detail("migrated-node")
    old = from_legacy(detail)
    assert old.is_noop and old.changes == () and old.state is RuntimeState.CRI_DOCKERD
    assert old.noop_reason is not None and "already uses cri-dockerd" in old.noop_reason
    assert (old.cri_socket_before, old.cri_socket_after) == (CRI_DOCKERD_ENDPOINT, CRI_DOCKERD_ENDPOINT)
    assert not old.cri_dockerd_config_changed


def test_the_oldest_record_shape_reads_without_the_keys_added_later() -> None:
    # The record as builds before 5b3a843 (moved settings) and bf4a2a8 (config expectations) wrote it.
    detail = legacy_detail("dockershim-node")
    for key in ("cri_dockerd_args", "expected_kubelet_config", "notes"):
        del detail["change_set"][key]
    old = from_legacy(detail)
    assert old.cri_dockerd_settings == {} and old.expected_kubelet_config == {} and old.warnings == ()
    assert old.cni_conf_dir == "/etc/cni/net.d"
    assert old.changes == from_legacy(legacy_detail("dockershim-node")).changes


def test_warnings_recorded_as_words_read_as_plan_notes() -> None:
    # Builds before the plan's warnings were findings journalled their words only; a run they started
    # still resumes, and its report still shows them.
    record = journalled(plan_record(plan_of_the_lab_node(dockershim_node(23), "/var/run/dockershim.sock")))
    record["warnings"] = ["the kubelet set no --network-plugin; cri-dockerd keeps dockershim's: none"]
    (note,) = plan_from_record(record).warnings
    assert (note.severity, note.code, note.message) == (Severity.WARNING, "plan-note", record["warnings"][0])


@pytest.mark.parametrize(
    ("kubelet", "state"),
    [
        ("v1.23.17", RuntimeState.DOCKERSHIM),
        ("1.24.17", RuntimeState.STALE_DOCKERSHIM_CONFIG),
        ("1.30.1", RuntimeState.STALE_DOCKERSHIM_CONFIG),
        ("", RuntimeState.DOCKERSHIM),  # not beside the record: shown as the common case, nothing depends on it
    ],
)
def test_an_old_record_s_state_follows_its_kubelet(kubelet: str, state: RuntimeState) -> None:
    detail = legacy_detail("dockershim-node")
    old = plan_from_change_set_record(detail["change_set"], kubelet_version=kubelet, node=None)
    assert old.state is state


def test_an_old_record_that_only_removes_rejected_flags_is_on_cri_dockerd() -> None:
    detail = legacy_detail("dockershim-node")
    record = dict(detail["change_set"])
    record["edits"] = [edit for edit in record["edits"] if edit["path"] == KUBEADM_FLAGS_ENV]
    old = plan_from_change_set_record(record, kubelet_version="1.35.0", node=None)
    assert old.state is RuntimeState.CRI_DOCKERD and not old.is_noop and not old.cri_dockerd_config_changed
