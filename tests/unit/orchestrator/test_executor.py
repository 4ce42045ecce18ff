"""The executor's loop: results go back into the procedure, a failed action is thrown in at its yield
(where the procedure decides), a BaseException (a kill, a cancel) is never given to the procedure, and
journal actions reach the journal with the operator's events."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest

from shimshift.core import actions as act
from shimshift.core.actions import Procedure
from shimshift.orchestrator.executor import NodeExecutor
from shimshift.orchestrator.ports import ClusterPort, CriPort, NodePort, StepEvent
from shimshift.orchestrator.session import MemoryJournal


class Killed(BaseException):
    """Like asyncio.CancelledError or a signal's SystemExit: not an Exception."""


class Node:
    """Only what these procedures ask of a node: a file that is there, one that cannot be read."""

    async def read_file(self, path: str, *, max_bytes: int | None = None) -> bytes | None:
        if path == "/unreadable":
            raise PermissionError(path)
        if path == "/killed":
            raise Killed
        return b"data"


def executor(events: list[StepEvent] | None = None) -> tuple[NodeExecutor, MemoryJournal]:
    journal = MemoryJournal()
    node = cast(NodePort, Node())
    ports = cast(ClusterPort, object()), cast(CriPort, object())
    on_event = events.append if events is not None else None
    return NodeExecutor("n1", ports[0], node, ports[1], journal, on_event=on_event), journal


def procedure() -> Procedure[list[Any]]:
    seen: list[Any] = [(yield act.ReadFile("/etc/x"))]
    try:
        yield act.ReadFile("/unreadable")
    except PermissionError as error:
        seen.append(f"caught {error}")
    yield act.Record("step", "finished", {"seen": len(seen)})
    return seen


def test_results_go_in_and_failures_are_thrown_in_at_the_yield() -> None:
    events: list[StepEvent] = []
    run, journal = executor(events)
    assert asyncio.run(run.drive(procedure())) == [b"data", "caught /unreadable"]
    assert journal.records == [("n1", "step", "finished", {"seen": 2})]
    assert [(e.step, e.phase) for e in events] == [("step", "finished")]


def test_a_base_exception_is_not_the_procedure_s_to_handle() -> None:
    seen: list[str] = []

    def killed() -> Procedure[None]:
        try:
            yield act.ReadFile("/killed")
        except Exception as error:  # a step's failure handling, which must not see the interrupt
            seen.append(repr(error))

    run, _ = executor()
    with pytest.raises(Killed):
        asyncio.run(run.drive(killed()))
    assert seen == []


class SlowCluster:
    """A node that takes its time to be healthy."""

    async def wait_healthy(self, node: str, *, since: Any, timeout: float) -> str:
        await asyncio.sleep(0.35)
        return "healthy"


def test_a_long_wait_reaches_the_operator_as_progress_of_the_running_step(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("shimshift.orchestrator.waits.AFTER_SECONDS", 0.1)
    monkeypatch.setattr("shimshift.orchestrator.waits.EVERY_SECONDS", 0.1)
    events: list[StepEvent] = []
    run = NodeExecutor(
        "n1", cast(ClusterPort, SlowCluster()), cast(NodePort, Node()), cast(CriPort, object()), MemoryJournal(),
        on_event=events.append,
    )

    def verify() -> Procedure[Any]:
        yield act.Record("verify", "started")
        return (yield act.WaitHealthy(since=None, timeout=300))  # type: ignore[arg-type]

    assert asyncio.run(run.drive(verify())) == "healthy"
    waits = [event for event in events if event.phase == "progress"]
    assert waits and all(event.step == "verify" for event in waits)
    assert waits[0].message.startswith("waiting for node n1 to be healthy after the kubelet restart (up to 300 s)")


def test_each_record_reaches_the_cluster_copy_before_the_next_action() -> None:
    order: list[str] = []

    async def copy(node: str) -> None:
        order.append(f"copy {node}")

    class Reading(Node):
        async def read_file(self, path: str, *, max_bytes: int | None = None) -> bytes | None:
            order.append(f"read {path}")
            return b""

    run = NodeExecutor(
        "n1", cast(ClusterPort, object()), cast(NodePort, Reading()), cast(CriPort, object()), MemoryJournal(),
        copy=copy,
    )

    def steps() -> Procedure[None]:
        yield act.Record("write-config", "started")
        yield act.ReadFile("/etc/x")
        yield act.Record("write-config", "finished")

    asyncio.run(run.drive(steps()))
    assert order == ["copy n1", "read /etc/x", "copy n1"]


class Cancelling(Node):
    """A read the run's cancellation (Ctrl-C, SIGTERM, a lost Lease) interrupts; other reads answer."""

    async def read_file(self, path: str, *, max_bytes: int | None = None) -> bytes | None:
        if path == "/cancelled":
            raise asyncio.CancelledError
        return b"data"


def test_a_cancelled_run_runs_the_procedure_s_finally_then_stops() -> None:
    seen: list[str] = []

    def cleaning() -> Procedure[None]:
        try:
            yield act.ReadFile("/cancelled")
        except Exception as error:  # a step's failure handling: the cancellation is not for it
            seen.append(repr(error))
        finally:
            seen.append(f"cleaned up: {(yield act.ReadFile('/cleanup'))!r}")  # e.g. the canary's deletion

    run = NodeExecutor(
        "n1", cast(ClusterPort, object()), cast(NodePort, Cancelling()), cast(CriPort, object()), MemoryJournal()
    )
    with pytest.raises(asyncio.CancelledError):
        asyncio.run(run.drive(cleaning()))
    assert seen == ["cleaned up: b'data'"]


def test_a_cancelled_run_stops_even_when_the_procedure_returns() -> None:
    def swallowing() -> Procedure[str]:
        try:
            yield act.ReadFile("/cancelled")
        finally:
            return "done"  # noqa: B012 (what a careless procedure might do: the run must stop all the same)

    run = NodeExecutor(
        "n1", cast(ClusterPort, object()), cast(NodePort, Cancelling()), cast(CriPort, object()), MemoryJournal()
    )
    with pytest.raises(asyncio.CancelledError):
        asyncio.run(run.drive(swallowing()))
