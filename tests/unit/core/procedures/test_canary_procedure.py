"""verify's canary as a procedure (core/procedures/canary.py), answered action by action: the order (delete a
leftover, create, wait, exec while it runs, delete), the exec's outcome turned into the verdict, and the pod
deleted whatever happened."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shimshift.core import actions as act
from shimshift.core.canary import CANARY_EXEC_FAILED, CANARY_FAILED, EXEC_COMMAND, CanarySpec, CanaryState
from shimshift.core.procedures.canary import BRIDGE_FORMAT, DELETE_TIMEOUT, run_canary
from tests.unit.core.procedures.node_world import Result, drive
from tests.unit.core.procedures.results import check_result

SPEC = CanarySpec("w1", "kube-system", "registry.k8s.io/pause:3.6", "run-1")
NAME = "shimshift-canary-w1"
RUNNING = {"status": {"phase": "Running", "podIP": "10.244.1.9", "conditions": [{"type": "Ready", "status": "True"}]}}
BLOCKED = {"status": {"phase": "Pending", "reason": "NoNewPrivs", "message": "cannot parse the runtime's version"}}


class Broken(Exception):
    pass


@dataclass
class Api:
    """The canary's side of the world: the pod (or none), exec's answer, and what went wrong."""

    pod: dict[str, Any] | None = field(default_factory=lambda: RUNNING)
    exec_outcome: act.ExecOutcome = field(default_factory=lambda: act.ExecOutcome(0, b"pause.c v3.6\n"))
    leftover: bool = False
    broken: type[act.Action] | None = None  # this action raises
    actions: list[act.Action] = field(default_factory=list)
    clock: datetime = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
    exists: bool = False

    def answer(self, action: act.Action) -> Any:
        result = self.respond(action)
        check_result(action, result)
        return result

    def respond(self, action: act.Action) -> Any:
        self.actions.append(action)
        if self.broken is not None and isinstance(action, self.broken):
            raise Broken(type(action).__name__)
        match action:
            case act.DeletePod(_, name, _):
                assert name == NAME
                was, self.exists = self.exists or self.leftover, False
                self.leftover = False
                return was
            case act.Run(argv, False, _):
                assert argv == ("docker", "network", "inspect", "bridge", "--format", BRIDGE_FORMAT)
                return Result(stdout=b"172.17.0.0/16 \n")
            case act.PodCidrs():
                return ("10.244.1.0/24",)
            case act.Now():
                self.clock += timedelta(seconds=2)
                return self.clock
            case act.CreatePod(namespace, manifest):
                assert namespace == SPEC.namespace and manifest["metadata"]["name"] == NAME
                self.exists = True
                return None
            case act.WaitPod(_, _, until, _, _):
                assert until(self.pod)
                return self.pod
            case act.ExecInPod(namespace, name, container, command, _):
                assert (namespace, name, container, command) == (SPEC.namespace, NAME, "canary", EXEC_COMMAND)
                return self.exec_outcome
        raise AssertionError(f"no answer for {action!r}")

    def kinds(self) -> list[str]:
        return [type(action).__name__ for action in self.actions if not isinstance(action, act.Now | act.Run)]


def test_a_running_canary_is_execd_into_and_deleted() -> None:
    api = Api(leftover=True)
    result = drive(run_canary(SPEC, 60), api)
    assert result.ok, result.verdict
    assert api.kinds() == ["DeletePod", "PodCidrs", "CreatePod", "WaitPod", "ExecInPod", "DeletePod"]
    assert result.detail["leftover_deleted"] is True and result.detail["deleted"] is True
    assert result.detail["exec"] == {"command": ["/pause", "-v"], "exit_code": 0, "stdout": "pause.c v3.6"}
    assert result.detail["bridge_subnets"] == ["172.17.0.0/16"] and result.detail["pod_cidrs"] == ["10.244.1.0/24"]
    assert result.detail["verdict_after_s"] == 2.0 and result.detail["deleted_after_s"] == 2.0
    assert not api.exists


def test_a_refused_exec_fails_the_canary_with_its_own_code() -> None:
    refused = act.ExecOutcome(
        failure='HTTP 500: error sending request: Post "//[::]:35557/cri/exec/tw": http: server gave HTTP '
        "response to HTTPS client",
        status=500,
    )
    result = drive(run_canary(SPEC, 60), api := Api(exec_outcome=refused))
    assert result.verdict.state is CanaryState.FAILED and result.verdict.code == CANARY_EXEC_FAILED
    assert result.verdict.message.startswith("exec into the canary (`/pause -v`) failed: HTTP 500: error sending")
    assert "ExtendWebSocketsToKubelet=false" in result.verdict.message
    assert result.detail["exec"]["status"] == 500 and result.detail["deleted"] is True and not api.exists


def test_a_forbidden_exec_names_the_rbac_it_lacks() -> None:
    forbidden = act.ExecOutcome(failure="HTTP 403: pods ... is forbidden", status=403)
    result = drive(run_canary(SPEC, 60), Api(exec_outcome=forbidden))
    assert result.verdict.code == CANARY_EXEC_FAILED
    assert "grant pods/exec get and create" in result.verdict.message
    assert "ExtendWebSocketsToKubelet" not in result.verdict.message


def test_a_pause_image_that_does_not_answer_fails_but_an_operators_image_need_not_have_pause() -> None:
    no_pause = act.ExecOutcome(None, message='OCI runtime exec failed: exec: "/pause": stat /pause: no such file')
    ours = drive(run_canary(SPEC, 60), Api(exec_outcome=no_pause))
    assert ours.verdict.code == CANARY_EXEC_FAILED
    assert ours.verdict.message == "`/pause -v` in the canary did not start: " + no_pause.message
    theirs = drive(run_canary(SPEC, 60, own_image=False), Api(exec_outcome=no_pause))
    assert theirs.ok  # the runtime's refusal came back over the stream: the path works
    exited = drive(run_canary(SPEC, 60), Api(exec_outcome=act.ExecOutcome(2, stderr=b"usage\n")))
    assert exited.verdict.message == "`/pause -v` in the canary exited 2: usage"


def test_a_canary_that_does_not_run_is_not_execd_into() -> None:
    result = drive(run_canary(SPEC, 60), api := Api(pod=BLOCKED))
    assert result.verdict.code == CANARY_FAILED and "NoNewPrivs" in result.verdict.message
    assert "ExecInPod" not in api.kinds() and "exec" not in result.detail
    assert result.detail["deleted"] is True


@pytest.mark.parametrize("broken", [act.CreatePod, act.WaitPod, act.ExecInPod])
def test_the_pod_is_deleted_whatever_failed(broken: type[act.Action]) -> None:
    api = Api(broken=broken)
    with pytest.raises(Broken):
        drive(run_canary(SPEC, 60), api)
    assert api.actions[-2:] == [act.DeletePod(SPEC.namespace, NAME, DELETE_TIMEOUT), api.actions[-1]]
    assert isinstance(api.actions[-1], act.Now) and not api.exists
