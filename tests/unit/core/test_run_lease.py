"""The run Lease's rules (core/run_lease.py) on a fake clock.

Matrix: a claim on no Lease, a released Lease (last run finished / unfinished: refused, resumed, taken
over), a Lease held by a live run (refused naming user, host, run and since when; a resume of that same run
waits until it expires, and is refused once a renewal shows the holder alive), a Lease whose holder stopped
renewing (refused with both ways on; taken by `--resume` of its run or `--take-over` of it, recorded; a
take-over naming another run refused), a resume on the machine where the holder's process is gone (at
once; other runs still wait for expiry), our own Lease read back after a conflict; expiry exactly at
renewTime + duration; renewal keeps the acquire time, take-overs count transitions; release keeps the
run (a run that kept no state on the cluster leaves the last finished run named); `status`'s finding for
a stopped holder; the renewal interval.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shimshift.core.findings import Severity
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
    stale_holder,
    taken,
)

T0 = datetime(2026, 12, 7, 10, 0, 0, tzinfo=UTC)
ALICE = Holder("20261207T100000Z-aaaa0001", "alice", "laptop", 4242, "migrate")
BOB = Holder("20261207T100500Z-bbbb0002", "bob", "ci-runner", 77, "migrate")


class FakeClock:
    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


def held_by(holder: Holder, clock: FakeClock) -> LeaseState:
    claim = Claim(holder)
    decision = decide_claim(None, claim, clock())
    return taken(None, claim, decision, clock(), DEFAULT_DURATION)


def test_no_lease_is_taken_and_counts_one_transition() -> None:
    clock = FakeClock()
    decision = decide_claim(None, Claim(ALICE), clock())
    assert decision.verdict is Verdict.TAKE
    lease = taken(None, Claim(ALICE), decision, clock(), DEFAULT_DURATION)
    assert lease.holder == ALICE and lease.run_id == ALICE.run_id and lease.run_status is RunStatus.RUNNING
    assert (lease.acquired, lease.renewed, lease.transitions) == (T0, T0, 1)


def test_a_live_holder_refuses_a_second_run_naming_who_where_which_run_and_since_when() -> None:
    clock = FakeClock()
    lease = held_by(ALICE, clock)
    clock.advance(10)
    decision = decide_claim(lease, Claim(BOB), clock())
    assert decision.verdict is Verdict.REFUSE and decision.finding is not None
    message = decision.finding.message
    for part in ("alice", "laptop", ALICE.run_id, "2026-12-07 10:00:00 UTC", "renewed 10 s ago", "migrate run"):
        assert part in message
    assert decision.finding.severity is Severity.ERROR and decision.finding.code == "lease-held"
    assert "wait for it to end" in decision.finding.hint
    assert str(LeaseRefusal(decision.finding)) == f"{message} ({decision.finding.hint})"


def test_expiry_is_exactly_renew_time_plus_duration() -> None:
    clock = FakeClock()
    lease = held_by(ALICE, clock)
    assert lease.expires() == T0 + DEFAULT_DURATION
    assert not lease.expired(T0 + DEFAULT_DURATION - timedelta(microseconds=1))
    assert lease.expired(T0 + DEFAULT_DURATION)
    assert not released(lease, RunStatus.SUCCEEDED).expired(T0 + timedelta(days=1))  # no holder: nothing expires


def test_renewal_moves_expiry_and_keeps_acquire_time_and_transitions() -> None:
    clock = FakeClock()
    lease = held_by(ALICE, clock)
    for _ in range(5):
        clock.advance(renew_interval(DEFAULT_DURATION).total_seconds())
        lease = renewed(lease, clock())
    assert lease.expires() == clock() + DEFAULT_DURATION
    assert (lease.acquired, lease.transitions) == (T0, 1)
    # Renewing kept it alive for 5 intervals: a second run 50 s after the start is still refused.
    assert decide_claim(lease, Claim(BOB), clock()).verdict is Verdict.REFUSE


def test_a_stopped_holder_is_never_taken_over_silently() -> None:
    clock = FakeClock()
    lease = held_by(ALICE, clock)
    clock.advance(DEFAULT_DURATION.total_seconds() + 5)
    decision = decide_claim(lease, Claim(BOB), clock())
    assert decision.verdict is Verdict.REFUSE and decision.finding is not None
    assert decision.finding.code == "lease-stopped-holder"
    assert "stopped renewing the Lease 35 s ago" in decision.finding.message
    assert "`shimshift migrate --resume`" in decision.finding.hint
    assert f"`--take-over {ALICE.run_id}`" in decision.finding.hint


def test_a_stopped_drain_has_nothing_to_resume() -> None:
    clock = FakeClock()
    drain = Holder("20261207T100000Z-dddd0003", "alice", "laptop", 1, "drain")
    lease = held_by(drain, clock)
    clock.advance(60)
    decision = decide_claim(lease, Claim(BOB), clock())
    assert decision.finding is not None and "--resume" not in decision.finding.hint
    assert f"--take-over {drain.run_id}" in decision.finding.hint and "cordoned" in decision.finding.hint


def test_take_over_of_the_stopped_run_is_taken_and_recorded() -> None:
    clock = FakeClock()
    lease = held_by(ALICE, clock)
    clock.advance(45)
    claim = Claim(BOB, take_over=ALICE.run_id)
    decision = decide_claim(lease, claim, clock())
    assert decision.verdict is Verdict.TAKE
    assert ALICE.run_id in decision.taken_over and "taken over by" in decision.taken_over
    assert "bob" in decision.taken_over
    after = taken(lease, claim, decision, clock(), DEFAULT_DURATION)
    assert after.holder == BOB and after.transitions == 2 and after.acquired == clock()
    assert after.taken_over == decision.taken_over


def test_take_over_is_refused_while_the_holder_renews_and_when_it_names_another_run() -> None:
    clock = FakeClock()
    lease = held_by(ALICE, clock)
    clock.advance(5)
    assert decide_claim(lease, Claim(BOB, take_over=ALICE.run_id), clock()).verdict is Verdict.REFUSE
    clock.advance(60)
    assert decide_claim(lease, Claim(BOB, take_over="20261201T000000Z-other000"), clock()).verdict is Verdict.REFUSE


def test_resume_of_the_same_run_from_another_machine_waits_for_expiry_then_takes() -> None:
    clock = FakeClock()
    lease = held_by(ALICE, clock)
    clock.advance(4)  # ALICE's process was killed 4 s after its last renewal
    elsewhere = Holder(ALICE.run_id, "alice", "desktop", 99, "migrate")
    claim = Claim(elsewhere, resume=True)
    waiting = decide_claim(lease, claim, clock())
    assert waiting.verdict is Verdict.WAIT and waiting.until == T0 + DEFAULT_DURATION
    clock.now = waiting.until
    decision = decide_claim(lease, Claim(elsewhere, resume=True, seen_renewed=lease.renewed), clock())
    assert decision.verdict is Verdict.TAKE and "stopped renewing" in decision.taken_over


def test_resume_that_sees_a_renewal_while_waiting_is_refused_the_holder_is_alive() -> None:
    clock = FakeClock()
    lease = held_by(ALICE, clock)
    seen = lease.renewed
    clock.advance(10)
    lease = renewed(lease, clock())
    claim = Claim(Holder(ALICE.run_id, "alice", "desktop", 99), resume=True, seen_renewed=seen)
    decision = decide_claim(lease, claim, clock())
    assert decision.verdict is Verdict.REFUSE and decision.finding is not None
    assert decision.finding.code == "lease-held"


def test_our_own_lease_read_again_after_a_conflict_is_ours() -> None:
    clock = FakeClock()
    lease = held_by(ALICE, clock)
    clock.advance(3)
    decision = decide_claim(lease, Claim(ALICE), clock())
    assert decision.verdict is Verdict.TAKE
    again = taken(lease, Claim(ALICE), decision, clock(), DEFAULT_DURATION)
    assert (again.acquired, again.transitions, again.renewed) == (T0, 1, clock())
    assert not lost(again, ALICE) and lost(again, BOB) and lost(None, ALICE)


def test_a_released_lease_of_a_finished_run_is_free() -> None:
    clock = FakeClock()
    lease = released(held_by(ALICE, clock), RunStatus.SUCCEEDED)
    assert lease.holder is None and lease.run_id == ALICE.run_id and lease.renewed is None
    clock.advance(1)
    assert decide_claim(lease, Claim(BOB), clock()).verdict is Verdict.TAKE


@pytest.mark.parametrize(
    ("claim", "verdict"),
    [
        (Claim(BOB), Verdict.REFUSE),
        (Claim(BOB, take_over=ALICE.run_id), Verdict.TAKE),
        (Claim(Holder(ALICE.run_id, "carol", "desktop", 5), resume=True), Verdict.TAKE),
        (Claim(BOB, resume=True), Verdict.REFUSE),  # a resume of another run than the unfinished one
    ],
)
def test_a_released_lease_of_an_unfinished_run_holds_its_half_way_nodes(claim: Claim, verdict: Verdict) -> None:
    clock = FakeClock()
    lease = released(held_by(ALICE, clock), RunStatus.RUNNING)  # stopped half-way for a person
    decision = decide_claim(lease, claim, clock())
    assert decision.verdict is verdict
    if verdict is Verdict.REFUSE:
        assert decision.finding is not None and decision.finding.code == "lease-unfinished-run"
        assert f"--take-over {ALICE.run_id}" in decision.finding.hint


def test_status_warns_about_a_stopped_holder_only() -> None:
    clock = FakeClock()
    lease = held_by(ALICE, clock)
    assert stale_holder(lease, clock.advance(29)) is None
    finding = stale_holder(lease, clock.advance(200))
    assert finding is not None and finding.severity is Severity.WARNING
    assert "3 min ago" in finding.message and "--resume" in finding.hint and ALICE.run_id in finding.hint
    assert stale_holder(None, clock()) is None and stale_holder(released(lease, RunStatus.FAILED), clock()) is None


def test_renewal_comes_three_times_per_duration() -> None:
    assert renew_interval(timedelta(seconds=30)) == timedelta(seconds=10)


def test_a_resume_on_the_machine_whose_holder_process_is_gone_takes_at_once() -> None:
    clock = FakeClock()
    lease = held_by(ALICE, clock)
    clock.advance(2)
    again = Holder(ALICE.run_id, "alice", "laptop", 5151, "migrate")
    decision = decide_claim(lease, Claim(again, resume=True, holder_gone=True), clock())
    assert decision.verdict is Verdict.TAKE and "its process is gone" in decision.taken_over
    # Gone or not, another run is still refused while the Lease has not expired: it must --take-over later.
    assert decide_claim(lease, Claim(BOB, holder_gone=True), clock()).verdict is Verdict.REFUSE
    assert decide_claim(lease, Claim(BOB, take_over=ALICE.run_id, holder_gone=True), clock()).verdict is Verdict.REFUSE


def test_a_run_that_kept_no_state_leaves_the_last_finished_run_named() -> None:
    clock = FakeClock()
    finished = released(held_by(ALICE, clock), RunStatus.SUCCEEDED)
    drain = Holder("20261207T110000Z-dddd0004", "bob", "ci-runner", 8, "drain")
    claim = Claim(drain)
    mine = taken(finished, claim, decide_claim(finished, claim, clock()), clock(), DEFAULT_DURATION)
    after = released(mine, RunStatus.FAILED, previous=finished)
    assert (after.holder, after.run_id, after.run_status) == (None, ALICE.run_id, RunStatus.SUCCEEDED)
    # An unfinished run taken over is not named again: the run that took it over is.
    unfinished = released(held_by(ALICE, clock), RunStatus.RUNNING)
    claim = Claim(drain, take_over=ALICE.run_id)
    mine = taken(unfinished, claim, decide_claim(unfinished, claim, clock()), clock(), DEFAULT_DURATION)
    after = released(mine, RunStatus.SUCCEEDED, previous=unfinished)
    assert (after.run_id, after.run_status) == (drain.run_id, RunStatus.SUCCEEDED)
