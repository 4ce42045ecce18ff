"""Who may change the cluster's nodes now: the rules of the run Lease, on a clock passed in.

One ``coordination.k8s.io/v1`` Lease per cluster (named ``shimshift``, in the canary's namespace) says
which run is changing nodes. Every run that changes nodes claims it before its first change, renews it
while it runs and releases it at the end; this module decides, from the Lease as read and the time, what
a claim does: take it, wait for it to expire, or refuse naming its holder. The API calls are
adapters/kube/run_lease.py's; the loop that renews is orchestrator/run_lease.py's. Why a Lease and how
it is kept: docs/run-lease.md.

Expiry follows the Lease API's own definition (``renewTime + leaseDurationSeconds``, the rule client-go's
leader election applies in k8s.io/client-go/tools/leaderelection/leaderelection.go at v0.23.17), on the
reader's clock: docs/run-lease.md says what clock skew between machines does to it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from shimshift.core.errors import Refusal
from shimshift.core.findings import Finding, Severity

LEASE_NAME = "shimshift"
# Long enough to ride out a slow API server for a renewal or two, short enough that a killed run's Lease
# is free within half a minute: a resume from another machine waits at most this long.
DEFAULT_DURATION = timedelta(seconds=30)
# client-go renews well before expiry (its RenewDeadline is two thirds of LeaseDuration); a third leaves
# two more tries before the Lease could lapse.
RENEW_FRACTION = 3


class RunStatus(enum.StrEnum):
    """How a run stands: in the journal, and in the Lease after release."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    ABANDONED = "abandoned"


@dataclass(frozen=True)
class Holder:
    """Who runs: the run id, the person and the machine, and the process there (for a same-machine check)."""

    run_id: str
    user: str
    host: str
    pid: int
    command: str = ""

    @property
    def identity(self) -> str:
        """``holderIdentity``: unique per process, so a second process of the same run is told apart."""
        return f"{self.run_id}/{self.host}/{self.pid}"

    def describe(self) -> str:
        what = f"{self.command} run" if self.command else "run"
        return f"{what} {self.run_id} by {self.user} on {self.host} (pid {self.pid})"


@dataclass(frozen=True)
class LeaseState:
    """The Lease as read. ``holder`` None: released (``run`` still names the last run and its status)."""

    holder: Holder | None
    run_id: str  # the last run that held it (kept after release, so `status` finds that run's state)
    run_status: RunStatus
    acquired: datetime | None
    renewed: datetime | None
    duration: timedelta
    transitions: int = 0
    resource_version: str = ""  # for the update's optimistic concurrency; "" when there is no Lease yet
    taken_over: str = ""  # what the last take-over replaced, as recorded

    def expires(self) -> datetime | None:
        if self.holder is None or self.renewed is None:
            return None
        return self.renewed + self.duration

    def expired(self, now: datetime) -> bool:
        """True when a held Lease was not renewed within its duration (its holder stopped: killed, or lost)."""
        expires = self.expires()
        return expires is not None and now >= expires


@dataclass(frozen=True)
class Claim:
    """What a run asks: to begin (``resume`` False), to continue run ``run_id`` (``resume``), or to begin
    in place of a stopped run (``take_over``). ``seen_renewed``: the renewTime observed when a resume began
    waiting for the Lease to expire (a later renewal proves the holder alive). ``holder_gone``: the holder's
    process is known to be gone (it ran on this machine, and its pid no longer exists), so a resume need not
    wait for the Lease to expire."""

    holder: Holder
    resume: bool = False
    take_over: str | None = None
    seen_renewed: datetime | None = None
    holder_gone: bool = False


class Verdict(enum.Enum):
    TAKE = "take"  # write the Lease with this run as holder
    WAIT = "wait"  # read again at ``until``: the holder may be gone, its Lease has not expired yet
    REFUSE = "refuse"


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    finding: Finding | None = None  # REFUSE: why and what to do
    until: datetime | None = None  # WAIT: when the Lease expires
    taken_over: str = ""  # TAKE of a stopped holder's Lease: what is recorded of it


def decide_claim(lease: LeaseState | None, claim: Claim, now: datetime) -> Decision:
    """Whether ``claim`` may take the Lease now, must wait for it to expire, or is refused (and why)."""
    mine = claim.holder
    if lease is None or lease.holder is None:
        return _claim_free(lease, claim)
    held = lease.holder
    if held.identity == mine.identity:
        return Decision(Verdict.TAKE)  # our own Lease, read again after a conflict
    since = _when(lease.acquired)
    if not lease.expired(now) and not (claim.resume and held.run_id == mine.run_id and claim.holder_gone):
        if claim.resume and held.run_id == mine.run_id and claim.seen_renewed in (None, lease.renewed):
            # The same run from another process: its last holder may have been killed a moment ago.
            return Decision(Verdict.WAIT, until=lease.expires())
        renewed = _ago(lease.renewed, now)
        return _refuse(
            "lease-held",
            f"{held.describe()} is changing this cluster's nodes (since {since}, Lease renewed {renewed})",
            "wait for it to end (`shimshift status` shows its nodes), or stop it there: Ctrl-C releases the Lease",
        )
    gone = " (its process is gone)" if claim.holder_gone else ""
    stopped = f"{held.describe()}, which began {since}, stopped renewing the Lease {_ago(lease.renewed, now)}{gone}"
    if (claim.resume and held.run_id == mine.run_id) or claim.take_over == held.run_id:
        return Decision(Verdict.TAKE, taken_over=f"{stopped}; taken over by {mine.describe()} at {_when(now)}")
    return _refuse("lease-stopped-holder", f"{stopped} (killed, or its machine lost the cluster)", _way_on(held))


