"""``shimshift audit``, ``cordon``, ``uncordon`` and ``drain``: the cluster side, with kubectl's flags.

Only this module prints. Text output follows kubectl's wording where kubectl has one ("node/x cordoned",
"evicting pod ns/x", "error when evicting ... (will retry after 5s)") so operators read it as they read
kubectl; ``-o json`` gives one object per node under ``nodes`` (name, role, kubelet
version, runtime and its evidence, ...).
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
from collections.abc import Awaitable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click
import yaml
from rich.console import Console
from rich.table import Table

from shimshift.adapters.kube.audit import AuditReport, audit_cluster
from shimshift.adapters.kube.client import list_pages
from shimshift.adapters.kube.connection import open_client
from shimshift.adapters.kube.drain import DrainResult, drain_node
from shimshift.adapters.kube.evictions import PDB_PROBE, DrainEvent, DrainEventKind
from shimshift.adapters.kube.nodes import cordon, get_node, uncordon_if_ours
from shimshift.cli.journey_text import journey_plan_text
from shimshift.cli.options import EXIT_NODES_FAILED, SKEW_OPTION, kube_options, lease_options, say
from shimshift.core.drain import DrainOptions, DryRun
from shimshift.core.errors import OPTION_INVALID, Refusal, Unavailable
from shimshift.core.fleet import NO_NODE_GIVEN, NO_NODE_MATCHES
from shimshift.core.hardened_pods import ACCEPT_FLAG
from shimshift.core.journey.skew import SkewRules
from shimshift.core.run_lease import RunStatus
from shimshift.orchestrator.cluster_run import drain_run
from shimshift.orchestrator.journey_plan import JourneyPlanRequest, plan_whole_journey
from shimshift.orchestrator.session import Connection

T = TypeVar("T")

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(h|ms|m|s)")
_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


def parse_duration(text: str) -> float:
    """kubectl's --timeout: a Go duration ("90s", "5m", "1h30m", "0s") or plain seconds ("30")."""
    text = text.strip()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    if not text or _DURATION.sub("", text):
        raise click.BadParameter(f"{text!r} is not a duration (use e.g. 90s, 5m, 1h30m, or 0 for none)")
    return sum(float(value) * _UNITS[unit] for value, unit in _DURATION.findall(text))


@dataclass
class _Changes:
    """How many nodes a command changed so far (an error after the first one is no longer exit 2)."""

    made: int = 0


def _run(coroutine: Awaitable[T], changes: _Changes | None = None) -> T:
    try:
        return asyncio.run(coroutine)  # type: ignore[arg-type]
    except (Refusal, Unavailable) as error:
        if changes is None or not changes.made:
            raise  # nothing changed: the top-level handler reports it and exits 2
        click.echo(f"shimshift: {error} (after {changes.made} node(s) had been changed)", err=True)
        sys.exit(EXIT_NODES_FAILED)


async def _select_nodes(client: Any, names: tuple[str, ...], selector: str | None) -> list[str]:
    if names and selector:
        raise Refusal("give node names or --selector, not both", "kubectl refuses the same", code=OPTION_INVALID)
    if selector:
        found: list[str] = []
        async for page in list_pages(client, "/api/v1/nodes", params={"labelSelector": selector}):
            found.extend(str(node["metadata"]["name"]) for node in page)
        if not found:
            raise Refusal(
                f"no node matches the selector {selector!r}", "check it with kubectl get nodes -l", code=NO_NODE_MATCHES
            )
        return found
    if not names:
        raise Refusal("no node given", "name one or more nodes, or use -l SELECTOR", code=NO_NODE_GIVEN)
    for name in names:
        await get_node(client, name)  # a missing node is refused before anything changes
    return list(names)


# -- audit -------------------------------------------------------------------------------------------------
def render_audit(report: AuditReport, console: Console) -> None:
    table = Table(title="Nodes", title_justify="left")
    for column in (
        "NODE",
        "ROLE",
        "READY",
        "SCHED",
        "KUBELET",
        "RUNTIME VERSION",
        "CRI SOCKET",
        "PODS",
        "VERDICT",
    ):
        table.add_column(column, overflow="fold")
    for node in report.nodes:
        table.add_row(
            node.name,
            node.role,
            "yes" if node.ready else "NO",
            "yes" if node.schedulable else "no",
            node.kubelet_version,
            node.container_runtime_version,
            node.cri_socket or "-",
            str(node.pods),
            node.runtime.runtime.value,
        )
    console.print(table)
    for node in report.nodes:
        console.print(
            f"[bold]{node.name}[/]: {node.runtime.runtime.value} — " + "; ".join(node.runtime.evidence),
            highlight=False,
        )
    if report.socket_mounts:
        mounts = Table(title="Workloads that can reach a Docker socket", title_justify="left")
        for column in ("WORKLOAD", "EXAMPLE POD", "NODE", "HOSTPATH", "KIND", "REACHES"):
            mounts.add_column(column, overflow="fold")
        for mount in report.socket_mounts:
            mounts.add_row(
                mount.workload, mount.pod, mount.node, mount.path, mount.kind, ", ".join(mount.reaches)
            )
        console.print(mounts)
    else:
        console.print("No workload mounts a Docker or dockershim socket, or a directory above one.")
    render_hardened(report, console)


