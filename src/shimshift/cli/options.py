"""Options and exit codes shared by the commands that reach a cluster."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

# README "Exit codes": 2 also when the cluster or a file could not be used before anything changed.
EXIT_OK, EXIT_NODES_FAILED, EXIT_REFUSED = 0, 1, 2

KUBECONFIG_HELP = (
    "Path to the kubeconfig file. Without it, as kubectl: the files listed in $KUBECONFIG (':'-separated, "
    "merged, missing ones skipped; none existing is an error), else ~/.kube/config, else the in-cluster "
    "service account."
)


def kube_options(function: F) -> F:
    """kubectl's --kubeconfig and --context; resolved by ``adapters/kube/kubeconfig.py``, never by click
    (a click ``envvar`` would read a ``:``-separated $KUBECONFIG as one file name)."""
    function = click.option("--context", default=None, help="The kubeconfig context to use.")(function)
    return click.option(
        "--kubeconfig", default=None, type=click.Path(dir_okay=False, path_type=Path), help=KUBECONFIG_HELP
    )(function)
