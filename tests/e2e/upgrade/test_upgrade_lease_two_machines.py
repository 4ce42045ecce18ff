"""`upgrade` from two machines (docs/run-lease.md): two state directories against one fresh 1.23.17 lab.

Matrix: machine A's `upgrade --all` frozen mid-drain of the first worker (the control plane is upgraded
by then); machine B's `upgrade --all` is refused naming A's run and changes nothing; A is SIGKILLed; B's
`upgrade --all --resume` (B has never seen the run: it comes from the cluster) takes A's Lease over (at
once: A's pid is gone from this host) and finishes every node at v1.24.17 on cri-dockerd, except that
first worker, whose verify is made to fail in the resumed run (cri-dockerd loses its network plugin): it
goes back to kubelet v1.23.17 on dockershim with the plan A recorded (its binaries restored from the
node-side backups B's resumed steps recorded), Ready and uncordoned.

Like test_upgrade_all.py, it needs a fresh 1.23.17 lab and leaves it upgraded (kubeadm upgrade apply is not
undone): run it on a lab of its own. Not run by its author (the lab is shared).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.e2e.migrate.helpers import (
    assert_on_cri_dockerd,
    assert_on_dockershim,
    canary_pods,
    drop_the_network_plugin,
    mend_the_network_plugin,
    node_json,
    recorded_runs,
    run_breaking_after,
    shimshift,
)
from tests.e2e.migrate.two_machines import (
    Machines,
    holder_words,
    refused_then_killed_mid_drain,
)
from tests.e2e.upgrade.conftest import TARGET, UpgradeLab

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.e2e


def test_a_second_machine_is_refused_then_resumes_the_killed_upgrade_from_the_cluster(
    upgrade_lab: UpgradeLab, tmp_path: Path
) -> None:
    lab = upgrade_lab.lab
    machines = Machines.under(tmp_path)
    first, *others = [node.name for node in lab.workers]
    args = ["upgrade", "--all", *upgrade_lab.upgrade_args("--max-failures", "2", "--canary-timeout", "30")]
    run_id, refused = refused_then_killed_mid_drain(lab, machines, args, node=first, timeout=2400)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert holder_words(run_id, "upgrade") in refused.stderr, refused.stderr
    assert recorded_runs(machines.b) == []
    for other in others:
        assert not node_json(lab, other)["spec"].get("unschedulable"), f"{other} cordoned by B"
    try:
        returncode, out, err = run_breaking_after(
            lab,
            machines.b,
            ["upgrade", "--all", "--resume"],
            node=first,
            step="restart-cri-dockerd",
            breaks=lambda: drop_the_network_plugin(lab, first),
            timeout=2400,
        )
    finally:
        mend_the_network_plugin(lab, first)
    assert returncode == 1, out + err
    assert f"{first}: rolled-back" in err, err
    assert_on_dockershim(lab, first)
    assert node_json(lab, first)["status"]["nodeInfo"]["kubeletVersion"] == "v1.23.17"
    for name in [lab.control_plane.name, *others]:
        assert_on_cri_dockerd(lab, name, kubelet_minor=24)
        assert node_json(lab, name)["status"]["nodeInfo"]["kubeletVersion"] == f"v{TARGET}"
    assert canary_pods(lab) == []
    status = shimshift(lab, machines.a, "status")
    assert f"run {run_id}: failed" in status.stdout and "from the cluster" in status.stdout, status.stdout
