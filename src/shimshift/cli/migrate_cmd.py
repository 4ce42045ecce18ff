"""`shimshift migrate | plan | verify | rollback | status | report`: the product's commands."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from shimshift.adapters.journal import RUN_NOT_FOUND, Journal, RunRecord
from shimshift.adapters.kube.connection import open_client
from shimshift.adapters.state_dir import journal_path, reports_dir
from shimshift.cli.diffs import file_diff
from shimshift.cli.findings import findings_json, findings_text, plan_warnings_text
from shimshift.cli.journey_cmd import JOURNEY_OPTIONS, execute_journey, journey_request
from shimshift.cli.journey_text import journey_plan_text
from shimshift.cli.options import EXIT_NODES_FAILED, EXIT_OK, F, kube_options, lease_options, say
from shimshift.cli.progress import FleetProgress
from shimshift.cli.report import run_reports
from shimshift.cli.report_files import announce_reports, reports_after_run, run_report_html
from shimshift.cli.run_status import copy_lines, lease_lines
from shimshift.cli.settings import current_state_dir
from shimshift.core.canary import DEFAULT_NAMESPACE, DEFAULT_TIMEOUT
from shimshift.core.drain import DrainOptions
from shimshift.core.errors import OPTION_INVALID, Refusal, Unavailable
from shimshift.core.findings import messages
from shimshift.core.fleet import ControlPlaneOrder, FleetNode
from shimshift.core.hardened_pods import ACCEPT_FLAG
from shimshift.core.journey.skew import SkewRules
from shimshift.core.run_copy import RunCopy
from shimshift.core.run_lease import LeaseState
from shimshift.core.upgrade.binaries import parse_target
from shimshift.core.upgrade.render import render_plan
from shimshift.orchestrator import session
from shimshift.orchestrator.cluster_run import cluster_copy
from shimshift.orchestrator.journey_plan import JourneyPlan, JourneyPlanRequest, plan_whole_journey
from shimshift.orchestrator.journey_session import active_journey, is_journey
from shimshift.orchestrator.node_migration import OutcomeStatus
from shimshift.orchestrator.upgrade_run import UpgradeRequest, release_binaries_dir


def connection_options(function: F) -> F:
    """kubectl's and ssh's conventions, shared by every command that reaches the cluster and its nodes."""
    options = [
        click.option(
            "--ssh-config",
            type=click.Path(dir_okay=False, path_type=Path),
            help="ssh_config with a Host per node (default: ~/.ssh/config).",
        ),
        click.option(
            "--known-hosts",
            type=click.Path(dir_okay=False, path_type=Path),
            help="known_hosts to check node host keys against (default: the ssh_config's, then "
            "~/.ssh/known_hosts). Unknown host keys are always refused.",
        ),
        click.option("--ssh-user", help="SSH user (default: the ssh_config's); non-root users need sudo -n."),
        click.option(
            "--local", is_flag=True, help="Run on the node itself as root instead of over SSH (one node only)."
        ),
        click.option(
            "--journal",
            type=click.Path(dir_okay=False, path_type=Path),
            help="Journal database (default: journal.sqlite in the state directory, see shimshift --help).",
        ),
    ]
    for option in reversed(options):
        function = option(function)
    return kube_options(function)


def _connection(values: dict[str, Any]) -> session.Connection:
    return session.Connection(
        kubeconfig=values.pop("kubeconfig"),
        context=values.pop("context"),
        ssh_config=values.pop("ssh_config"),
        known_hosts=values.pop("known_hosts"),
        ssh_user=values.pop("ssh_user"),
        local=values.pop("local"),
        journal=values.pop("journal") or journal_path(current_state_dir()),
    )


def accept_option(function: F) -> F:
    return click.option(
        ACCEPT_FLAG,
        "accept_refused_hardened_pods",
        is_flag=True,
        help="Migrate kubelets before 1.24 although they will refuse pods with allowPrivilegeEscalation: "
        "false on cri-dockerd (recorded in the journal and the report); verify's canary then leaves out "
        "only that field.",
    )(function)


def canary_options(function: F) -> F:
    """verify's canary pod, and the opt-in for kubelets before 1.24 that would refuse its hardened field."""
    return accept_option(canary_base_options(function))


