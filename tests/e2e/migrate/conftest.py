"""Migration tests drain nodes for real, with --force and --delete-emptydir-data as an operator of the
lab would: the bare pod and the completed Job's pod are then gone for good. Each module puts the demo
workloads back afterwards so later tests find the lab as `lab up` left it."""

from __future__ import annotations

import subprocess
from typing import TYPE_CHECKING

import pytest

from shimshift.lab import render

from .helpers import DEMO, KUBECTL

if TYPE_CHECKING:
    from collections.abc import Iterator

    from shimshift.lab.model import LabInfo


def restore_demo_workloads(lab: LabInfo) -> None:
    base = [str(KUBECTL), "--kubeconfig", str(lab.kubeconfig)]
    manifests = render.workloads(first_worker=lab.workers[0].name)
    # A finished Job is not re-run by apply; delete it so its completed pod comes back too.
    subprocess.run(
        [*base, "-n", DEMO, "delete", "job", "once", "--ignore-not-found", "--wait"],
        check=True,
        capture_output=True,
        timeout=120,
    )
    subprocess.run(
        [*base, "apply", "-f", "-"], input=manifests, text=True, check=True, capture_output=True, timeout=120
    )
    for what in ("deployment/web", "deployment/scratch", "daemonset/node-agent", "statefulset/db"):
        subprocess.run(
            [*base, "-n", DEMO, "rollout", "status", what, "--timeout=240s"],
            check=True,
            capture_output=True,
            timeout=260,
        )
    subprocess.run(
        [*base, "-n", DEMO, "wait", "--for=condition=complete", "job/once", "--timeout=180s"],
        check=True,
        capture_output=True,
        timeout=200,
    )
    subprocess.run(
        [*base, "-n", DEMO, "wait", "--for=condition=Ready", "pod/bare", "--timeout=180s"],
        check=True,
        capture_output=True,
        timeout=200,
    )


@pytest.fixture(scope="module", autouse=True)
def demo_workloads_restored(lab: LabInfo) -> Iterator[None]:
    yield
    restore_demo_workloads(lab)
