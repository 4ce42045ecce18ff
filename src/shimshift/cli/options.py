"""Options and exit codes shared by the commands that reach a cluster."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from shimshift.core.canary import DEFAULT_NAMESPACE as LEASE_NAMESPACE
from shimshift.core.journey.skew import SkewRules

F = TypeVar("F", bound=Callable[..., Any])

# README "Exit codes": 2 also when the cluster or a file could not be used before anything changed.
EXIT_OK, EXIT_NODES_FAILED, EXIT_REFUSED = 0, 1, 2

KUBECONFIG_HELP = (
    "Path to the kubeconfig file. Without it, as kubectl: the files listed in $KUBECONFIG (':'-separated, "
    "merged, missing ones skipped; none existing is an error), else ~/.kube/config, else the in-cluster "
    "service account."
)


#: `--skew` of `upgrade`, `plan` and `audit --to`: which rules the journey's schedule keeps (docs/journey.md).
SKEW_OPTION = click.option(
    "--skew",
    type=click.Choice([rules.value for rules in SkewRules]),
    default=SkewRules.KUBEADM.value,
    show_default=True,
    help="Which rules bound how far a kubelet may trail: kubeadm's own apply check (fewest drains without "
    "--force); kubernetes, the version skew policy alone (fewer drains; the applies kubeadm refuses then run "
    "with --force); lockstep, kubeadm's upgrade guide, for an operator who wants no kubelet ever trailing "
    "the control plane by more than one minor (every node drained at every minor).",
)


def kube_options(function: F) -> F:
    """kubectl's --kubeconfig and --context; resolved by ``adapters/kube/kubeconfig.py``, never by click
    (a click ``envvar`` would read a ``:``-separated $KUBECONFIG as one file name)."""
    function = click.option("--context", default=None, help="The kubeconfig context to use.")(function)
    return click.option(
        "--kubeconfig", default=None, type=click.Path(dir_okay=False, path_type=Path), help=KUBECONFIG_HELP
    )(function)


def lease_options(*, namespace: bool) -> Callable[[F], F]:
    """`--take-over RUN` for every command that changes nodes (the cluster's Lease, docs/run-lease.md), and
    the Lease's namespace for those that have no --canary-namespace of their own."""

    def decorate(function: F) -> F:
        function = click.option(
            "--take-over",
            "take_over",
            metavar="RUN",
            help="Begin although run RUN did not finish and stopped renewing the cluster's Lease (killed, or "
            "its machine gone); recorded in the Lease and the journal. `--resume` finishes RUN instead.",
        )(function)
        if namespace:
            function = click.option(
                "--canary-namespace",
                "lease_namespace",
                default=LEASE_NAMESPACE,
                show_default=True,
                help="Namespace of the cluster's shimshift Lease (the one `migrate --canary-namespace` uses).",
            )(function)
        return function

    return decorate


def say(text: str) -> None:
    """A wait or a warning of the run's Lease, on stderr (the -v log has it too, from the module's logger)."""
    click.echo(f"shimshift: {text}", err=True)