def _claim_free(lease: LeaseState | None, claim: Claim) -> Decision:
    """A released Lease: free, unless its last run did not finish (its nodes may be half-way)."""
    mine = claim.holder
    if lease is None or lease.run_status is not RunStatus.RUNNING or not lease.run_id:
        return Decision(Verdict.TAKE)
    last = lease.run_id
    if (claim.resume and last == mine.run_id) or claim.take_over == last:
        taken = "" if claim.resume else f"unfinished run {last}; taken over by {mine.describe()}"
        return Decision(Verdict.TAKE, taken_over=taken)
    return _refuse(
        "lease-unfinished-run",
        f"run {last} did not finish: some of its nodes may be half-way",
        f"finish it with `--resume`, or begin anew with `--take-over {last}`",
    )


def renew_interval(duration: timedelta) -> timedelta:
    return duration / RENEW_FRACTION


def renewed(lease: LeaseState, now: datetime) -> LeaseState:
    """The Lease as this holder writes it at a renewal."""
    return replace(lease, renewed=now)


def taken(lease: LeaseState | None, claim: Claim, decision: Decision, now: datetime, duration: timedelta) -> LeaseState:
    """The Lease as written when ``claim`` takes it (a transition counted whenever the holder changes)."""
    before = lease.holder if lease is not None else None
    same = before is not None and before.identity == claim.holder.identity
    transitions = (lease.transitions if lease is not None else 0) + (0 if same else 1)
    return LeaseState(
        holder=claim.holder,
        run_id=claim.holder.run_id,
        run_status=RunStatus.RUNNING,
        acquired=lease.acquired if same and lease is not None else now,
        renewed=now,
        duration=duration,
        transitions=transitions,
        resource_version=lease.resource_version if lease is not None else "",
        taken_over=decision.taken_over or (lease.taken_over if same and lease is not None else ""),
    )


def released(lease: LeaseState, status: RunStatus, *, previous: LeaseState | None = None) -> LeaseState:
    """The Lease as its holder leaves it: no holder; the run and how it ended stay for `status` and `--resume`.

    ``previous``: the Lease as this run found it, given when this run kept no state on the cluster (a
    `drain`, or a run refused before it began). A finished run it named stays named, so `status` and a
    later `rollback` still find that run's state; an unfinished one this run took over does not."""
    if previous is not None and previous.run_id and previous.run_status is not RunStatus.RUNNING:
        return replace(lease, holder=None, renewed=None, run_id=previous.run_id, run_status=previous.run_status)
    return replace(lease, holder=None, run_status=status, renewed=None)


def lost(lease: LeaseState | None, mine: Holder) -> bool:
    """True when the Lease as read is no longer ours (another run took it after ours expired)."""
    return lease is None or lease.holder is None or lease.holder.identity != mine.identity


def stale_holder(lease: LeaseState | None, now: datetime) -> Finding | None:
    """For `status`: a Lease whose holder stopped renewing, with the way on; None when there is none."""
    if lease is None or lease.holder is None or not lease.expired(now):
        return None
    held = lease.holder
    return Finding(
        Severity.WARNING,
        "lease-stopped-holder",
        f"{held.describe()} stopped renewing the Lease {_ago(lease.renewed, now)} (killed, or its machine lost "
        "the cluster); nothing changes nodes until it is resumed or taken over",
        hint=_way_on(held),
    )


def _way_on(held: Holder) -> str:
    if held.command == "drain":
        # A drain keeps no journal: there is nothing to resume, and its nodes stay cordoned.
        return f"begin anew with `--take-over {held.run_id}` (the drained nodes stay cordoned until uncordoned)"
    verb = held.command if held.command in ("migrate", "upgrade") else "migrate"
    return (
        f"finish it from any machine with `shimshift {verb} --resume` (the cluster holds its state), or begin "
        f"anew with `--take-over {held.run_id}`"
    )


class LeaseRefusal(Refusal):
    """A claim refused before anything changed: the decision's Finding, as the Refusal every command prints."""

    def __init__(self, finding: Finding) -> None:
        super().__init__(finding.message, hint=finding.hint, code=finding.code)


def _refuse(code: str, message: str, hint: str) -> Decision:
    return Decision(Verdict.REFUSE, finding=Finding(Severity.ERROR, code, message, hint=hint))


def _when(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC" if moment is not None else "at an unknown time"


def _ago(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "never"
    seconds = max(0, int((now - moment).total_seconds()))
    return f"{seconds} s ago" if seconds < 120 else f"{seconds // 60} min ago ({_when(moment)})"
