"""The journal on a real SQLite file, with real processes killed by SIGKILL.

Matrix:
- records round-trip: timeline per node and for the run, last completed step per node, last record
  per node (a trailing "started" = interrupted inside that step), run list, finish.
- crash safety: a child process writing steps is SIGKILLed; every step it reported as committed is in
  the journal, the last record is consistent, the cluster lock is free again and the run can be resumed.
- while the child lives, another journal cannot begin or resume a run on that cluster (Refusal naming
  the holder's run and pid); another cluster is not blocked.
- an unfinished run blocks a fresh run on the same cluster (hint: --resume) until resumed or abandoned.
- a journal that does not hold a run cannot write to it.
- AsyncJournal: the same calls from asyncio, committed.
- cluster identity: the CA in PEM or DER gives the same key; another URL for the same CA is the same
  cluster; the default path follows XDG_STATE_HOME.
"""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from shimshift.adapters.journal import AsyncJournal, ClusterIdentity, Journal, RunStatus, StepPhase, default_path
from shimshift.core.errors import Refusal

if TYPE_CHECKING:
    from collections.abc import Callable

CA_DER = bytes(range(200))
CLUSTER = ClusterIdentity.from_ca("https://10.0.0.1:6443", CA_DER)
OTHER = ClusterIdentity.from_ca("https://10.9.9.9:6443", b"another CA")
SRC = Path(__file__).resolve().parents[3] / "src"


def _ticking_clock() -> Callable[[], datetime]:
    moments = iter(datetime(2026, 11, 26, 12, 0, tzinfo=UTC) + timedelta(seconds=i) for i in range(10_000))
    return lambda: next(moments)


