"""`--cri-dockerd PATH` as data (core/upgrade/cri_dockerd_swap.py, core/upgrade/plan.py, core/journey/sequence.py).

Matrix: the binary's answer checked (a cri-dockerd's, on either stream; none; another program's X.Y.Z; no
digest); the swap planned only where the node's version differs, refused on a node without cri-dockerd;
the drain plan holding it first in the kubelet's install step with the restart before the kubelet's, its
version at verify, its restore in the rollback once the install step started, and the journal record read
back; which drain replaces (a node's first only).
"""

from __future__ import annotations

import re

import pytest

from shimshift.core.actions import Run, Upload
from shimshift.core.errors import Refusal
from shimshift.core.journey.sequence import NodeDrain, replaces_cri_dockerd
from shimshift.core.steps import Step
from shimshift.core.upgrade.binaries import Binary, TargetBinary
from shimshift.core.upgrade.cluster import NodeVersion, Role
from shimshift.core.upgrade.cri_dockerd_swap import check_replacement, plan_cri_dockerd_swap
from shimshift.core.upgrade.plan import NodeUpgradePlan, StepActions, plan_node_upgrade
from shimshift.core.versions import KubernetesVersion

DIGEST = "ab" * 32


def test_the_binary_is_taken_by_the_version_it_reports() -> None:
    given = check_replacement("/srv/cri-dockerd", output="cri-dockerd 0.4.6 (a1b2c3d)\n", digest=DIGEST.upper())
    assert (given.source, str(given.version), given.sha256) == ("/srv/cri-dockerd", "0.4.6", DIGEST)


@pytest.mark.parametrize(
    ("output", "digest", "said"),
    [
        (None, DIGEST, "is missing, not executable"),
        ("Kubernetes v1.30.14\n", DIGEST, "not a cri-dockerd version"),
        ("cri-dockerd dev\n", DIGEST, "not a cri-dockerd version"),
        ("cri-dockerd 0.4.6 (a1b2c3d)\n", None, "could not be read"),
    ],
)
def test_a_binary_that_is_no_usable_cri_dockerd_is_refused_naming_it(
    output: str | None, digest: str | None, said: str
) -> None:
    with pytest.raises(Refusal) as refused:
        check_replacement("/srv/cri-dockerd", output=output, digest=digest)
    assert said in refused.value.what and refused.value.file == "/srv/cri-dockerd"
    assert refused.value.code == "cri-dockerd-binary-unusable" and refused.value.hint


def test_the_swap_is_planned_only_where_the_node_runs_another_version() -> None:
    given = check_replacement("/srv/cri-dockerd", output="cri-dockerd 0.4.6 (a1b2c3d)", digest=DIGEST)
    assert plan_cri_dockerd_swap(None, target="/usr/bin/cri-dockerd", node_version="0.3.17", node="w1") is None
    assert plan_cri_dockerd_swap(given, target="/usr/bin/cri-dockerd", node_version="0.4.6", node="w1") is None
    swap = plan_cri_dockerd_swap(given, target="/usr/local/bin/cri-dockerd", node_version="0.3.17", node="w1")
    assert swap is not None
    assert swap.target == "/usr/local/bin/cri-dockerd"
    assert swap.backup == "/usr/local/bin/cri-dockerd.shimshift-0.3.17.bak"
    with pytest.raises(Refusal, match=re.escape("is cri-dockerd 0.4.6, older than the node's 0.4.7")):
        plan_cri_dockerd_swap(given, target="/usr/bin/cri-dockerd", node_version="0.4.7", node="w1")
    with pytest.raises(Refusal, match="has none that answers"):
        plan_cri_dockerd_swap(given, target=None, node_version=None, node="w1")


def drain_plan() -> NodeUpgradePlan:
    given = check_replacement("/srv/cri-dockerd", output="cri-dockerd 0.4.6 (a1b2c3d)", digest=DIGEST)
    swap = plan_cri_dockerd_swap(given, target="/usr/bin/cri-dockerd", node_version="0.3.17", node="w1")
    binaries = tuple(TargetBinary(b, f"/srv/v1.27.16/{b}", "v1.27.16", DIGEST) for b in Binary)
    return plan_node_upgrade(
        NodeVersion("w1", False, KubernetesVersion(25, 16)),
        role=Role.WORKER,
        to=KubernetesVersion(27, 16),
        binaries=binaries,
        with_kubeadm=False,
        cri_dockerd=swap,
    )


def actions_of(plan: NodeUpgradePlan, step: Step) -> StepActions:
    return next(actions for actions in plan.steps if actions.step == step)


def test_the_drain_plan_swaps_cri_dockerd_first_and_restarts_it_before_the_kubelet_is_swapped() -> None:
    plan = drain_plan()
    install = actions_of(plan, Step.INSTALL_KUBELET).actions
    shown = [a.target if isinstance(a, Upload) else a.shown() for a in install]

    assert shown[:5] == [
        "cp --preserve=mode,ownership,timestamps --no-clobber -- /usr/bin/cri-dockerd "
        "/usr/bin/cri-dockerd.shimshift-0.3.17.bak",
        "/usr/bin/cri-dockerd",
        "sha256sum -- /usr/bin/cri-dockerd",
        "/usr/bin/cri-dockerd --version",
        "systemctl restart cri-docker.service",
    ]
    assert "/usr/bin/kubelet" in shown[5:]
    (check,) = actions_of(plan, Step.VERIFY).actions
    assert isinstance(check, Run) and check.expect == "0.4.6"


def test_the_rollback_puts_the_old_cri_dockerd_back_once_the_install_step_started() -> None:
    plan = drain_plan()
    assert [a.step for a in plan.rollback_steps({str(Step.WRITE_CONFIG)})] == ["rollback:migration"]
    (restore, _) = plan.rollback_steps({str(Step.INSTALL_KUBELET)})
    shown = [a.shown() for a in restore.commands]
    assert shown[-4:] == [
        "cp --preserve=mode,ownership,timestamps -- /usr/bin/cri-dockerd.shimshift-0.3.17.bak "
        "/usr/bin/cri-dockerd.shimshift-restore",
        "mv -f -- /usr/bin/cri-dockerd.shimshift-restore /usr/bin/cri-dockerd",
        "systemctl restart cri-docker.service",
        "/usr/bin/cri-dockerd --version",
    ]


def test_the_plan_with_its_swap_reads_back_from_the_journal_and_old_records_have_none() -> None:
    plan = drain_plan()
    assert NodeUpgradePlan.from_record(plan.to_record()) == plan
    old = {key: value for key, value in plan.to_record().items() if key != "cri_dockerd"}
    assert NodeUpgradePlan.from_record(old).cri_dockerd is None


def test_only_a_nodes_first_drain_replaces_cri_dockerd() -> None:
    def drain(number: int) -> NodeDrain:
        return NodeDrain("w1", False, number, KubernetesVersion(25, 16), KubernetesVersion(27, 16), False, ())

    assert replaces_cri_dockerd(drain(1)) and not replaces_cri_dockerd(drain(2))
