"""The journey benchmark's figures (benchmarks/journey_lab_bench.py) from a journal written with the project's
own Journal, as a journey writes it (step names of core/journey/sequence.py and core/procedures/journey.py).

Matrix: drains per node (a rolled-back drain tried again counts twice); cordoned time from each drain's cordon
to its uncordon or its rollback's uncordon, none for a drain the run stopped in; applies counted whether they
run at a control-plane step or inside the first control-plane node's drain, `kubeadm upgrade node` not; the
figures of the journal's newest run; the schedule's drains per node under each rule set to 1.27.16.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest

from benchmarks.journey_lab_bench import journal_figures, journey_figures, opt_ins, planned_drains, same_drains
from shimshift.adapters.journal import ClusterIdentity, Journal
from shimshift.core.journey.skew import SkewRules
from shimshift.core.versions import KubernetesVersion
from shimshift.lab.model import LabInfo, LabNode

START = datetime(2026, 12, 8, 1, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def at(self, seconds: float) -> None:
        self.now = START + timedelta(seconds=seconds)


def write_journey(path: Path) -> tuple[Journal, str]:
    clock = Clock()
    journal = Journal(path, clock=clock)
    run = journal.begin_run(ClusterIdentity("https://lab:6443"), options={"journey": {}}).id

    def step(at: float, node: str, name: str, phase: str, detail: dict[str, Any] | None = None) -> None:
        clock.at(at)
        journal.record(run, node, name, cast(Any, phase), detail)

    def drain(node: str, key: str, start: float, end: float | None, *, rolled_back: bool = False) -> None:
        step(start, node, f"{key}/cordon", "started")
        step(start + 1, node, f"{key}/cordon", "finished")
        step(start + 1, node, f"{key}/drain", "started")
        step(start + 5, node, f"{key}/drain", "finished", {"evicted": ["web-1"]})
        if end is not None:
            last = "rollback:uncordon" if rolled_back else "uncordon"
            step(end - 1, node, f"{key}/{last}", "started")
            step(end, node, f"{key}/{last}", "finished")

    apply_ran = {"ran": "/usr/bin/kubeadm upgrade apply v1.24.17 --yes"}
    # The first control-plane node's apply inside its first drain (schedule.py: the executor may wrap it).
    drain("cp1", "drain-1:v1.24.17:cp1#1", 0, None)
    step(6, "cp1", "drain-1:v1.24.17:cp1#1/kubeadm-upgrade", "started")
    step(26, "cp1", "drain-1:v1.24.17:cp1#1/kubeadm-upgrade", "finished", apply_ran)
    step(39, "cp1", "drain-1:v1.24.17:cp1#1/uncordon", "started")
    step(40, "cp1", "drain-1:v1.24.17:cp1#1/uncordon", "finished")
    step(41, "w1", "kubeadm-node:v1.24.17:w1/kubeadm-upgrade", "started")
    step(44, "w1", "kubeadm-node:v1.24.17:w1/kubeadm-upgrade", "finished", {"ran": "kubeadm upgrade node"})
    drain("w1", "drain-1:v1.24.17:w1#1", 50, 80)
    # The next minor's apply at a control-plane step of its own.
    step(100, "cp1", "kubeadm-apply:v1.25.16:cp1/kubeadm-upgrade", "started")
    ran = {"ran": "kubeadm upgrade apply v1.25.16"}
    step(112.5, "cp1", "kubeadm-apply:v1.25.16:cp1/kubeadm-upgrade", "finished", ran)
    drain("w1", "drain-2:v1.25.16:w1#1", 120, 135, rolled_back=True)
    drain("w1", "drain-2:v1.25.16:w1#2", 200, None)  # the run stopped in it
    return journal, run


def test_figures_from_the_journal_as_a_journey_writes_it(tmp_path: Path) -> None:
    journal, run = write_journey(tmp_path / "journal.sqlite")
    figures = journey_figures(journal.timeline(run))

    assert figures.drains == {"cp1": 1, "w1": 3}
    assert figures.cordoned_seconds == {"cp1": 40.0, "w1": 30.0 + 15.0}
    assert figures.applies == 2  # `kubeadm upgrade node` is not an apply
    assert figures.apply_seconds == pytest.approx(20.0 + 12.5)
    assert figures.to_json()["cordoned_seconds_total"] == 85.0


def test_the_journal_file_gives_its_newest_runs_figures(tmp_path: Path) -> None:
    write_journey(tmp_path / "journal.sqlite")[0].close()
    assert journal_figures(tmp_path / "journal.sqlite").drains == {"cp1": 1, "w1": 3}
    with pytest.raises(SystemExit, match="no run in the journal"):
        journal_figures(tmp_path / "empty.sqlite")


def lab(*names: str) -> LabInfo:
    nodes = [
        LabNode(name, "control-plane" if index == 0 else "worker", f"172.18.0.{index + 2}")
        for index, name in enumerate(names)
    ]
    files = Path("/var/lib/shimshift/lab")
    return LabInfo(
        files, files / "kubeconfig", files / "ssh_config", files / "known_hosts", files / "id_ed25519", nodes
    )


@pytest.mark.parametrize(
    ("rules", "drains"), [(SkewRules.LOCKSTEP, 4), (SkewRules.KUBEADM, 4), (SkewRules.KUBERNETES, 2)]
)
def test_the_schedule_plans_the_drains_the_run_is_compared_with(rules: SkewRules, drains: int) -> None:
    planned = planned_drains(lab("cp1", "w1", "w2"), to=KubernetesVersion(27, 16), rules=rules)
    assert planned == {"cp1": drains, "w1": drains, "w2": drains}


def test_the_opt_ins_come_only_where_the_road_needs_them() -> None:
    assert opt_ins(KubernetesVersion(27, 16)) == ()
    assert opt_ins(KubernetesVersion(37, 2)) == ("--allow-cgroup-v1", "--kubelet-websockets-off")


def test_the_bench_says_when_the_rule_sets_plan_the_same_drains() -> None:
    both = [SkewRules.LOCKSTEP, SkewRules.KUBEADM]
    assert same_drains(KubernetesVersion(27, 16), both) == 4
    assert same_drains(KubernetesVersion(28, 15), both) == 5
    assert same_drains(KubernetesVersion(29, 15), both) is None  # kubeadm 1.29 lets kubelets trail by three
    assert same_drains(KubernetesVersion(37, 2), [SkewRules.LOCKSTEP]) is None  # nothing to compare with
