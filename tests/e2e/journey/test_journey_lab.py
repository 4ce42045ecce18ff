"""The journey on the lab: `shimshift upgrade --all --to 1.27.16` (or SHIMSHIFT_JOURNEY_TARGET, e.g.
1.37.2, under SHIMSHIFT_JOURNEY_SKEW kubeadm|kubernetes|lockstep) from a fresh 1.23.17 dockershim lab.

Not part of `scripts/test.sh` (marker `journey_lab`, which that script deselects): it takes the lab for
about half an hour to 1.27.16 and leaves it at the target. Run it alone, on a machine where the lab is
free:

    .venv/bin/python -m pytest -m journey_lab tests/e2e/journey
    SHIMSHIFT_JOURNEY_TARGET=1.37.2 .venv/bin/python -m pytest tests/e2e/journey/test_journey_lab.py

Each release on the way (1.24.17, 1.25.16, ... the target) has its images loaded into every node
(`lab prepare-upgrade --version R`, built first on a cold cache) and its folder in `--binaries DIR/vR`.
Matrix, after the one command: every node Ready at the target on cri-dockerd (the endpoint where kubelet
1.27+ reads it, no `--container-runtime`, which kubelet 1.27 rejects), the API server at the target;
the `restricted` Deployment's pods Running; neither PDB ever violated (ready replicas watched from
outside for the whole run); each node drained exactly as often as the issue's rules allow (to 1.27: 4,
one per minor from 1.24, under kubeadm's own skew checks; to 1.37: 8, or 5 under the Kubernetes
policy); flannel kept its containers and kube-proxy runs the target's image; from a pod on every node
the Services resolve through CoreDNS and answer; verify's canary (allowPrivilegeEscalation: false) ran
on every node at every stop, and `shimshift verify` proves every node afterwards.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

from shimshift.lab import render
from shimshift.lab.lock import LabLock
from shimshift.lab.model import LabInfo
from shimshift.lab.releases import known_releases, release
from shimshift.lab.upgrade_prep import load_release_images
from tests.e2e.conftest import LAB_DIR, _progress, ensure_lab
from tests.e2e.migrate.helpers import (
    ReadyReplicasWatch,
    assert_api_server_runs,
    assert_every_node_ready_on_cri_dockerd_at,
    assert_no_pdb_violated,
    assert_restricted_pods_run,
    canary_pods,
    kubelet_cmdline,
    recorded_runs,
    shimshift,
)
from tests.e2e.network import (
    assert_flannel_kept_and_kube_proxy_runs,
    assert_network_works,
    system_daemonset_containers,
)

pytestmark = [pytest.mark.e2e, pytest.mark.journey_lab]

# The road: SHIMSHIFT_JOURNEY_TARGET (default 1.27.16: half an hour) and SHIMSHIFT_JOURNEY_SKEW (kubeadm |
# kubernetes | lockstep), each release on the way the one the lab knows for its minor (shimshift/lab/releases.py).
TARGET = os.environ.get("SHIMSHIFT_JOURNEY_TARGET", "1.27.16").removeprefix("v")
SKEW = os.environ.get("SHIMSHIFT_JOURNEY_SKEW", "kubeadm")
ROAD = tuple(
    r.version.removeprefix("v") for r in known_releases() if 24 <= r.minor <= release(TARGET).minor
)
# The drains per node the issue asks for, written here rather than read from core/journey/schedule.py (the
# test would check the schedule against itself): kubeadm before 1.29 refuses kubelets more than one minor
# older than the apply's release, 1.29+ three (cmd/kubeadm/app/phases/upgrade/policy.go), so 4 drains to
# 1.27 and 8 to 1.37; the Kubernetes skew policy alone allows 5 to 1.37; kubeadm's guide (lockstep) drains
# every node at every minor, 4 to 1.27 and 14 to 1.37.
DRAINS = {("kubeadm", 27): 4, ("kubeadm", 37): 8, ("kubernetes", 37): 5, ("lockstep", 27): 4, ("lockstep", 37): 14}
DRAINS_PER_NODE = DRAINS.get((SKEW, release(TARGET).minor), 0)
# This machine's kernel runs cgroup v1 (a 1.35+ kubelet refuses it unless failCgroupV1: false), and the
# lab's cri-dockerd breaks exec from 1.36 unless the kubelet's ExtendWebSocketsToKubelet gate is off
# (docs/lab.md, "What 1.37 shows"): the operator's two opt-ins, given only where the road needs them.
OPT_INS = (
    *(("--allow-cgroup-v1",) if release(TARGET).minor >= 35 else ()),
    *(("--kubelet-websockets-off",) if release(TARGET).minor >= 36 else ()),
)
DRAIN_FLAGS = ("--force", "--delete-emptydir-data")
# The journey's whole run: to 1.27, 4 applies, 8 `kubeadm upgrade node`, 12 drains (16 min); to 1.37, 14,
# 28 and 24 (or 15).
RUN_TIMEOUT = 3600 * 3


@dataclass
class Journeyed:
    lab: LabInfo
    journal: Path
    result: subprocess.CompletedProcess[str]
    seconds: float
    minimum: dict[str, int]
    system_before: dict[str, tuple[str, int]]
    system_after: dict[str, tuple[str, int]]


@pytest.fixture(scope="module")
def journeyed(lab_lock: LabLock, tmp_path_factory: pytest.TempPathFactory) -> Journeyed:
    if DRAINS_PER_NODE == 0:
        pytest.fail(f"no drain count is written for {SKEW} rules to {TARGET}: add it to DRAINS", pytrace=False)
    lab = ensure_lab(lab_lock)  # a fresh 1.23.17 dockershim lab: an upgraded one is rebuilt
    work = tmp_path_factory.mktemp("journey")
    binaries = work / "binaries"
    binaries.mkdir()
    for on_the_road in ROAD:
        try:
            prepared = load_release_images(on_the_road, directory=LAB_DIR, progress=_progress)
        except Exception as e:  # any failure must become a test failure, never a skip
            pytest.fail(f"the lab could not be prepared for {on_the_road}: {type(e).__name__}: {e}", pytrace=False)
        (binaries / f"v{on_the_road}").symlink_to(prepared.binaries_dir)
    journal = work / "journal.sqlite"
    args = ["--all", "--to", TARGET, "--skew", SKEW, "--binaries", str(binaries), *OPT_INS, *DRAIN_FLAGS]
    system_before = system_daemonset_containers(lab)
    started = time.monotonic()
    with ReadyReplicasWatch(lab, deployments=("web", render.RESTRICTED_DEPLOYMENT)) as watch:
        result = shimshift(lab, journal, "upgrade", *args, timeout=RUN_TIMEOUT)
    seconds = time.monotonic() - started
    _progress(f"the journey to {TARGET} took {seconds:.0f}s")
    return Journeyed(
        lab, journal, result, seconds, dict(watch.minimums), system_before,
        system_daemonset_containers(lab),
    )


def test_every_node_is_ready_at_the_target_on_cri_dockerd(journeyed: Journeyed) -> None:
    assert journeyed.result.returncode == 0, journeyed.result.stdout + journeyed.result.stderr
    assert_every_node_ready_on_cri_dockerd_at(journeyed.lab, TARGET)
    for node in journeyed.lab.nodes:  # kubelet 1.27 exits on it (CHANGELOG-1.27.md)
        assert not any(arg.startswith("--container-runtime=") for arg in kubelet_cmdline(journeyed.lab, node.name))


def test_the_api_server_runs_the_target(journeyed: Journeyed) -> None:
    assert_api_server_runs(journeyed.lab, TARGET)


def test_every_restricted_pod_runs(journeyed: Journeyed) -> None:
    assert_restricted_pods_run(journeyed.lab)


def test_no_pdb_was_violated(journeyed: Journeyed) -> None:
    assert_no_pdb_violated(journeyed.minimum)


# A drain's cordon-and-evict step, under the drain's key: drain-<n>:v<release>:<node>#<attempt>/drain.
_DRAIN_STEP = re.compile(r"^drain-\d+:v[0-9.]+:[^#]+#\d+/drain$")


def test_each_node_was_drained_as_often_as_the_schedule_says(journeyed: Journeyed) -> None:
    [run] = recorded_runs(journeyed.journal)
    with sqlite3.connect(journeyed.journal) as db:
        rows = db.execute("SELECT node, step FROM steps WHERE run_id = ? AND phase = 'started'", (run.id,)).fetchall()
    drains = Counter(node for node, step in rows if _DRAIN_STEP.match(step))
    assert drains == {node.name: DRAINS_PER_NODE for node in journeyed.lab.nodes}


def test_flannel_kept_its_containers_and_kube_proxy_runs_the_target(journeyed: Journeyed) -> None:
    assert_flannel_kept_and_kube_proxy_runs(journeyed.lab, journeyed.system_before, journeyed.system_after, TARGET)


def test_services_resolve_and_answer_from_every_node(journeyed: Journeyed) -> None:
    assert journeyed.result.returncode == 0
    assert_network_works(journeyed.lab)


# A drain's verify step, under the drain's key: drain-<n>:v<release>:<node>#<attempt>/verify.
_VERIFY_STEP = re.compile(r"^drain-\d+:v[0-9.]+:[^#]+#\d+/verify$")


def test_the_hardened_canary_ran_at_every_stop_and_is_gone(journeyed: Journeyed) -> None:
    # From the journal, where each drain's verify step keeps its canary.
    [run] = recorded_runs(journeyed.journal)
    with sqlite3.connect(journeyed.journal) as db:
        rows = db.execute(
            "SELECT node, step, detail_json FROM steps WHERE run_id = ? AND phase = 'finished'", (run.id,)
        ).fetchall()
    canaries = [(node, json.loads(detail)["canary"]) for node, step, detail in rows if _VERIFY_STEP.match(step)]
    assert Counter(node for node, _ in canaries) == {node.name: DRAINS_PER_NODE for node in journeyed.lab.nodes}
    # allowPrivilegeEscalation: false kept (nothing omitted) at every stop: every kubelet was 1.24 or later.
    assert all(canary["state"] == "running" and canary["omitted"] == [] for _, canary in canaries), canaries
    assert canary_pods(journeyed.lab) == []


def test_verify_proves_every_node_from_the_journey_s_last_drain(journeyed: Journeyed) -> None:
    # `verify` checks a node against its newest recorded plan; the journey records each drain's plan under the
    # drain's name (drain-4:v1.27.16:<node>#1/preflight), which it once did not find ("no migration recorded").
    names = [node.name for node in journeyed.lab.nodes]
    result = shimshift(journeyed.lab, journeyed.journal, "verify", *names)
    assert result.returncode == 0, result.stdout + result.stderr
    assert all(f"{name}: verified" in result.stdout for name in names), result.stdout
