"""Lab model: node names and addresses, spec bounds, LabInfo round trip through lab.json."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from shimshift.core.errors import Refusal
from shimshift.lab.model import CriDockerdMode, LabInfo, LabSpec, lab_files, plan_nodes

if TYPE_CHECKING:
    from pathlib import Path


def test_default_lab_is_one_control_plane_and_two_workers() -> None:
    nodes = plan_nodes(LabSpec())
    assert [(n.name, n.role, n.ip) for n in nodes] == [
        ("shimshift-lab-control-plane", "control-plane", "172.29.0.10"),
        ("shimshift-lab-worker", "worker", "172.29.0.11"),
        ("shimshift-lab-worker2", "worker", "172.29.0.12"),
    ]


def test_worker_names_follow_kind() -> None:
    names = [n.name for n in plan_nodes(LabSpec(workers=4))][1:]
    assert names == [
        "shimshift-lab-worker",
        "shimshift-lab-worker2",
        "shimshift-lab-worker3",
        "shimshift-lab-worker4",
    ]


@pytest.mark.parametrize("workers", [0, -1, 21])
def test_worker_count_out_of_range_is_refused(workers: int) -> None:
    with pytest.raises(Refusal, match="--workers"):
        LabSpec(workers=workers)


def test_subnet_too_small_is_refused() -> None:
    with pytest.raises(Refusal, match="too small"):
        plan_nodes(LabSpec(workers=5), subnet="10.0.0.0/28")


def test_info_round_trips_through_json(tmp_path: Path) -> None:
    files = lab_files(tmp_path)
    info = LabInfo(
        directory=tmp_path,
        kubeconfig=files["kubeconfig"],
        ssh_config=files["ssh_config"],
        known_hosts=files["known_hosts"],
        ssh_key=files["ssh_key"],
        nodes=plan_nodes(LabSpec(workers=1)),
        spec=LabSpec(workers=1, cri_dockerd=CriDockerdMode.ABSENT),
        node_image="shimshift/node:v1.23.17",
    )
    import json

    assert LabInfo.from_json(json.loads(info.dumps())) == info
    assert info.control_plane.name == "shimshift-lab-control-plane"
    assert [w.name for w in info.workers] == ["shimshift-lab-worker"]


def test_exec_refuses_unknown_node(tmp_path: Path) -> None:
    files = lab_files(tmp_path)
    info = LabInfo(
        tmp_path,
        files["kubeconfig"],
        files["ssh_config"],
        files["known_hosts"],
        files["ssh_key"],
        plan_nodes(LabSpec()),
    )
    with pytest.raises(Refusal, match="no lab node"):
        info.exec("elsewhere", ["true"])
