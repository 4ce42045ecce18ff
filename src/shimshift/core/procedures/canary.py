"""verify's canary on one node, as a procedure of core/actions.py: delete a leftover, create the pod, watch
it to a verdict, exec into it, delete it.

The decisions (the manifest, what the pod's status and the exec's outcome mean) are core/canary.py's; this
module orders the actions and owns the clean-up: the pod is deleted whatever happened (a failed action is
thrown back in at its ``yield``, and the deletion is performed before it goes on up), and a
run that died with a canary on the node deletes it when it resumes (the name is fixed per node).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from shimshift.core import actions as act
from shimshift.core.actions import Procedure, run
from shimshift.core.canary import (
    CANARY_CONTAINER,
    DOCKER_DEFAULT_BRIDGE,
    EXEC_COMMAND,
    EXEC_TIMEOUT,
    NO_NEW_PRIVS_FIELD,
    CanaryResult,
    CanarySpec,
    CanaryState,
    CanaryVerdict,
    canary_manifest,
    canary_name,
    exec_verdict,
    parse_bridge_subnets,
    read_canary,
)

DELETE_TIMEOUT = 60.0
BRIDGE_FORMAT = "{{range .IPAM.Config}}{{.Subnet}} {{end}}"


def bridge_subnets() -> Procedure[tuple[list[str], str]]:
    """Docker's bridge subnets on the node, and where they came from."""
    shown = yield run("docker", "network", "inspect", "bridge", "--format", BRIDGE_FORMAT, check=False)
    subnets = parse_bridge_subnets(shown.stdout.decode("utf-8", "replace")) if shown.returncode == 0 else []
    if subnets:
        return subnets, "docker network inspect bridge"
    # No bridge network (daemon.json "bridge": "none"): Docker's default is still where a sandbox started
    # without a network plugin would land if the bridge came back.
    return [DOCKER_DEFAULT_BRIDGE], "Docker's default (the node has no bridge network)"


def remove_canary(node: str, namespace: str) -> Procedure[bool]:
    """Delete the node's canary if there is one and wait until it is gone; True when there was one."""
    deleted: bool = yield act.DeletePod(namespace, canary_name(node), DELETE_TIMEOUT)
    return deleted


class _Decided:
    """Whether the canary's status has come to a verdict (running, or failed): the wait's ``until``."""

    def __init__(self, pod_cidrs: Sequence[str], bridge_subnets: Sequence[str]) -> None:
        self.pod_cidrs, self.bridge_subnets = pod_cidrs, bridge_subnets

    def __call__(self, pod: Mapping[str, Any] | None) -> bool:
        verdict = read_canary(pod, pod_cidrs=self.pod_cidrs, bridge_subnets=self.bridge_subnets)
        return verdict.state is not CanaryState.WAITING


def _seconds(since: datetime, until: datetime) -> float:
    return round((until - since).total_seconds(), 3)


def run_canary(spec: CanarySpec, timeout: float, *, own_image: bool = True) -> Procedure[CanaryResult]:
    """Start the canary, wait up to ``timeout`` seconds for a verdict, exec into it when it runs, delete it.
    Never leaves it behind. ``own_image``: the image is the node's pause image, not the operator's."""
    name = canary_name(spec.node)
    leftover = yield from remove_canary(spec.node, spec.namespace)
    subnets, subnets_from = yield from bridge_subnets()
    pod_cidrs = list((yield act.PodCidrs()))
    detail: dict[str, Any] = {
        "pod": f"{spec.namespace}/{name}",
        "image": spec.image,
        "leftover_deleted": leftover,
        "pod_cidrs": pod_cidrs,
        "bridge_subnets": subnets,
        "bridge_subnets_from": subnets_from,
        "omitted": [NO_NEW_PRIVS_FIELD] if spec.omit_no_new_privs else [],
    }
    created: datetime = yield act.Now()
    detail["created_at"] = created.isoformat()
    verdict = CanaryVerdict(CanaryState.WAITING, "not created")
    try:
        yield act.CreatePod(spec.namespace, canary_manifest(spec))
        waiting_for = f"the canary pod on node {spec.node} to run (up to {timeout:g} s)"
        until = _Decided(pod_cidrs, subnets)
        pod = yield act.WaitPod(spec.namespace, name, until, timeout, waiting_for)
        verdict = read_canary(pod, pod_cidrs=pod_cidrs, bridge_subnets=subnets)
        if verdict.state is CanaryState.WAITING:
            verdict = CanaryVerdict(
                CanaryState.FAILED,
                f"the canary did not run within {timeout:g}s: {verdict.message}",
                verdict.phase,
                verdict.ip,
            )
        detail["verdict_after_s"] = _seconds(created, (yield act.Now()))
        if verdict.state is CanaryState.RUNNING:
            outcome: act.ExecOutcome = yield act.ExecInPod(
                spec.namespace, name, CANARY_CONTAINER, EXEC_COMMAND, EXEC_TIMEOUT
            )
            detail["exec"] = exec_detail(outcome)
            verdict = exec_verdict(verdict, outcome, own_image=own_image)
    except GeneratorExit:
        # The procedure was abandoned (its run died): no action can be performed any more, and yielding one
        # here would be an error; the resumed run deletes the leftover canary first.
        raise
    except BaseException:
        yield from _delete_canary(spec, detail)
        raise
    yield from _delete_canary(spec, detail)
    detail.update(state=str(verdict.state), message=verdict.message, phase=verdict.phase, ip=verdict.ip)
    return CanaryResult(verdict, detail)


def _delete_canary(spec: CanarySpec, detail: dict[str, Any]) -> Procedure[None]:
    deleted_from: datetime = yield act.Now()
    detail["deleted"] = yield from remove_canary(spec.node, spec.namespace)
    detail["deleted_after_s"] = _seconds(deleted_from, (yield act.Now()))


def exec_detail(outcome: act.ExecOutcome) -> dict[str, Any]:
    """The exec as the journal keeps it: the command, and what came back (output cut to 200 characters)."""
    detail: dict[str, Any] = {"command": list(EXEC_COMMAND), "exit_code": outcome.exit_code}
    if outcome.stdout:
        detail["stdout"] = outcome.stdout.decode("utf-8", "replace").strip()[:200]
    if outcome.stderr:
        detail["stderr"] = outcome.stderr.decode("utf-8", "replace").strip()[:200]
    if outcome.message:
        detail["message"] = outcome.message
    if outcome.failure:
        detail["failure"] = outcome.failure
    if outcome.status is not None:
        detail["status"] = outcome.status
    return detail


__all__ = ["BRIDGE_FORMAT", "DELETE_TIMEOUT", "bridge_subnets", "exec_detail", "remove_canary", "run_canary"]