def test_records_round_trip(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.sqlite", clock=_ticking_clock())
    run = journal.begin_run(CLUSTER, options={"max_unavailable": 1, "nodes": ["a", "b"]})
    assert run.status == RunStatus.RUNNING
    for node in ("a", "b"):
        journal.step_started(run.id, node, "cordon")
        journal.step_finished(run.id, node, "cordon", {"cordoned_by_us": True})
    journal.step_started(run.id, "a", "drain")
    journal.step_finished(run.id, "a", "drain", {"evicted": 3})
    journal.step_started(run.id, "b", "drain")
    journal.step_failed(run.id, "b", "drain", {"reason": "PDB"})
    journal.step_started(run.id, "a", "write_config")

    assert [(r.step, r.phase) for r in journal.timeline(run.id, "a")] == [
        ("cordon", StepPhase.STARTED),
        ("cordon", StepPhase.FINISHED),
        ("drain", StepPhase.STARTED),
        ("drain", StepPhase.FINISHED),
        ("write_config", StepPhase.STARTED),
    ]
    assert len(journal.timeline(run.id)) == 9
    done = journal.last_completed_steps(run.id)
    assert {n: r.step for n, r in done.items()} == {"a": "drain", "b": "cordon"}
    assert done["a"].detail == {"evicted": 3}
    last = journal.last_records(run.id)
    assert {n: (r.step, r.phase) for n, r in last.items()} == {
        "a": ("write_config", StepPhase.STARTED),
        "b": ("drain", StepPhase.FAILED),
    }
    completed = journal.last_completed_step(run.id, "b")
    assert completed is not None
    assert completed.step == "cordon"
    assert journal.last_completed_step(run.id, "c") is None
    assert journal.active_run(CLUSTER) == journal.run(run.id)

    journal.finish_run(run.id, status=RunStatus.FAILED)
    ended = journal.run(run.id)
    assert ended is not None
    assert ended.status == RunStatus.FAILED
    assert ended.finished_at is not None
    assert ended.options == {"max_unavailable": 1, "nodes": ["a", "b"]}
    assert journal.active_run(CLUSTER) is None
    assert [r.id for r in journal.runs(CLUSTER)] == [run.id]
    journal.close()


def test_sqlite_is_in_wal_mode_with_full_sync(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.sqlite")
    assert journal._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert journal._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    journal.close()


CHILD = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from shimshift.adapters.journal import AsyncJournal, ClusterIdentity, Journal
    journal = Journal(Path(sys.argv[1]))
    run = journal.begin_run(ClusterIdentity.from_ca("https://10.0.0.1:6443", bytes(range(200))), options={})
    print("run", run.id, flush=True)
    i = 0
    while True:
        journal.step_started(run.id, "node-%d" % (i % 3), "step-%d" % i)
        print("started", i, flush=True)
        journal.step_finished(run.id, "node-%d" % (i % 3), "step-%d" % i, {"i": i})
        print("finished", i, flush=True)
        i += 1
    """
)


def test_sigkill_mid_run_keeps_every_committed_step_and_frees_the_lock(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path)], stdout=subprocess.PIPE, text=True, env=env
    )
    assert child.stdout is not None
    try:
        run_id = child.stdout.readline().split()[1]
        lines = [child.stdout.readline() for _ in range(60)]

        # While the child lives, nobody else may drive that cluster; another cluster is fine.
        other = Journal(path)
        with pytest.raises(Refusal) as refused:
            other.resume_run(run_id)
        assert f"pid {child.pid}" in str(refused.value)
        assert run_id in str(refused.value)
        with pytest.raises(Refusal, match="another shimshift run"):
            other.begin_run(ClusterIdentity("https://lb.example:6443", CLUSTER.ca_sha256), options={})
        unrelated = other.begin_run(OTHER, options={})
        other.finish_run(unrelated.id)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert child.returncode == -signal.SIGKILL

    reported = [line.split() for line in lines if line.strip()]
    last_finished = max(int(n) for phase, n in reported if phase == "finished")
    journal = Journal(path)
    run = journal.active_run(CLUSTER)
    assert run is not None
    assert run.id == run_id
    completed = {n: int(r.step.split("-")[1]) for n, r in journal.last_completed_steps(run_id).items()}
    # Everything the child saw committed is there (it may have committed a little more before the kill).
    assert max(completed.values()) >= last_finished
    assert completed[f"node-{last_finished % 3}"] >= last_finished
    timeline = journal.timeline(run_id)
    started, finished = StepPhase.STARTED, StepPhase.FINISHED
    assert [r.phase for r in timeline[:4]] == [started, finished, started, finished]
    assert all(r.detail == {"i": int(r.step.split("-")[1])} for r in timeline if r.phase == StepPhase.FINISHED)

    # The kernel dropped the dead child's flock: the run can be resumed at once.
    resumed = journal.resume_run(run_id)
    assert resumed.pid == os.getpid()
    journal.step_started(run_id, "node-0", "uncordon")
    journal.finish_run(run_id)
    journal.close()


def test_unfinished_run_blocks_a_fresh_run_until_resumed_or_abandoned(tmp_path: Path) -> None:
    first = Journal(tmp_path / "j.sqlite")
    run = first.begin_run(CLUSTER, options={})
    first.step_started(run.id, "a", "drain")
    first.close()  # as if the process had died: lock gone, run unfinished

    second = Journal(tmp_path / "j.sqlite")
    with pytest.raises(Refusal) as refused:
        second.begin_run(CLUSTER, options={})
    assert run.id in str(refused.value)
    assert "--resume" in str(refused.value)
    second.abandon_run(run.id)
    ended = second.run(run.id)
    assert ended is not None
    assert ended.status == RunStatus.ABANDONED
    fresh = second.begin_run(CLUSTER, options={})
    assert fresh.id != run.id
    second.close()


def test_writes_need_the_run_held(tmp_path: Path) -> None:
    first = Journal(tmp_path / "j.sqlite")
    run = first.begin_run(CLUSTER, options={})
    second = Journal(tmp_path / "j.sqlite")
    with pytest.raises(RuntimeError, match="not held"):
        second.step_started(run.id, "a", "cordon")
    first.finish_run(run.id)
    with pytest.raises(RuntimeError, match="not held"):
        first.step_started(run.id, "a", "cordon")
    first.close()
    second.close()


def test_cluster_identity() -> None:
    body = base64.encodebytes(CA_DER).decode()
    pem = f"-----BEGIN CERTIFICATE-----\n{body}-----END CERTIFICATE-----\n"
    assert ClusterIdentity.from_ca("https://10.0.0.1:6443", pem.encode()).key == CLUSTER.key
    assert ClusterIdentity.from_ca("https://lb:6443", CA_DER).key == CLUSTER.key
    assert OTHER.key != CLUSTER.key
    assert ClusterIdentity("https://a:6443").key != ClusterIdentity("https://b:6443").key


def test_default_path_follows_xdg_state_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    assert default_path() == tmp_path / "shimshift" / "journal.sqlite"
    monkeypatch.delenv("XDG_STATE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_path() == tmp_path / "home" / ".local" / "state" / "shimshift" / "journal.sqlite"


async def test_async_journal_runs_on_its_own_thread(tmp_path: Path) -> None:
    journal = AsyncJournal(Journal(tmp_path / "j.sqlite"))
    run = await journal.begin_run(CLUSTER, options={"async": True})
    await journal.record(run.id, "a", "cordon", StepPhase.STARTED)
    await journal.record(run.id, "a", "cordon", StepPhase.FINISHED)
    await journal.finish_run(run.id)
    await journal.close()
    reopened = Journal(tmp_path / "j.sqlite")
    assert [(r.step, r.phase) for r in reopened.timeline(run.id)] == [
        ("cordon", StepPhase.STARTED),
        ("cordon", StepPhase.FINISHED),
    ]
    reopened.close()
