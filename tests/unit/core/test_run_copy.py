"""The cluster's copy of a run (core/run_copy.py): what a second machine takes from it.

Matrix: a node's records round-trip through the stored form (gzip'd JSON, the plan's file contents
intact); a changed byte or a changed checksum is refused naming the node and the ConfigMap; bytes that are
not gzip refused; the run's record round-trips and a foreign one is refused; node names as keys (a name
that cannot be a key refused); the size rule replaces a key's old size; the records a journal lacks.
"""

from __future__ import annotations

import gzip
from datetime import UTC, datetime, timedelta

import pytest

from shimshift.core.errors import Refusal
from shimshift.core.run_copy import (
    CopiedRecord,
    RunCopy,
    decode_node,
    decode_run,
    encode_node,
    missing_records,
    node_key,
    size_after,
)

T0 = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
FLAGS = 'KUBELET_KUBEADM_ARGS="--network-plugin=cni"\n'
PLAN = {"plan": {"changes": [{"path": "/var/lib/kubelet/kubeadm-flags.env", "before": FLAGS}]}}
RECORDS = [
    CopiedRecord("preflight", "started", {}, T0),
    CopiedRecord("preflight", "finished", PLAN, T0 + timedelta(seconds=2)),
    CopiedRecord("drain", "started", {}, T0 + timedelta(seconds=3)),
]
WHERE = "ConfigMap kube-system/shimshift-run-x"


def test_records_round_trip_with_the_original_file_contents() -> None:
    data, sha256 = encode_node(RECORDS)
    assert decode_node("w1", data, sha256, where=WHERE) == RECORDS
    assert len(sha256) == 64


def test_a_changed_record_is_refused_naming_node_and_configmap() -> None:
    data, sha256 = encode_node(RECORDS)
    edited = gzip.compress(gzip.decompress(data).replace(b"cni", b"kubenet"))
    with pytest.raises(Refusal, match="do not match their SHA-256") as refused:
        decode_node("w1", edited, sha256, where=WHERE)
    assert refused.value.node == "w1" and refused.value.file == WHERE
    with pytest.raises(Refusal, match="SHA-256"):
        decode_node("w1", data, "0" * 64, where=WHERE)
    with pytest.raises(Refusal, match="not gzip'd JSON"):
        decode_node("w1", b"plain", sha256, where=WHERE)


def test_the_run_record_round_trips_and_a_foreign_one_is_refused() -> None:
    run = RunCopy("20261207T100000Z-aaaa0001", {"all_nodes": True}, T0, "running", by="migrate run by alice")
    again = decode_run(run.run_json(), where=WHERE)
    assert (again.run_id, again.options, again.started_at, again.status, again.by) == (
        run.run_id, run.options, run.started_at, run.status, run.by
    )
    with pytest.raises(Refusal, match="not what shimshift writes"):
        decode_run('{"hello": 1}', where=WHERE)


def test_node_names_become_keys() -> None:
    assert node_key("cp-1.example.com") == "node.cp-1.example.com"
    with pytest.raises(Refusal, match="cannot be a ConfigMap key"):
        node_key("w 1")


def test_a_key_written_again_counts_once() -> None:
    sizes = {"run": 100, "node.w1": 4000, "node.w2": 3000}
    assert size_after(sizes, "node.w1", 5000) == 8100
    assert size_after(sizes, "node.w3", 10) == 7110


def test_the_journal_lacks_the_tail_it_has_not_seen() -> None:
    assert missing_records(0, RECORDS) == RECORDS
    assert missing_records(2, RECORDS) == RECORDS[2:]
    assert missing_records(3, RECORDS) == []