def render_hardened(report: AuditReport, console: Console) -> None:
    refusing = [node.name for node in report.refusing_nodes]
    if not report.hardened:
        console.print(
            "No workload or pod sets allowPrivilegeEscalation: false or a non-default procMount "
            "(nothing kubelets before 1.24 refuse on cri-dockerd).",
            highlight=False,
        )
        return
    table = Table(
        title=f"Hardened workloads ({len(report.hardened)}): pods that kubelets before 1.24 refuse on cri-dockerd",
        title_justify="left",
    )
    for column in ("WORKLOAD", "PODS", "FROM", "REASON", "CONTAINERS"):
        table.add_column(column, overflow="fold")
    for workload in report.hardened:
        table.add_row(
            workload.label(),
            str(workload.pods),
            "template" if workload.template else "pods only",
            "/".join(workload.reasons),
            workload.settings(),
        )
    console.print(table)
    console.print(
        f"Nodes that refuse them on cri-dockerd (kubelet < 1.24): {', '.join(refusing) or 'none'}"
        + (f" (shimshift migrate refuses these nodes unless {ACCEPT_FLAG})" if refusing else ""),
        highlight=False,
    )


@click.command("audit")
@kube_options
@click.option("-l", "--selector", default=None, help="Only nodes matching this label selector.")
@click.option(
    "-o", "--output", type=click.Choice(["table", "json", "yaml"]), default="table", show_default=True
)
@click.option(
    "--chunk-size", type=click.IntRange(min=0), default=500, show_default=True, help="Objects per API page."
)
@click.option(
    "--to",
    "to",
    default=None,
    help="Also the journey to this release (e.g. 1.37.2): each control-plane step and drain, and the traps "
    "the API shows (`plan --to` also reads the nodes' files).",
)
@SKEW_OPTION
@click.option("--allow-cgroup-v1", is_flag=True, help="With --to: as `plan --allow-cgroup-v1`.")
@click.option("--kubelet-websockets-off", is_flag=True, help="With --to: as `plan --kubelet-websockets-off`.")
@click.option(
    "--cri-dockerd",
    "cri_dockerd",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="With --to: as `plan --cri-dockerd PATH`.",
)
def audit_command(
    kubeconfig: Path | None,
    context: str | None,
    selector: str | None,
    output: str,
    chunk_size: int,
    to: str | None,
    skew: str,
    allow_cgroup_v1: bool,
    kubelet_websockets_off: bool,
    cri_dockerd: Path | None,
) -> None:
    """Show each node's kubelet, runtime and cri-socket, a runtime verdict with its evidence, and the
    workloads that mount the Docker socket (or /var/run, /run); with --to, the journey to that release."""

    async def run() -> AuditReport:
        async with open_client(kubeconfig, context=context) as client:
            return await audit_cluster(client, selector=selector, chunk_size=chunk_size)

    report = _run(run())
    journey = None
    if to is not None:
        request = JourneyPlanRequest(
            to,
            SkewRules(skew),
            selector=selector,
            allow_cgroup_v1=allow_cgroup_v1,
            kubelet_websockets_off=kubelet_websockets_off,
            read_nodes=False,
            cri_dockerd=cri_dockerd,
        )
        journey = _run(plan_whole_journey(Connection(kubeconfig=kubeconfig, context=context), request))
    data = report.to_json() | ({"journey": journey.to_json()} if journey is not None else {})
    if output == "json":
        click.echo(json.dumps(data, indent=2))
    elif output == "yaml":
        click.echo(yaml.safe_dump(data, sort_keys=False), nl=False)
    else:
        # Piped output keeps whole names and paths (rich would squeeze the table to 80 columns).
        render_audit(report, Console() if sys.stdout.isatty() else Console(width=220))
        if journey is not None:
            click.echo(journey_plan_text(journey, binaries_given=True))