def canary_base_options(function: F) -> F:
    """verify's canary pod: a hardened pod pinned to the node that must run on the pod network."""
    options = [
        click.option(
            "--canary-image",
            help="Image of the canary pod, already on every node (never pulled; default: the node's pause image).",
        ),
        click.option(
            "--canary-namespace",
            default=DEFAULT_NAMESPACE,
            show_default=True,
            help="Existing namespace for the canary pod (deploy/rbac.yaml's Role must be there).",
        ),
        click.option(
            "--canary-timeout",
            default=DEFAULT_TIMEOUT,
            show_default=True,
            type=click.FloatRange(min=1),
            help="Seconds the canary pod has to run.",
        ),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def _canary_values(values: dict[str, Any]) -> dict[str, Any]:
    return {
        "accept_refused_hardened_pods": values["accept_refused_hardened_pods"],
        "canary_image": values["canary_image"],
        "canary_namespace": values["canary_namespace"],
        "canary_timeout": values["canary_timeout"],
    }



def upgrade_options(*, required: bool) -> Callable[[F], F]:
    """`upgrade`'s target and where its binaries come from (also `plan --to`)."""
    options = [
        click.option(
            "--to",
            "to",
            required=required,
            help="The release to go to, e.g. 1.24.17 (one minor above the cluster's; `upgrade` past one minor "
            "takes the whole cluster on the journey `plan --to` shows)"
            + ("." if required else "; `plan --to` shows the whole journey to any later release, e.g. 1.37.2; "
               "`upgrade --resume` takes it from the journal."),
        ),
        click.option(
            "--binaries",
            type=click.Path(exists=True, file_okay=False, path_type=Path),
            help="Directory with kubeadm, kubelet and kubectl of --to, or a folder per release (DIR/v1.24.17, "
            "checked by `plan --to` for every release on the way); copied to each node, the old ones kept.",
        ),
        click.option(
            "--install-command",
            "install_commands",
            multiple=True,
            help="Instead of --binaries: a package command run on the node per binary, as an argument list "
            "(never a shell); {binary} and {version} are expanded. Repeatable, run in order.",
        ),
        click.option(
            "--kubeadm-flag",
            "kubeadm_flags",
            multiple=True,
            help="Added to every `kubeadm upgrade` (e.g. --ignore-preflight-errors=ImagePull,"
            "CoreDNSUnsupportedPlugins,CoreDNSMigration where CoreDNS and kube-proxy are not deployed). Repeatable.",
        ),
    ]

    def decorate(function: F) -> F:
        for option in reversed(options):
            function = option(function)
        return function

    return decorate


def journey_options(function: F) -> F:
    """The journey's rules (`plan --to`, and `upgrade` past one minor), and `plan`'s choice to read no node."""
    options = [
        *JOURNEY_OPTIONS,
        click.option(
            "--skip-node-files",
            is_flag=True,
            help="Plan from the API alone: do not connect to the nodes (the traps in their files go unchecked).",
        ),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def _upgrade_request(values: dict[str, Any]) -> UpgradeRequest | None:
    if values["to"] is None:
        return None
    binaries = values["binaries"]
    if binaries is not None:
        # A folder per release (DIR/v1.24.17) as the journey keeps them, or the binaries in DIR itself.
        binaries = release_binaries_dir(binaries, parse_target(values["to"]), only=True)
    return UpgradeRequest(
        to=values["to"],
        binaries_dir=binaries,
        install_commands=tuple(values["install_commands"]),
        kubeadm_flags=tuple(values["kubeadm_flags"]),
    )


# Which pods the drain may remove beyond kubectl's defaults: `migrate`'s, `upgrade`'s and `plan`'s.
_DRAIN_POD_OPTIONS = (
    click.option("--delete-emptydir-data", is_flag=True, help="Drain: evict pods with emptyDir volumes."),
    click.option("--force", is_flag=True, help="Drain: also delete pods no controller manages."),
)
def drain_pod_options(function: F) -> F:
    for option in reversed(_DRAIN_POD_OPTIONS):
        function = option(function)
    return function


# A run's drain gives up after 10 minutes; kubectl drain's own default is to wait for ever.
DRAIN_TIMEOUT = 600.0


def _drain_options(values: dict[str, Any]) -> DrainOptions:
    """The drain `migrate`, `upgrade` and `plan` do: kubectl drain --ignore-daemonsets with the operator's
    choices (`plan` has no grace period or timeout to choose: it evicts nothing)."""
    defaults = DrainOptions()
    return DrainOptions(
        ignore_daemonsets=True,
        delete_emptydir_data=values["delete_emptydir_data"],
        force=values["force"],
        grace_period=values.get("grace_period", defaults.grace_period),
        timeout=values.get("drain_timeout", defaults.timeout),
    )


def fleet_options(function: F) -> F:
    """Which nodes, how many at once, the drain, the health wait and the reports: `migrate`'s and `upgrade`'s."""
    options = [
        click.argument("nodes", nargs=-1),
        click.option("-l", "--selector", help="Label selector of the nodes."),
        click.option(
            "--all",
            "all_nodes",
            is_flag=True,
            help="Every node that needs it: on dockershim (migrate), or a kubelet older than --to (upgrade).",
        ),
        click.option(
            "--max-unavailable",
            default="1",
            show_default=True,
            help="Workers migrated at once: a count or a percentage of the selected nodes (past one minor, "
            "the journey's workers drained at once, of all nodes).",
        ),
        click.option(
            "--control-plane",
            type=click.Choice([order.value for order in ControlPlaneOrder]),
            default="first",
            show_default=True,
            help="Control-plane nodes (one at a time) before or after workers.",
        ),
        click.option(
            "--max-failures",
            default=1,
            show_default=True,
            type=click.IntRange(min=1),
            help="Stop starting nodes after this many failed or refused.",
        ),
        click.option("--no-rollback", is_flag=True, help="Leave a node that fails verification as it is."),
        click.option("--resume", is_flag=True, help="Continue the unfinished run for this cluster where it stopped."),
        click.option(
            "--install-cri-dockerd",
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
            help="Install this cri-dockerd binary and its units on each node first (nothing is downloaded).",
        ),
        *_DRAIN_POD_OPTIONS,
        click.option(
            "--grace-period",
            default=DrainOptions().grace_period,
            show_default=True,
            help="Drain: seconds per pod (-1: the pod's own).",
        ),
        click.option(
            "--drain-timeout", default=DRAIN_TIMEOUT, show_default=True, help="Drain: give up after this many seconds."
        ),
        click.option(
            "--health-timeout",
            default=300.0,
            show_default=True,
            help="Seconds to wait for the node to be healthy after the kubelet restart.",
        ),
        click.option(
            "--report-dir",
            type=click.Path(file_okay=False, path_type=Path),
            help="Where the HTML, Markdown and JSON reports go (default: reports/ next to the journal).",
        ),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def _fleet_values(values: dict[str, Any], connection: session.Connection) -> dict[str, Any]:
    return {
        "nodes": tuple(values["nodes"]),
        "selector": values["selector"],
        "all_nodes": values["all_nodes"],
        "max_unavailable": values["max_unavailable"],
        "control_plane": ControlPlaneOrder(values["control_plane"]),
        "max_failures": values["max_failures"],
        "rollback": not values["no_rollback"],
        "drain": _drain_options(values),
        "health_timeout": values["health_timeout"],
        "install_cri_dockerd": values["install_cri_dockerd"],
        "report_dir": values["report_dir"] or reports_dir(connection.journal or journal_path(current_state_dir())),
        "canary_image": values["canary_image"],
        "canary_namespace": values["canary_namespace"],
        "canary_timeout": values["canary_timeout"],
    }


@click.command()
@fleet_options
@canary_options
@lease_options(namespace=False)
@connection_options
def migrate(**values: Any) -> None:
    """Move NODES (or -l / --all) from dockershim to cri-dockerd, node by node, with proof."""
    connection = _connection(values)
    options = session.MigrateOptions(
        **_fleet_values(values, connection), accept_refused_hardened_pods=values["accept_refused_hardened_pods"]
    )
    _execute(connection, options, resume=values["resume"], verb="migrate", take_over=values["take_over"])


def _journey_options(function: F) -> F:
    for option in reversed(JOURNEY_OPTIONS):
        function = option(function)
    return function


@click.command()
@upgrade_options(required=False)
@_journey_options
@fleet_options
@canary_base_options
@lease_options(namespace=False)
@connection_options
def upgrade(**values: Any) -> None:
    """Move NODES (or -l / --all) to cri-dockerd and to kubelet --to in one drain, control plane first.

    Past one minor, the whole cluster takes the journey (docs/journey.md): kubeadm of every minor on every
    node, each node drained as few times as --skew allows."""
    if values["to"] is None and not values["resume"]:
        raise click.UsageError("Missing option '--to' (only --resume takes it from the journal).")
    connection = _connection(values)
    upgrade_request = _upgrade_request(values)
    options = session.MigrateOptions(**_fleet_values(values, connection), upgrade=upgrade_request)
    resume = values["resume"]
    if (resume and active_journey(connection)) or (
        not resume and upgrade_request is not None and asyncio.run(is_journey(connection, upgrade_request.to))
    ):
        if not resume and (values["nodes"] or values["selector"]):
            raise Refusal(
                f"--to {upgrade_request.to if upgrade_request else ''} is past one minor: the journey moves the "
                "whole cluster, not chosen nodes",
                hint="give --all (`shimshift plan --to` shows every step), or go one minor at a time",
                code=OPTION_INVALID,
            )
        # The journey keeps a folder per release under --binaries DIR: DIR itself, never DIR/v<--to>.
        journey_upgrade = replace(upgrade_request, binaries_dir=values["binaries"]) if upgrade_request else None
        request = journey_request(values, journey_upgrade) if journey_upgrade is not None else None
        execute_journey(connection, request, options, resume=resume, take_over=values["take_over"])
        return
    if values["cri_dockerd"] is not None:
        raise Refusal(
            f"--cri-dockerd {values['cri_dockerd']} replaces cri-dockerd in a journey's drains; this upgrade is "
            "one minor",
            hint="leave --cri-dockerd out (`migrate --install-cri-dockerd PATH` installs one on a node without it)",
            code=OPTION_INVALID,
        )
    _execute(connection, options, resume=resume, verb="upgrade", take_over=values["take_over"])


def _execute(
    connection: session.Connection, options: session.MigrateOptions, *, resume: bool, verb: str, take_over: str | None
) -> None:
    console = Console(stderr=True)
    progress: FleetProgress | None = None

    def planned(nodes: list[FleetNode]) -> None:
        nonlocal progress
        progress = FleetProgress(total=len(nodes), console=console)
        progress.__enter__()
        names = ", ".join(node.name for node in nodes) or "none"
        console.print(f"nodes to {verb}: {names}", markup=False, highlight=False)

    try:
        summary = asyncio.run(
            session.migrate(
                connection,
                options,
                resume=resume,
                take_over=take_over,
                on_wait=say,
                command=verb,
                on_plan=planned,
                on_event=lambda event: progress.on_event(event) if progress else None,
                on_outcome=lambda outcome: progress.on_outcome(outcome) if progress else None,
            )
        )
    finally:
        if progress is not None:
            progress.__exit__(None, None, None)
    assert options.report_dir is not None
    files = reports_after_run(connection.journal, summary.run_id, summary.cluster, options.report_dir, summary.result)
    result = summary.result
    if result.stopped_reason:
        click.echo(result.stopped_reason, err=True)
    counts: dict[str, int] = {}
    for outcome in result.outcomes:
        counts[outcome.status] = counts.get(outcome.status, 0) + 1
    text = ", ".join(f"{count} {status}" for status, count in sorted(counts.items())) or "no node"
    click.echo(f"run {summary.run_id}: {text}")
    announce_reports(files, summary.run_id)
    ok = {OutcomeStatus.MIGRATED, OutcomeStatus.ALREADY_MIGRATED}
    sys.exit(EXIT_OK if all(o.status in ok for o in result.outcomes) and not result.not_started else EXIT_NODES_FAILED)


@contextlib.contextmanager
def _recorded_runs(connection: session.Connection) -> Iterator[tuple[str, Journal, list[RunRecord]]]:
    """The cluster's server, the journal and the cluster's runs, oldest first."""
    identity = session.cluster_identity(connection)
    journal = Journal(connection.journal)
    try:
        yield identity.server, journal, sorted(journal.runs(identity), key=lambda run: run.started_at)
    finally:
        journal.close()


@click.command()
@click.option("--run", "run_id", help="The run to report (default: the newest for this cluster).")
@click.option("-o", "--output", type=click.Choice(["markdown", "json", "html"]), default="markdown", show_default=True)
@connection_options
def report(**values: Any) -> None:
    """Print the report of a run from the journal (the HTML one is a whole self-contained page)."""
    with _recorded_runs(_connection(values)) as (server, journal, runs):
        wanted = [run for run in runs if run.id == values["run_id"]] if values["run_id"] else runs
        if not wanted:
            wanted_id = values["run_id"]
            raise Refusal(
                f"no run {wanted_id} in the journal" if wanted_id else "no such run in the journal",
                file=str(journal.path),
                code=RUN_NOT_FOUND,
            )
        if values["output"] == "html":
            click.echo(run_report_html(journal, wanted[-1].id, server), nl=False)
            return
        json_text, markdown_text = run_reports(journal, wanted[-1].id, server)
        click.echo(json_text if values["output"] == "json" else markdown_text, nl=False)


@click.command()
@click.option(
    "--canary-namespace",
    "lease_namespace",
    default=DEFAULT_NAMESPACE,
    show_default=True,
    help="Namespace of the cluster's shimshift Lease and its runs' state.",
)
@connection_options
def status(**values: Any) -> None:
    """Who holds the cluster's Lease and where each node of the newest run stands: from the cluster (any
    machine with the kubeconfig), else from this machine's journal."""
    namespace = values.pop("lease_namespace")
    connection = _connection(values)
    shown = _cluster_status(connection, namespace)
    with _recorded_runs(connection) as (_, journal, runs):
        # Run ids begin with their start time: a run of this journal newer than the cluster's is shown too.
        if shown is not None and (not runs or runs[-1].id <= shown):
            return  # the cluster's copy of the newest run was shown: it is never behind this journal
        if not runs:
            click.echo("no run recorded for this cluster")
            return
        run = runs[-1]
        click.echo(f"run {run.id}: {run.status} (started {run.started_at:%Y-%m-%d %H:%M:%S} UTC)")
        for node, record in sorted(journal.last_records(run.id).items()):
            message = record.detail.get("message", "") if record.detail else ""
            click.echo(f"  {node}: {record.step} {record.phase}" + (f": {message}" if message else ""))


def _cluster_status(connection: session.Connection, namespace: str) -> str | None:
    """Print the Lease and the run the cluster keeps; returns that run's id (None: none, or unreachable)."""

    async def read() -> tuple[LeaseState | None, RunCopy | None]:
        async with open_client(connection.kubeconfig, context=connection.context) as client:
            return await cluster_copy(client, namespace)

    try:
        lease, copy = asyncio.run(read())
    except (Refusal, Unavailable) as error:
        click.echo(f"cluster: not read ({error}); this machine's journal follows")
        return None
    for line in lease_lines(lease, namespace, datetime.now(UTC)):
        click.echo(line)
    if copy is None:
        return None
    for line in copy_lines(copy):
        click.echo(line)
    return copy.run_id


@click.command("plan")
@click.argument("nodes", nargs=-1)
@click.option("-l", "--selector", help="Label selector of the nodes to plan (with --to: of the journey's nodes).")
@click.option("--all", "all_nodes", is_flag=True, help="Every node whose kubelet still uses dockershim.")
@click.option("--control-plane", type=click.Choice([order.value for order in ControlPlaneOrder]), default="first")
@drain_pod_options
@click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
@upgrade_options(required=False)
@journey_options
@accept_option
@connection_options
def plan_command(**values: Any) -> None:
    """Dry run: every file diff, API change and eviction `migrate` would make, in order. With --to: the whole
    journey to that release (each control-plane step and drain, every trap on the way; no binaries needed),
    then, for a one-minor upgrade given its binaries, the commands it would run on each node. Changes nothing."""
    connection = _connection(values)
    journey: JourneyPlan | None = None
    text = values["output"] != "json"
    if values["to"] is not None:
        journey = asyncio.run(plan_whole_journey(connection, _journey_request(values)))
        if text:  # first, so it stands even when the per-node plan below is refused
            given = bool(values["binaries"] or values["install_commands"])
            click.echo(journey_plan_text(journey, binaries_given=given, kubeadm_parallel=values["kubeadm_parallel"]))
    reports: list[session.NodePlanReport] = []
    if journey is None or _per_node_upgrade_plan(journey, values):
        options = session.MigrateOptions(
            nodes=tuple(values["nodes"]),
            selector=values["selector"],
            all_nodes=values["all_nodes"],
            control_plane=ControlPlaneOrder(values["control_plane"]),
            drain=_drain_options(values),
            accept_refused_hardened_pods=values["accept_refused_hardened_pods"],
            upgrade=_upgrade_request(values),
        )
        reports = asyncio.run(session.plan(connection, options))
    elif text and journey.blocked and (values["binaries"] or values["install_commands"]):
        click.echo("the per-node commands follow once no finding blocks")
    if not text:
        nodes = [_plan_data(item) for item in reports]
        _print_json(nodes if journey is None else {"journey": journey.to_json(), "nodes": nodes})
    for item in reports if text else ():
        click.echo(_plan_text(item))
    blocked = any(item.blocked for item in reports) or (journey is not None and journey.blocked)
    sys.exit(EXIT_NODES_FAILED if blocked else EXIT_OK)


def _journey_request(values: dict[str, Any]) -> JourneyPlanRequest:
    return JourneyPlanRequest(
        to=values["to"],
        skew=SkewRules(values["skew"]),
        selector=values["selector"],
        allow_cgroup_v1=values["allow_cgroup_v1"],
        kubelet_websockets_off=values["kubelet_websockets_off"],
        binaries_dir=values["binaries"],
        install_commands=tuple(values["install_commands"]),
        read_nodes=not values["skip_node_files"],
        cri_dockerd=values["cri_dockerd"],
    )


def _per_node_upgrade_plan(journey: JourneyPlan, values: dict[str, Any]) -> bool:
    """Whether `upgrade`'s own per-node plan follows the journey: a one-minor upgrade (what `upgrade` runs
    today) whose binaries or package commands were given, and nothing blocking on the way."""
    one_minor = len(journey.journey.control_plane_steps()) <= 1 and all(
        count <= 1 for count in journey.journey.drain_counts().values()
    )
    given = bool(values["binaries"] or values["install_commands"])
    return one_minor and given and not journey.blocked


def _print_json(data: object) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


def _plan_data(item: session.NodePlanReport) -> dict[str, Any]:
    data: dict[str, Any] = {"node": item.node, "problem": item.problem, "findings": findings_json(item.findings)}
    if item.plan is not None:
        plan = item.plan
        data.update(
            noop=plan.noop_reason,
            files=[
                {
                    "path": change.path,
                    "diff": file_diff(change.path, change.before, change.after),
                    "removed": change.after is None,
                }
                for change in plan.changes
            ],
            cri_dockerd={
                "settings": dict(plan.cri_dockerd_settings),
                "restart": plan.cri_dockerd_config_changed,
            },
            annotation={"before": plan.cri_socket_before, "after": plan.cri_socket_after},
            expected_kubelet_args=dict(plan.expected_kubelet_args),
            notes=findings_json(plan.warnings),
        )
    if item.drain is not None:
        data["drain"] = item.drain.to_json()
    if item.upgrade is not None:
        data["upgrade"] = item.upgrade.to_record()
    return data


def _plan_text(item: session.NodePlanReport) -> str:
    lines = [f"== {item.node}"]
    texts = findings_text(item.findings)
    lines += [("blocking: " if f.blocking else "note: ") + text for f, text in zip(item.findings, texts, strict=True)]
    if item.problem is not None:
        return "\n".join(lines)  # the preflight refusal is one of the findings above
    plan = item.plan
    assert plan is not None
    if plan.noop_reason:
        return "\n".join([*lines, f"nothing to do: {plan.noop_reason}"])
    lines.append("1. cordon (recorded as ours in shimshift.io/cordoned-by)")
    if item.drain is not None:
        drain = item.drain
        lines.append(f"2. drain: evict {len(drain.evict)} pod(s): {', '.join(drain.evict) or '-'}")
        lines += [f"   blocked now by PodDisruptionBudget {b.pdb}: {b.pod}" for b in drain.blocked]
        lines += [f"   refused: {r.pod}: {r.reason}" for r in drain.refused]
        lines.append(f"   left in place: {', '.join(drain.ignored) or '-'}")
    lines.append("3. write:")
    lines += [file_diff(change.path, change.before, change.after).rstrip("\n") for change in plan.changes]
    lines.append(
        f"4. annotate kubeadm.alpha.kubernetes.io/cri-socket: {plan.cri_socket_before} -> {plan.cri_socket_after}"
    )
    settings = " ".join(f"{key}={value}" for key, value in plan.cri_dockerd_settings.items())
    restart = "restart" if plan.cri_dockerd_config_changed else "no restart needed"
    lines.append(f"5. cri-dockerd ({restart}): {settings or 'defaults'}")
    lines.append(
        "6. restart kubelet; verify it runs with "
        + " ".join(f"{key}={value}" for key, value in plan.expected_kubelet_args.items())
    )
    lines.append("7. uncordon (only if we cordoned)")
    lines += plan_warnings_text(plan.warnings)
    if item.upgrade is not None:
        lines += ["the upgrade, step by step (the migration's steps above run where it says so):"]
        lines += render_plan(item.upgrade).splitlines()[1:]
    return "\n".join(lines)


@click.command()
@click.argument("nodes", nargs=-1, required=True)
@canary_options
@connection_options
def verify(**values: Any) -> None:
    """Prove NODES run on cri-dockerd: kubelet command line, annotation, heartbeat, CRI pod sandboxes,
    cri-dockerd's streaming server on loopback, and a hardened canary pod running on the pod network."""
    connection = _connection(values)
    options = session.MigrateOptions(**_canary_values(values))
    results = asyncio.run(session.verify(connection, tuple(values["nodes"]), options))
    for node, problems in results.items():
        click.echo(f"{node}: " + ("verified" if not problems else "NOT verified: " + messages(problems)))
    sys.exit(EXIT_OK if not any(results.values()) else EXIT_NODES_FAILED)


@click.command()
@click.argument("nodes", nargs=-1, required=True)
@lease_options(namespace=True)
@connection_options
def rollback(**values: Any) -> None:
    """Put NODES back on dockershim from the plan their newest migration recorded, and prove it."""
    connection = _connection(values)
    console = Console(stderr=True)
    progress = FleetProgress(total=len(values["nodes"]), console=console)
    with progress:
        summary = asyncio.run(
            session.rollback(
                connection,
                tuple(values["nodes"]),
                on_event=progress.on_event,
                namespace=values["lease_namespace"],
                take_over=values["take_over"],
                on_wait=say,
            )
        )
    for outcome in summary.result.outcomes:
        click.echo(f"{outcome.node}: {outcome.status}" + (f" ({outcome.message})" if outcome.message else ""))
    failed = any(outcome.status is OutcomeStatus.FAILED for outcome in summary.result.outcomes)
    sys.exit(EXIT_NODES_FAILED if failed else EXIT_OK)


COMMANDS = [migrate, upgrade, plan_command, verify, rollback, report, status]
