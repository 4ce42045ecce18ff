"""`shimshift upgrade --to` past one minor: the journey's run on the screen (orchestrator/journey_session.py
does the run). One line per operation as it ends; the blocking findings, each with its way on, when the
journey is refused before its first change."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import click

from shimshift.cli.findings import findings_text
from shimshift.cli.options import EXIT_NODES_FAILED, EXIT_OK, EXIT_REFUSED, SKEW_OPTION, say
from shimshift.cli.report_files import announce_reports, reports_after_run
from shimshift.core.journey.sequence import ClusterEdit, KubeadmUpgrade, Operation
from shimshift.core.journey.skew import SkewRules
from shimshift.core.journey.stages import KUBEADM_PARALLEL
from shimshift.core.procedures.migration import NodeOutcome, OutcomeStatus
from shimshift.orchestrator import session
from shimshift.orchestrator.journey_session import JourneyBlocked, JourneyRequest, run_journey
from shimshift.orchestrator.ports import StepEvent
from shimshift.orchestrator.upgrade_run import UpgradeRequest

__all__ = ["JOURNEY_OPTIONS", "execute_journey", "journey_request"]

#: `upgrade`'s options that only the journey reads.
JOURNEY_OPTIONS = (
    SKEW_OPTION,
    click.option(
        "--allow-cgroup-v1",
        is_flag=True,
        help="Let kubelets 1.35+ start on cgroup v1 hosts (failCgroupV1: false in kube-system/kubelet-config, "
        "kubeadm's SystemVerification ignored; recorded). Without it a cgroup v1 node blocks a journey past 1.34.",
    ),
    click.option(
        "--kubelet-websockets-off",
        is_flag=True,
        help="Keep kubectl exec and attach working through cri-dockerd on kubelets 1.36+: "
        "--feature-gates=ExtendWebSocketsToKubelet=false in each node's KUBELET_EXTRA_ARGS, written in the "
        "drain where its kubelet first reaches 1.36 (recorded). Without it a journey past 1.35 is blocked.",
    ),
    click.option(
        "--cri-dockerd",
        "cri_dockerd",
        type=click.Path(path_type=Path, dir_okay=False),
        default=None,
        help="A cri-dockerd binary (never downloaded) that replaces each node's in its first drain, where the "
        "node's version differs; its `--version` is read here. Needed where a kubelet of the journey (1.26+) "
        "needs CRI v1 and the node's cri-dockerd serves v1alpha2 only.",
    ),
    click.option(
        "--kubeadm-parallel",
        type=click.IntRange(min=1),
        default=KUBEADM_PARALLEL,
        show_default=True,
        help="Workers whose `kubeadm upgrade node` runs at once at each control-plane step (it restarts nothing "
        "on a worker; the apply and the control-plane nodes' steps always run one at a time). Recorded: "
        "--resume keeps it.",
    ),
)


def journey_request(values: dict[str, Any], upgrade: UpgradeRequest) -> JourneyRequest:
    return JourneyRequest(
        upgrade,
        SkewRules(values["skew"]),
        bool(values["allow_cgroup_v1"]),
        bool(values["kubelet_websockets_off"]),
        values["cri_dockerd"],
        int(values["kubeadm_parallel"]),
    )


def _operation_line(op: Operation, outcome: NodeOutcome) -> str:
    mark = "ok" if outcome.status is OutcomeStatus.MIGRATED else str(outcome.status)
    if isinstance(op, ClusterEdit):
        what = "kube-system/kubelet-config failCgroupV1: false"
    elif isinstance(op, KubeadmUpgrade):
        what = f"{op.node}: kubeadm upgrade {op.mode} v{op.release}"
    else:
        what = f"{op.node}: drain {op.number}, kubelet {op.from_release} -> {op.to_release}"
        what += " and cri-dockerd" if op.migrate else ""
    return f"{mark:>11}  {what}" + ("" if outcome.status is OutcomeStatus.MIGRATED else f": {outcome.message}")


def execute_journey(
    connection: session.Connection,
    request: JourneyRequest | None,
    options: session.MigrateOptions,
    *,
    resume: bool,
    take_over: str | None,
) -> None:
    def on_event(event: StepEvent) -> None:
        if event.phase == "failed":
            say(f"{event.node}: {event.step} failed: {event.message}")

    try:
        summary = asyncio.run(
            run_journey(
                connection,
                request,
                options,
                resume=resume,
                take_over=take_over,
                on_event=on_event,
                on_operation=lambda op, outcome: click.echo(_operation_line(op, outcome)),
                on_wait=say,
            )
        )
    except JourneyBlocked as blocked:
        click.echo(f"shimshift: {blocked}", err=True)
        for line in findings_text(blocked.findings):
            click.echo(f"  {line}", err=True)
        sys.exit(EXIT_REFUSED)
    assert options.report_dir is not None
    # The journey's records per node (each drain and each kubeadm step, with their times) in the same
    # report files as a migration's.
    files = reports_after_run(connection.journal, summary.run_id, summary.cluster, options.report_dir)
    result = summary.result
    click.echo(f"run {summary.run_id}: {result.done} of {result.total} operations done")
    announce_reports(files, summary.run_id)
    if result.stopped is not None:
        click.echo("stopped; fix the cause and run `shimshift upgrade --resume` to go on from there", err=True)
    sys.exit(EXIT_OK if result.finished else EXIT_NODES_FAILED)
