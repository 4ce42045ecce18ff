"""The one way into changing a cluster's nodes: hold its Lease, keep the run's copy there, let go at the end.

``cluster_run`` is entered by every command that changes nodes (`migrate`, `upgrade` and their
``--resume``, `rollback`, `drain`) before its first change. It claims the Lease (core/run_lease.py
decides; a refusal names the holder and changes nothing), renews it in the background every third of
its duration, and on every way out (done, failed, refused, Ctrl-C, SIGTERM, the Lease lost) releases it
with the run's status. While held it writes the run's copy to the cluster (adapters/kube/run_state.py):
the run when it begins, resumes and ends, and a node's records after each journal record, before the
step that follows runs. docs/run-lease.md describes the design.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import logging
import os
import signal
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from shimshift.adapters.journal import new_run_id
from shimshift.adapters.kube.run_lease import Conflict, read_lease, write_lease
from shimshift.adapters.kube.run_state import RunState, configmap_name, read_run_state
from shimshift.core.errors import Refusal
from shimshift.core.run_copy import CopiedRecord, RunCopy
from shimshift.core.run_lease import (
    DEFAULT_DURATION,
    Claim,
    Holder,
    LeaseRefusal,
    LeaseState,
    RunStatus,
    Verdict,
    decide_claim,
    lost,
    released,
    renew_interval,
    renewed,
    taken,
)

# Finding code (docs/findings.md).
NO_RUN_TO_RESUME = "no-run-to-resume"
LEASE_LOST = "lease-lost"

if TYPE_CHECKING:
    from shimshift.adapters.journal import ClusterIdentity, Journal, RunRecord

_log = logging.getLogger(__name__)
Clock = Callable[[], datetime]


def this_holder(run_id: str, command: str) -> Holder:
    """This process as a Lease holder: the person (the one behind sudo, if any), the machine, the pid."""
    user = os.environ.get("SUDO_USER") or getpass.getuser()
    return Holder(run_id=run_id, user=user, host=socket.gethostname(), pid=os.getpid(), command=command)


@dataclass
class HeldRun:
    """The Lease as this run holds it, and the run's copy on the cluster."""

    client: Any
    namespace: str
    holder: Holder
    lease: LeaseState
    before: LeaseState | None  # the Lease as it was when claimed (what a take-over replaced)
    status: Callable[[], RunStatus] = field(default=lambda: RunStatus.FAILED)
    lost_to: LeaseState | None = None
    run: RunCopy | None = None
    state: RunState | None = None

    async def record_run(self, run: RunCopy) -> None:
        """Write the run's record to its ConfigMap (created the first time)."""
        self.run = run
        if self.state is None:
            self.state = RunState(self.client, self.namespace, run.run_id)
        await self.state.write_run(run)

    def copier(self, journal: Journal, run_id: str) -> Callable[[str], Any]:
        """What the executor calls after each journal record of a node: that node's records, to the cluster."""

        async def copy(node: str) -> None:
            if self.state is None:
                return
            records = [
                CopiedRecord(item.step, str(item.phase), item.detail, item.at)
                for item in journal.timeline(run_id, node)
            ]
            await self.state.write_node(node, records)

        return copy


async def claim_lease(
    client: Any,
    namespace: str,
    claim: Claim,
    *,
    clock: Clock,
    duration: timedelta = DEFAULT_DURATION,
    on_wait: Callable[[str], None] | None = None,
) -> tuple[LeaseState | None, LeaseState]:
    """Take the Lease as core decides (waiting, for a resume, until a stopped holder's Lease expires);
    returns the Lease as read before and as written. Raises :class:`LeaseRefusal` naming the holder."""
    seen: datetime | None = None
    while True:
        lease = await read_lease(client, namespace)
        now = clock()
        gone = lease is not None and lease.holder is not None and _gone_from_here(lease.holder)
        decision = decide_claim(lease, replace(claim, seen_renewed=seen, holder_gone=gone), now)
        if decision.verdict is Verdict.REFUSE:
            assert decision.finding is not None
            raise LeaseRefusal(decision.finding)
        if decision.verdict is Verdict.WAIT:
            assert lease is not None and lease.holder is not None and decision.until is not None
            seen = lease.renewed
            left = max(0.5, (decision.until - now).total_seconds() + 0.5)
            if on_wait is not None:
                on_wait(
                    f"waiting {left:.0f} s for the Lease of {lease.holder.describe()} to expire (since "
                    f"{now:%H:%M:%S} UTC): if it renews meanwhile, that run is alive and this one stops"
                )
            await asyncio.sleep(left)
            continue
        try:
            return lease, await write_lease(client, namespace, taken(lease, claim, decision, now, duration))
        except Conflict:
            continue  # another run wrote it since we read it: read again and decide again


