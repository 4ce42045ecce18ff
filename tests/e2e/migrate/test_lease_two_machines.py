"""One cluster, one run, from any machine (docs/run-lease.md): two state directories against one lab.

Matrix: machine A's `migrate --all` frozen mid-drain of the control plane (it goes first); machine B's
`migrate --all` is refused naming A's run (user, machine, run id) and changes nothing (no run in B's
journal, no node cordoned by it); A is SIGKILLed (its Lease is neither renewed nor released); `status`
on B shows A's run from the cluster; B's `migrate --all --resume` takes A's Lease over (recorded in the
Lease; at once, as A's pid is gone from this host: between two hosts it waits for the Lease to expire),
takes A's records into its own journal from the cluster, and finishes every node, except the control
plane, whose verify is made to fail in the resumed run (cri-dockerd loses its network plugin): it is
rolled back with the plan A recorded and B only read from the cluster. The Lease ends free, its last
run failed (one node rolled back).

Not run by its author (the lab is shared); written to be run by whoever holds the lab.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from shimshift.adapters.journal import Journal

from .helpers import (
    assert_on_cri_dockerd,
    assert_on_dockershim,
    back_to_dockershim,
    canary_pods,
    drop_the_network_plugin,
    kubectl,
    mend_the_network_plugin,
    node_json,
    recorded_runs,
    run_breaking_after,
    shimshift,
)
from .two_machines import (
    Machines,
    holder_words,
    refused_then_killed_mid_drain,
)

if TYPE_CHECKING:
    from pathlib import Path

    from shimshift.lab.model import LabInfo

pytestmark = pytest.mark.e2e
# --max-failures 2: the control plane's rollback must not stop the workers (a resumed run keeps the
# options its run began with); --canary-timeout 30: the broken canary fails in 30 s, not the default.
ARGS = ["migrate", "--all", "--force", "--delete-emptydir-data", "--max-failures", "2", "--canary-timeout", "30"]


def test_a_second_machine_is_refused_then_resumes_the_killed_run_from_the_cluster(
    lab: LabInfo, tmp_path: Path
) -> None:
    machines = Machines.under(tmp_path)
    control_plane = lab.control_plane.name
    workers = [node.name for node in lab.workers]
    try:
        run_id, refused = refused_then_killed_mid_drain(lab, machines, ARGS, node=control_plane)
        assert refused.returncode == 2, refused.stdout + refused.stderr
        assert holder_words(run_id, "migrate") in refused.stderr, refused.stderr
        assert recorded_runs(machines.b) == []
        for worker in workers:
            assert not node_json(lab, worker)["spec"].get("unschedulable"), f"{worker} cordoned by B"

        status = shimshift(lab, machines.b, "status")
        assert f"run {run_id}: running" in status.stdout and "from the cluster" in status.stdout, status.stdout
        assert f"{control_plane}: drain started" in status.stdout, status.stdout

        try:
            returncode, out, err = run_breaking_after(
                lab,
                machines.b,
                ["migrate", "--all", "--resume"],
                node=control_plane,
                step="restart-cri-dockerd",
                breaks=lambda: drop_the_network_plugin(lab, control_plane),
                timeout=1200,
            )
        finally:
            mend_the_network_plugin(lab, control_plane)
        assert returncode == 1, out + err
        assert f"{control_plane}: rolled-back" in err, err
        assert_on_dockershim(lab, control_plane)  # also: uncordoned
        for worker in workers:
            assert_on_cri_dockerd(lab, worker)  # also: uncordoned
        assert canary_pods(lab) == []

        # B's journal holds A's records of the control plane, as A wrote them, then its own.
        a, b = Journal(machines.a), Journal(machines.b)
        try:
            theirs = [(r.step, r.phase, r.detail, r.at) for r in a.timeline(run_id, control_plane)]
            ours = [(r.step, r.phase, r.detail, r.at) for r in b.timeline(run_id, control_plane)]
        finally:
            a.close()
            b.close()
        assert ours[: len(theirs)] == theirs and theirs[-1][:2] == ("drain", "started")
        assert [step for step, phase, _, _ in ours if phase == "finished"][-1] == "rollback:uncordon"

        lease = kubectl(lab, "-n", "kube-system", "get", "lease", "shimshift", "-o", "json")
        # Both "machines" are this host: B saw A's pid gone and did not wait for the Lease to expire (between
        # two hosts it waits; tests/e2e/cluster/test_apiserver_run_lease.py covers that wait).
        assert "stopped renewing the Lease" in lease and "(its process is gone)" in lease, lease
        assert f"taken over by migrate run {run_id}" in lease, lease
        after = shimshift(lab, machines.a, "status")
        assert "Lease kube-system/shimshift: free; last run" in after.stdout and "failed" in after.stdout, after.stdout
    finally:
        for name in [control_plane, *workers]:
            back_to_dockershim(lab, machines.b, name)