# -- cordon / uncordon -------------------------------------------------------------------------------------
@click.command("cordon")
@kube_options
@click.argument("nodes", nargs=-1)
@click.option("-l", "--selector", default=None, help="Cordon the nodes matching this label selector.")
@click.option("--dry-run", type=click.Choice([d.value for d in DryRun]), default="none", show_default=True)
def cordon_command(
    kubeconfig: Path | None, context: str | None, nodes: tuple[str, ...], selector: str | None, dry_run: str
) -> None:
    """Mark nodes unschedulable, recording that shimshift did it (so only we undo it)."""
    changes = _Changes()

    async def run() -> None:
        async with open_client(kubeconfig, context=context) as client:
            for node in await _select_nodes(client, nodes, selector):
                if dry_run == "client":
                    click.echo(f"node/{node} cordoned (dry run)")
                    continue
                current = await get_node(client, node)
                already = bool(current.get("spec", {}).get("unschedulable"))
                ours = await cordon(client, node, dry_run=dry_run == "server")
                changes.made += not already and dry_run == "none"
                suffix = " (server dry run)" if dry_run == "server" else ""
                if already:
                    owner = "shimshift" if ours else "someone else: shimshift will not uncordon it"
                    click.echo(f"node/{node} already cordoned (by {owner})")
                else:
                    click.echo(f"node/{node} cordoned{suffix}")

    _run(run(), changes)


@click.command("uncordon")
@kube_options
@click.argument("nodes", nargs=-1)
@click.option("-l", "--selector", default=None, help="Uncordon the nodes matching this label selector.")
@click.option("--dry-run", type=click.Choice([d.value for d in DryRun]), default="none", show_default=True)
def uncordon_command(
    kubeconfig: Path | None, context: str | None, nodes: tuple[str, ...], selector: str | None, dry_run: str
) -> None:
    """Mark nodes schedulable again, but only those shimshift cordoned."""
    changes = _Changes()

    async def run() -> None:
        async with open_client(kubeconfig, context=context) as client:
            for node in await _select_nodes(client, nodes, selector):
                current = await get_node(client, node)
                if not current.get("spec", {}).get("unschedulable"):
                    click.echo(f"node/{node} already uncordoned")
                    continue
                if dry_run == "client":
                    click.echo(f"node/{node} uncordoned (dry run)")
                    continue
                if await uncordon_if_ours(client, node, dry_run=dry_run == "server"):
                    changes.made += dry_run == "none"
                    click.echo(
                        f"node/{node} uncordoned" + (" (server dry run)" if dry_run == "server" else "")
                    )
                else:
                    click.echo(
                        f"node/{node} left cordoned: shimshift did not cordon it "
                        "(use kubectl uncordon if that is really meant)"
                    )

    _run(run(), changes)


# -- drain -------------------------------------------------------------------------------------------------
def text_progress(event: DrainEvent, options: DrainOptions) -> None:
    """kubectl-like lines for the text output."""
    out = click.echo
    dry = {DryRun.NONE: "", DryRun.CLIENT: " (dry run)", DryRun.SERVER: " (server dry run)"}[options.dry_run]
    if event.kind is DrainEventKind.CORDONED:
        out(f"node/{event.node} cordoned{dry}")
    elif event.kind is DrainEventKind.NOT_OUR_CORDON:
        out(f"node/{event.node} already cordoned by someone else; shimshift will leave it cordoned")
    elif event.kind is DrainEventKind.WARNING:
        out(f"WARNING: {event.message}", err=True)
    elif event.kind is DrainEventKind.REFUSED:
        out(f"error: unable to drain node {event.node!r}: {event.message}", err=True)
    elif event.kind is DrainEventKind.EVICTING and event.message == PDB_PROBE:
        out(f"checking PodDisruptionBudgets for pod {event.pod} (server dry run)")
    elif event.kind is DrainEventKind.EVICTING:
        out(f"evicting pod {event.pod}{dry}")
    elif event.kind is DrainEventKind.BLOCKED:
        namespace, _, name = (event.pod or "").partition("/")
        budget = f" [PodDisruptionBudget {event.pdb}]" if event.pdb else ""
        out(f'error when evicting pods/"{name}" -n "{namespace}"{budget}: {event.message}', err=True)
    elif event.kind is DrainEventKind.EVICTED and options.dry_run is DryRun.CLIENT:
        out(f"evicting pod {event.pod} (dry run)")
    elif event.kind in (DrainEventKind.GONE, DrainEventKind.DELETED) and options.dry_run is DryRun.NONE:
        if event.kind is DrainEventKind.GONE:
            out(f"pod/{(event.pod or '').partition('/')[2]} evicted")
    elif event.kind is DrainEventKind.FAILED:
        out(f"error: pod {event.pod}: {event.message}", err=True)
    elif event.kind is DrainEventKind.TIMEOUT:
        out(f"error: {event.message}", err=True)