def _gone_from_here(holder: Holder) -> bool:
    """True when the holder ran on this machine and its process no longer exists (killed, crashed)."""
    if holder.host != socket.gethostname() or holder.pid <= 0:
        return False
    try:
        os.kill(holder.pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # a process of another user has that pid: alive, as far as we can tell
    return False


@contextlib.asynccontextmanager
async def cluster_run(
    client: Any,
    *,
    namespace: str,
    claim: Claim,
    clock: Clock | None = None,
    duration: timedelta = DEFAULT_DURATION,
    on_wait: Callable[[str], None] | None = None,
) -> AsyncIterator[HeldRun]:
    """Hold the cluster's Lease for the block; release it however the block ends (set ``status`` on the
    held run so the Lease remembers how it ended). SIGTERM ends the block as Ctrl-C does."""
    now = clock or (lambda: datetime.now(UTC))
    before, lease = await claim_lease(client, namespace, claim, clock=now, duration=duration, on_wait=on_wait)
    held = HeldRun(client, namespace, claim.holder, lease, before)
    if lease.taken_over:
        _log.warning("Lease %s/shimshift: %s", namespace, lease.taken_over)
    main = asyncio.current_task()
    assert main is not None
    renewer = asyncio.create_task(_keep(held, main, clock=now, duration=duration, on_wait=on_wait))
    terminated = _on_sigterm(main)
    try:
        yield held
    except asyncio.CancelledError:
        if held.lost_to is not None and main.uncancel() == 0:
            taker = held.lost_to.holder.describe() if held.lost_to.holder else "nobody (it was released)"
            raise Refusal(
                f"this run found the cluster's Lease taken by {taker} when it renewed it (renewals had failed "
                "until it expired); it stopped before its next change",
                hint="`shimshift status` shows who holds it; this run's nodes resume with `--resume` once it is free",
                code=LEASE_LOST,
            ) from None
        if terminated.is_set():
            raise KeyboardInterrupt from None  # as Ctrl-C: the CLI says "Aborted!"; the run resumes later
        raise
    finally:
        renewer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await renewer
        with contextlib.suppress(NotImplementedError, RuntimeError):
            asyncio.get_running_loop().remove_signal_handler(signal.SIGTERM)
        await _release(held, now, on_wait)


def _on_sigterm(main: asyncio.Task[Any]) -> asyncio.Event:
    """SIGTERM cancels the run like Ctrl-C, so the Lease is released rather than left to expire."""
    terminated = asyncio.Event()

    def stop() -> None:
        terminated.set()
        main.cancel("SIGTERM")

    with contextlib.suppress(NotImplementedError, RuntimeError):  # not the main thread: leave it as it is
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop)
    return terminated


async def _keep(
    held: HeldRun, main: asyncio.Task[Any], *, clock: Clock, duration: timedelta, on_wait: Callable[[str], None] | None
) -> None:
    """Renew every third of the duration; if another run took the Lease, stop the run (it is no longer alone)."""
    interval = renew_interval(duration).total_seconds()
    while True:
        await asyncio.sleep(interval)
        try:
            held.lease = await write_lease(held.client, held.namespace, renewed(held.lease, clock()))
        except Conflict:
            current = await read_lease(held.client, held.namespace)
            if lost(current, held.holder):
                held.lost_to = current
                main.cancel("Lease lost")
                return
            assert current is not None
            held.lease = current
        except Exception as error:  # an API server hiccup: try again at the next interval
            expires = held.lease.expires()
            # Some errors say nothing (a timeout's text is empty): then their kind does.
            why = str(error) or type(error).__name__
            text = f"could not renew the cluster's Lease ({why}); it expires at {expires:%H:%M:%S} UTC"
            if on_wait is not None:
                on_wait(text)  # said once, on the screen; the debug log has it too
                _log.debug(text)
            else:
                _log.warning(text)


async def _release(held: HeldRun, clock: Clock, on_wait: Callable[[str], None] | None) -> None:
    """Leave the Lease without a holder, with the run's status; never raises (it would hide why the run ended)."""
    if held.lost_to is not None:
        return
    status = held.status()
    try:
        if held.run is not None and held.state is not None:
            await held.state.write_run(replace(held.run, status=str(status)))
        lease = held.lease
        previous = held.before if held.run is None else None  # this run kept no state on the cluster
        for _ in range(3):
            try:
                left = released(lease, status, previous=previous)
                held.lease = await write_lease(held.client, held.namespace, left)
                return
            except Conflict:
                current = await read_lease(held.client, held.namespace)
                if lost(current, held.holder):
                    return
                assert current is not None
                lease = current
    except (Exception, asyncio.CancelledError) as error:
        expires = held.lease.expires()
        text = f"could not release the cluster's Lease ({error}); it expires by itself at {expires:%H:%M:%S} UTC"
        _log.warning(text)
        if on_wait is not None:
            on_wait(text)


async def cluster_copy(client: Any, namespace: str) -> tuple[LeaseState | None, RunCopy | None]:
    """The Lease and its last run's copy (for `status` and for a resume on a machine without the run)."""
    lease = await read_lease(client, namespace)
    if lease is None or not lease.run_id:
        return lease, None
    return lease, await read_run_state(client, namespace, lease.run_id)




