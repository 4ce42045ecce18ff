"""Which run's plan `shimshift rollback NODE` undoes, decided from the runs that recorded the node.

Rollback writes back the files a migration's preflight recorded and restarts the kubelet on dockershim. A
journey (`upgrade --to` past one minor) moves the node's kubelet past 1.24, where dockershim no longer
exists (removed in 1.24: kubernetes/kubernetes CHANGELOG-1.24.md), and kubeadm rewrites the node's files at
every minor: writing an older migration's files back under such a kubelet would leave it unable to start.
So a journey that recorded the node after (or instead of) a migration's plan stops the rollback.
Pure data: takes the node's runs, returns a run id or raises.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from shimshift.core.errors import Refusal

#: Finding code (docs/findings.md): rollback refused because a journey changed the node since its plan.
ROLLBACK_AFTER_JOURNEY = "rollback-after-journey"


@dataclass(frozen=True)
class NodeRun:
    """One run that recorded something of the node. ``journey``: a run of `upgrade --to` past one minor;
    ``planned``: it recorded a finished preflight (the node's plan, with its files' original contents)."""

    run_id: str
    journey: bool
    planned: bool


def rollback_source(node: str, runs_newest_first: Sequence[NodeRun]) -> str | None:
    """The run whose plan the rollback undoes; None when no run planned the node. Refuses when a journey
    recorded the node before that plan was reached (newest first)."""
    for run in runs_newest_first:
        if run.journey:
            raise Refusal(
                f"node {node} was changed by the journey run {run.run_id} since its migration: its kubelet is "
                "1.24 or later, with no dockershim to go back to",
                hint="a journey's failed drain puts the node back as that drain found it by itself; "
                "go on with `shimshift upgrade --resume`",
                node=node,
                code=ROLLBACK_AFTER_JOURNEY,
            )
        if run.planned:
            return run.run_id
    return None