@click.command("drain")
@kube_options
@click.argument("nodes", nargs=-1)
@click.option("-l", "--selector", default=None, help="Drain the nodes matching this label selector.")
@click.option("--ignore-daemonsets", is_flag=True, help="Ignore DaemonSet-managed pods.")
@click.option(
    "--delete-emptydir-data", is_flag=True, help="Continue even if pods use emptyDir (data is lost)."
)
@click.option("--delete-local-data", is_flag=True, hidden=True, help="Deprecated: --delete-emptydir-data.")
@click.option("--force", is_flag=True, help="Continue even for pods that declare no controller.")
@click.option(
    "--grace-period",
    type=int,
    default=-1,
    show_default=True,
    help="Seconds each pod gets to terminate; -1 = the pod's own value.",
)
@click.option(
    "--timeout",
    "timeout_text",
    default="0s",
    show_default=True,
    help="Give up after this long (0 = never), e.g. 5m.",
)
@click.option("--pod-selector", default=None, help="Only pods matching this label selector.")
@click.option("--disable-eviction", is_flag=True, help="DELETE pods instead of evicting (bypasses PDBs).")
@click.option(
    "--skip-wait-for-delete-timeout",
    type=int,
    default=0,
    show_default=True,
    help="Do not wait for pods deleted more than this many seconds ago.",
)
@click.option("--chunk-size", type=click.IntRange(min=0), default=500, show_default=True)
@click.option(
    "--dry-run",
    type=click.Choice([d.value for d in DryRun]),
    default="none",
    show_default=True,
    help="client: show what would be evicted; server: also ask the API which pods a PDB blocks.",
)
@click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
@lease_options(namespace=True)
def drain_command(
    kubeconfig: Path | None,
    context: str | None,
    nodes: tuple[str, ...],
    selector: str | None,
    ignore_daemonsets: bool,
    delete_emptydir_data: bool,
    delete_local_data: bool,
    force: bool,
    grace_period: int,
    timeout_text: str,
    pod_selector: str | None,
    disable_eviction: bool,
    skip_wait_for_delete_timeout: int,
    chunk_size: int,
    dry_run: str,
    output: str,
    take_over: str | None,
    lease_namespace: str,
) -> None:
    """Cordon, then evict the pods of each node in turn, with kubectl drain's rules (PDBs respected)."""
    try:
        options = DrainOptions(
            ignore_daemonsets=ignore_daemonsets,
            delete_emptydir_data=delete_emptydir_data or delete_local_data,
            force=force,
            grace_period=grace_period,
            timeout=parse_duration(timeout_text),
            pod_selector=pod_selector,
            disable_eviction=disable_eviction,
            skip_wait_for_delete_timeout=skip_wait_for_delete_timeout,
            dry_run=DryRun(dry_run),
            chunk_size=chunk_size,
        )
    except Refusal as refusal:
        raise click.UsageError(str(refusal)) from refusal

    def on_event(event: DrainEvent) -> None:
        if output == "text":
            text_progress(event, options)

    changes = _Changes()

    async def run() -> list[DrainResult]:
        results: list[DrainResult] = []
        async with open_client(kubeconfig, context=context) as client, drain_run(
            client, namespace=lease_namespace, take_over=take_over, changes=options.dry_run is DryRun.NONE, on_wait=say
        ) as held:
            selected = await _select_nodes(client, nodes, selector)
            # kubectl cordons every node first, so pods evicted from the first do not land on the next.
            if options.dry_run is not DryRun.CLIENT:
                for node in selected:
                    ours = await cordon(client, node, dry_run=options.dry_run is DryRun.SERVER)
                    changes.made += ours and options.dry_run is DryRun.NONE
                    on_event(
                        DrainEvent(DrainEventKind.CORDONED if ours else DrainEventKind.NOT_OUR_CORDON, node)
                    )
            elif output == "text":
                for node in selected:
                    click.echo(f"node/{node} cordoned (dry run)")
            for node in selected:
                result = await drain_node(client, node, options, on_event=on_event, cordon_first=False)
                results.append(result)
                if output == "json":
                    click.echo(json.dumps(result.to_json()))
                elif result.drained:
                    click.echo(
                        f"node/{node} drained" + ("" if options.dry_run is DryRun.NONE else " (dry run)")
                    )
                else:
                    if result.blocked:
                        for item in result.blocked:
                            click.echo(f"blocked: pod {item.pod} by PodDisruptionBudget {item.pdb}", err=True)
                    if result.pending and options.dry_run is DryRun.NONE:
                        click.echo(
                            f"There are pending pods in node {node!r}: {', '.join(result.pending)}", err=True
                        )
                    click.echo(f"error: unable to drain node {node!r}, continuing command...", err=True)
            if held is not None:  # every node was tried (an interrupted drain stays "failed", the default)
                ended = RunStatus.SUCCEEDED if all(result.drained for result in results) else RunStatus.FAILED
                held.status = lambda: ended
        return results

    results = _run(run(), changes)
    failed = [result.node for result in results if not result.drained]
    if failed:
        if output == "text":
            click.echo("There are pending nodes to be drained:\n " + "\n ".join(failed), err=True)
        sys.exit(1)


COMMANDS = (audit_command, cordon_command, uncordon_command, drain_command)