@dataclass
class Journaled:
    """A held run of the journal: its id, and the Lease held for it."""

    run_id: str
    held: HeldRun


@dataclass(frozen=True)
class RunOpening:
    """How a run of the journal takes the cluster's Lease. ``command``: as the Lease names the run;
    ``resume``: continue the cluster's unfinished run; ``take_over``: the id of a stopped run to replace;
    ``adopt``: take the Lease's previous run into this journal even if it has never seen it (`rollback`
    undoes its nodes from there)."""

    namespace: str
    command: str
    resume: bool = False
    take_over: str | None = None
    adopt: bool = False


@contextlib.asynccontextmanager
async def held_run(
    client: Any,
    journal: Journal,
    identity: ClusterIdentity,
    opening: RunOpening,
    *,
    on_wait: Callable[[str], None] | None = None,
) -> AsyncIterator[Journaled]:
    """`cluster_run` for a run of the journal: a new run's id, or the run a resume continues (the
    cluster's unfinished run, taken into this journal from its copy when this machine lacks it, else this
    journal's own). The Lease is released with the run's status in the journal."""
    namespace = opening.namespace
    run_id = (
        await _resumable(client, journal, identity, namespace) if opening.resume else new_run_id(datetime.now(UTC))
    )
    claim = Claim(this_holder(run_id, opening.command), resume=opening.resume, take_over=opening.take_over)
    async with cluster_run(client, namespace=namespace, claim=claim, on_wait=on_wait) as held:
        held.status = lambda: _journal_status(journal, run_id)
        await _adopt_previous(client, journal, identity, held, always=opening.adopt)
        yield Journaled(run_id, held)


def drain_run(
    client: Any, *, namespace: str, take_over: str | None, changes: bool, on_wait: Callable[[str], None] | None
) -> contextlib.AbstractAsyncContextManager[HeldRun | None]:
    """`shimshift drain`: the Lease for a run of its own (no journal: nothing to resume, so it never stays
    "unfinished"); none for a dry run, which changes nothing."""
    if not changes:
        return contextlib.nullcontext(None)
    claim = Claim(this_holder(new_run_id(datetime.now(UTC)), "drain"), take_over=take_over)
    return cluster_run(client, namespace=namespace, claim=claim, on_wait=on_wait)


async def _adopt_previous(
    client: Any, journal: Journal, identity: ClusterIdentity, held: HeldRun, *, always: bool
) -> None:
    """Take the cluster's copy of the Lease's previous run into this journal when this journal needs it:
    the run a resume continues (begun or last run on another machine), a run this journal knows but that
    went on elsewhere (its records and how it ended; a run taken over ends here as abandoned, so this
    journal does not wait for it), or, ``always``, any (the plans a `rollback` here undoes)."""
    before = held.before
    if before is None or not before.run_id:
        return
    if not always and before.run_id != held.holder.run_id and journal.run(before.run_id) is None:
        return  # another machine's run: this journal has no use for it
    copy = await read_run_state(client, held.namespace, before.run_id)
    if copy is None:
        return
    if copy.run_id != held.holder.run_id and copy.status == str(RunStatus.RUNNING):
        copy = replace(copy, status=str(RunStatus.ABANDONED))
    added = journal.adopt_run(identity, copy)
    _log.info("run %s: %d journal records taken from %s", copy.run_id, added, configmap_name(copy.run_id))


def run_copy(run: RunRecord, held: HeldRun) -> RunCopy:
    """The run as its ConfigMap records it (the nodes' records are written by the executor as they come)."""
    return RunCopy(run.id, run.options, run.started_at, str(run.status), by=held.holder.describe())


async def _resumable(client: Any, journal: Journal, identity: ClusterIdentity, namespace: str) -> str:
    """The run `--resume` continues: the cluster's unfinished run, else this journal's."""
    lease = await read_lease(client, namespace)
    if lease is not None and lease.run_id and (lease.holder is not None or lease.run_status is RunStatus.RUNNING):
        return lease.run_id
    active = journal.active_run(identity)
    if active is None:
        raise Refusal(
            "there is no unfinished run for this cluster to resume",
            hint=f"neither this journal nor the cluster's Lease {namespace}/shimshift has one",
            file=str(journal.path),
            code=NO_RUN_TO_RESUME,
        )
    return active.id


def _journal_status(journal: Journal, run_id: str) -> RunStatus:
    """How the run stands in the journal, for the Lease; a run that never began there was abandoned."""
    run = journal.run(run_id)
    return run.status if run is not None else RunStatus.ABANDONED


__all__ = [
    "HeldRun",
    "Journaled",
    "RunOpening",
    "claim_lease",
    "cluster_copy",
    "cluster_run",
    "drain_run",
    "held_run",
    "run_copy",
    "this_holder",
]
