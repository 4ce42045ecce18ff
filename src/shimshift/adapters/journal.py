"""The crash-safe journal: every run, and every step before and after it runs, in SQLite.

Why SQLite in WAL mode with ``synchronous=FULL`` (https://sqlite.org/wal.html). In WAL
mode a commit survives an application crash whatever the setting; FULL also makes it survive a power
loss once the disk honours fsync. Each record is one small ``BEGIN IMMEDIATE`` transaction. WAL needs
every process on one host, so the journal lives in the local state directory (adapters/state_dir.py:
``$XDG_STATE_HOME/shimshift/journal.sqlite``, default ``~/.local/state/shimshift/journal.sqlite``).

One run drives a cluster at a time. The lock is ``flock(2)`` on a per-cluster lock file next to the
database, held for the run's lifetime: the kernel releases it when the process dies, even by SIGKILL,
so a held lock always means a live holder and a dead run never leaves a stale lock. The cluster is
identified by its CA certificate (the same cluster can be reached through several API server URLs,
e.g. a load balancer and a control-plane address), or by the URL when there is no CA.

Steps are an append-only log of (run, node, step, phase, detail, time) with phase ``started``,
``finished`` or ``failed``; the orchestrator writes ``started`` before a step and ``finished``/``failed``
after it. A node whose last record is ``started`` was interrupted inside that step.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import json
import logging
import os
import socket
import sqlite3
import ssl
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from shimshift.adapters.state_dir import journal_path, state_dir
from shimshift.core.errors import Refusal
from shimshift.core.run_copy import RunCopy, missing_records

# One list of a run's states, for the journal and the Lease; re-exported for the journal's users.
from shimshift.core.run_lease import RunStatus as RunStatus

# Finding codes of the journal's refusals (docs/findings.md).
JOURNAL_UNUSABLE = "journal-unusable"
JOURNAL_LOCKED = "journal-locked"
RUN_UNFINISHED = "run-unfinished"
RUN_NOT_FOUND = "run-not-found"
RUN_ALREADY_ENDED = "run-already-ended"

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping

_log = logging.getLogger(__name__)
_SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    cluster_key TEXT NOT NULL,
    cluster_server TEXT NOT NULL,
    cluster_ca_sha256 TEXT NOT NULL,
    options_json TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    status TEXT NOT NULL CHECK (status IN ('running', 'succeeded', 'failed', 'abandoned')),
    pid INTEGER NOT NULL,
    hostname TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_by_cluster ON runs (cluster_key, started_at);
CREATE TABLE IF NOT EXISTS steps (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL REFERENCES runs (id),
    node TEXT NOT NULL,
    step TEXT NOT NULL,
    phase TEXT NOT NULL CHECK (phase IN ('started', 'finished', 'failed')),
    detail_json TEXT NOT NULL,
    at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS steps_by_run_node ON steps (run_id, node, seq);
"""


class StepPhase(StrEnum):
    STARTED = "started"
    FINISHED = "finished"
    FAILED = "failed"


@dataclass(frozen=True)
class ClusterIdentity:
    """Which cluster a run drives: its API server URL and the SHA-256 of its CA certificate (DER)."""

    server: str
    ca_sha256: str = ""

    @classmethod
    def from_ca(cls, server: str, ca: bytes | str) -> ClusterIdentity:
        """From the CA as PEM (kubeconfig ``certificate-authority-data`` decoded) or DER bytes."""
        raw = ca.encode() if isinstance(ca, str) else ca
        der = ssl.PEM_cert_to_DER_cert(raw.decode("ascii").strip()) if b"-----BEGIN" in raw else raw
        return cls(server=server, ca_sha256=hashlib.sha256(der).hexdigest())

    @property
    def key(self) -> str:
        return self.ca_sha256 or hashlib.sha256(self.server.encode()).hexdigest()


@dataclass(frozen=True)
class RunRecord:
    id: str
    cluster: ClusterIdentity
    options: dict[str, Any]
    started_at: datetime
    finished_at: datetime | None
    status: RunStatus
    pid: int
    hostname: str


@dataclass(frozen=True)
class StepRecord:
    seq: int
    run_id: str
    node: str
    step: str
    phase: StepPhase
    detail: dict[str, Any]
    at: datetime


def default_path() -> Path:
    """``journal.sqlite`` in the state directory (``$XDG_STATE_HOME/shimshift`` unless overridden)."""
    return journal_path(state_dir())


class Journal:
    """The journal database. Thread-safe; one instance holds at most one run's cluster lock."""

    def __init__(self, path: Path | None = None, *, clock: Callable[[], datetime] | None = None) -> None:
        self.path = (path or default_path()).expanduser()
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._clock = clock or (lambda: datetime.now(UTC))
        self._mutex = threading.RLock()
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        self._db.row_factory = sqlite3.Row
        mode = self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if mode != "wal":
            raise Refusal(
                f"the journal cannot use SQLite WAL mode here (got {mode!r})",
                hint="put the journal on a local file system (not NFS), e.g. with --journal",
                file=str(self.path),
                code=JOURNAL_UNUSABLE,
            )
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA foreign_keys=ON")
        with self._transaction():
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version > _SCHEMA_VERSION:
                raise Refusal(
                    f"journal schema version {version} is newer than this shimshift understands",
                    hint="use the shimshift version that wrote it, or another --journal",
                    file=str(self.path),
                    code=JOURNAL_UNUSABLE,
                )
            if version < _SCHEMA_VERSION:
                # One statement at a time: executescript() would commit the open transaction first.
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        self._db.execute(statement)
            self._db.execute(f"PRAGMA user_version={_SCHEMA_VERSION}")
        self._lock_fd: int | None = None
        self._locked_run: str | None = None

    # -- lifecycle ---------------------------------------------------------------------------------

    def begin_run(
        self, cluster: ClusterIdentity, *, options: Mapping[str, Any], run_id: str | None = None
    ) -> RunRecord:
        """Start a run on ``cluster``: take its lock, refuse if another run holds it or is unfinished."""
        with self._mutex:
            self._lock(cluster)
            try:
                unfinished = self.active_run(cluster)
                if unfinished is not None:
                    raise Refusal(
                        f"run {unfinished.id} on {cluster.server}, started "
                        f"{unfinished.started_at:%Y-%m-%d %H:%M:%S} "
                        "UTC, did not finish",
                        hint="continue it with `shimshift migrate --resume`, or abandon it first",
                        file=str(self.path),
                        code=RUN_UNFINISHED,
                    )
                now = self._clock()
                record = RunRecord(
                    id=run_id or _new_run_id(now),
                    cluster=cluster,
                    options=dict(options),
                    started_at=now,
                    finished_at=None,
                    status=RunStatus.RUNNING,
                    pid=os.getpid(),
                    hostname=socket.gethostname(),
                )
                with self._transaction():
                    self._db.execute(
                        "INSERT INTO runs (id, cluster_key, cluster_server, cluster_ca_sha256, options_json, "
                        "started_at, status, pid, hostname) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            record.id,
                            cluster.key,
                            cluster.server,
                            cluster.ca_sha256,
                            json.dumps(record.options, sort_keys=True),
                            _iso(now),
                            record.status.value,
                            record.pid,
                            record.hostname,
                        ),
                    )
            except BaseException:
                self.release()
                raise
            self._locked_run = record.id
            self._write_holder(cluster, record.id)
            return record

    def resume_run(self, run_id: str) -> RunRecord:
        """Take over an unfinished run (its previous process is gone: otherwise the lock is held)."""
        with self._mutex:
            record = self.run(run_id)
            if record is None:
                raise Refusal(f"no run {run_id} in the journal", file=str(self.path), code=RUN_NOT_FOUND)
            if record.status != RunStatus.RUNNING:
                raise Refusal(
                    f"run {run_id} already ended ({record.status.value})", file=str(self.path), code=RUN_ALREADY_ENDED
                )
            self._lock(record.cluster)
            try:
                with self._transaction():
                    self._db.execute(
                        "UPDATE runs SET pid = ?, hostname = ? WHERE id = ?",
                        (os.getpid(), socket.gethostname(), run_id),
                    )
            except BaseException:
                self.release()
                raise
            self._locked_run = run_id
            self._write_holder(record.cluster, run_id)
            resumed = self.run(run_id)
            assert resumed is not None
            return resumed

    def finish_run(self, run_id: str, *, status: RunStatus = RunStatus.SUCCEEDED) -> None:
        """Mark the run ended and release the cluster lock."""
        with self._mutex:
            self._require_owner(run_id)
            with self._transaction():
                self._db.execute(
                    "UPDATE runs SET status = ?, finished_at = ? WHERE id = ?",
                    (status.value, _iso(self._clock()), run_id),
                )
            self.release()

    def abandon_run(self, run_id: str) -> None:
        """End an interrupted run without resuming it (takes and releases its lock)."""
        with self._mutex:
            self.resume_run(run_id)
            self.finish_run(run_id, status=RunStatus.ABANDONED)

    def release(self) -> None:
        """Release the cluster lock (also done by the kernel if the process dies)."""
        with self._mutex:
            if self._lock_fd is not None:
                os.close(self._lock_fd)  # closing the only descriptor drops the flock
            self._lock_fd = None
            self._locked_run = None

    def close(self) -> None:
        with self._mutex:
            self.release()
            self._db.close()

    def adopt_run(self, cluster: ClusterIdentity, copy: RunCopy) -> int:
        """Take in a run from the cluster's copy (core/run_copy.py): the run itself if this journal lacks it,
        and each node's records this journal lacks (the copy is written after every record, so it is never
        behind). For a `--resume` on a machine other than the one that began or last ran it. Returns how many
        records were added."""
        with self._mutex:
            self._lock(cluster)
            try:
                added = 0
                with self._transaction():
                    local = self.run(copy.run_id)
                    if local is not None and local.status is RunStatus.RUNNING and copy.status != local.status:
                        # The run ended on another machine (finished there, or taken over): so it has here.
                        self._db.execute("UPDATE runs SET status = ? WHERE id = ?", (copy.status, copy.run_id))
                    if local is None:
                        self._db.execute(
                            "INSERT INTO runs (id, cluster_key, cluster_server, cluster_ca_sha256, options_json, "
                            "started_at, status, pid, hostname) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                            (
                                copy.run_id,
                                cluster.key,
                                cluster.server,
                                cluster.ca_sha256,
                                json.dumps(copy.options, sort_keys=True),
                                _iso(copy.started_at),
                                copy.status if copy.status in set(RunStatus) else RunStatus.RUNNING.value,
                                os.getpid(),
                                socket.gethostname(),
                            ),
                        )
                    for node, records in copy.nodes.items():
                        have = len(self.timeline(copy.run_id, node))
                        for item in missing_records(have, records):
                            self._db.execute(
                                "INSERT INTO steps (run_id, node, step, phase, detail_json, at) "
                                "VALUES (?, ?, ?, ?, ?, ?)",
                                (
                                    copy.run_id,
                                    node,
                                    item.step,
                                    StepPhase(item.phase).value,
                                    json.dumps(item.detail, sort_keys=True, default=str),
                                    _iso(item.at),
                                ),
                            )
                            added += 1
                return added
            finally:
                self.release()

    # -- steps -------------------------------------------------------------------------------------

    def record(
        self, run_id: str, node: str, step: str, phase: StepPhase, detail: Mapping[str, Any] | None = None
    ) -> StepRecord:
        """Append one step record; durable when this returns."""
        with self._mutex:
            self._require_owner(run_id)
            now = self._clock()
            detail_json = json.dumps(dict(detail or {}), sort_keys=True, default=str)
            with self._transaction():
                cursor = self._db.execute(
                    "INSERT INTO steps (run_id, node, step, phase, detail_json, at) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (run_id, node, step, StepPhase(phase).value, detail_json, _iso(now)),
                )
            seq = cursor.lastrowid
            assert seq is not None
            # Names only: a detail can hold whole node files (the plan), which have no place in a log.
            _log.debug("journal %s: run %s, node %s, %s %s", self.path, run_id, node, step, StepPhase(phase).value)
            return StepRecord(seq, run_id, node, step, StepPhase(phase), json.loads(detail_json), now)

    def step_started(
        self, run_id: str, node: str, step: str, detail: Mapping[str, Any] | None = None
    ) -> StepRecord:
        return self.record(run_id, node, step, StepPhase.STARTED, detail)

    def step_finished(
        self, run_id: str, node: str, step: str, detail: Mapping[str, Any] | None = None
    ) -> StepRecord:
        return self.record(run_id, node, step, StepPhase.FINISHED, detail)

    def step_failed(
        self, run_id: str, node: str, step: str, detail: Mapping[str, Any] | None = None
    ) -> StepRecord:
        return self.record(run_id, node, step, StepPhase.FAILED, detail)

    # -- queries -----------------------------------------------------------------------------------

    def run(self, run_id: str) -> RunRecord | None:
        row = self._query_one("SELECT * FROM runs WHERE id = ?", (run_id,))
        return _run(row) if row else None

    def active_run(self, cluster: ClusterIdentity) -> RunRecord | None:
        """The latest unfinished run on ``cluster`` (the one `--resume` continues), if any."""
        row = self._query_one(
            "SELECT * FROM runs WHERE cluster_key = ? AND status = 'running' "
            "ORDER BY started_at DESC LIMIT 1",
            (cluster.key,),
        )
        return _run(row) if row else None

    def runs(self, cluster: ClusterIdentity | None = None) -> list[RunRecord]:
        """Every run (of ``cluster`` if given), oldest first."""
        if cluster is None:
            rows = self._query("SELECT * FROM runs ORDER BY started_at", ())
        else:
            rows = self._query("SELECT * FROM runs WHERE cluster_key = ? ORDER BY started_at", (cluster.key,))
        return [_run(r) for r in rows]

    def timeline(self, run_id: str, node: str | None = None) -> list[StepRecord]:
        """Every step record of the run (of ``node`` if given) in the order written."""
        if node is None:
            rows = self._query("SELECT * FROM steps WHERE run_id = ? ORDER BY seq", (run_id,))
        else:
            rows = self._query(
                "SELECT * FROM steps WHERE run_id = ? AND node = ? ORDER BY seq", (run_id, node)
            )
        return [_step(r) for r in rows]

    def last_completed_step(self, run_id: str, node: str) -> StepRecord | None:
        """The node's last ``finished`` step in this run, or None if none finished."""
        row = self._query_one(
            "SELECT * FROM steps WHERE run_id = ? AND node = ? AND phase = 'finished' "
            "ORDER BY seq DESC LIMIT 1",
            (run_id, node),
        )
        return _step(row) if row else None

    def last_completed_steps(self, run_id: str) -> dict[str, StepRecord]:
        """Per node, the last ``finished`` step of the run."""
        rows = self._query(
            "SELECT * FROM steps WHERE seq IN "
            "(SELECT MAX(seq) FROM steps WHERE run_id = ? AND phase = 'finished' "
            "GROUP BY node)",
            (run_id,),
        )
        return {r["node"]: _step(r) for r in rows}

    def last_records(self, run_id: str) -> dict[str, StepRecord]:
        """Per node, the last record of any phase: ``started`` there means interrupted inside that step."""
        rows = self._query(
            "SELECT * FROM steps WHERE seq IN (SELECT MAX(seq) FROM steps WHERE run_id = ? GROUP BY node)",
            (run_id,),
        )
        return {r["node"]: _step(r) for r in rows}

    # -- internals ---------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        # BEGIN IMMEDIATE takes the write lock up front, so a busy database waits (busy timeout) at BEGIN
        # rather than failing at COMMIT.
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _query(self, sql: str, params: tuple[Any, ...]) -> list[sqlite3.Row]:
        with self._mutex:
            return list(self._db.execute(sql, params).fetchall())

    def _query_one(self, sql: str, params: tuple[Any, ...]) -> sqlite3.Row | None:
        rows = self._query(sql, params)
        return rows[0] if rows else None

    def _lock_path(self, cluster: ClusterIdentity) -> Path:
        return self.path.parent / "locks" / f"{cluster.key[:32]}.lock"

    def _lock(self, cluster: ClusterIdentity) -> None:
        if self._lock_fd is not None:
            raise RuntimeError(f"this journal already holds the lock of run {self._locked_run}")
        path = self._lock_path(cluster)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            holder = _read_holder(path)
            raise Refusal(
                f"another shimshift run is driving cluster {cluster.server}: {holder}",
                hint="wait for it to finish or stop it; a run that was killed releases its lock by itself",
                file=str(path),
                code=JOURNAL_LOCKED,
            ) from None
        self._lock_fd = fd

    def _write_holder(self, cluster: ClusterIdentity, run_id: str) -> None:
        # Only for the message another process shows when it finds the lock taken.
        assert self._lock_fd is not None
        holder = {
            "run": run_id,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "since": _iso(self._clock()),
        }
        data = json.dumps(holder).encode()
        os.ftruncate(self._lock_fd, 0)
        os.pwrite(self._lock_fd, data, 0)

    def _require_owner(self, run_id: str) -> None:
        if self._locked_run != run_id:
            raise RuntimeError(f"run {run_id} is not held by this journal (begin_run or resume_run it first)")


class AsyncJournal:
    """`Journal` for asyncio code: every call runs on one dedicated thread, so fsyncs never block the loop."""

    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="shimshift-journal")

    async def _call(self, fn: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, lambda: fn(*args, **kwargs))

    async def begin_run(
        self, cluster: ClusterIdentity, *, options: Mapping[str, Any], run_id: str | None = None
    ) -> RunRecord:
        return await self._call(self.journal.begin_run, cluster, options=options, run_id=run_id)

    async def resume_run(self, run_id: str) -> RunRecord:
        return await self._call(self.journal.resume_run, run_id)

    async def finish_run(self, run_id: str, *, status: RunStatus = RunStatus.SUCCEEDED) -> None:
        await self._call(self.journal.finish_run, run_id, status=status)

    async def record(
        self, run_id: str, node: str, step: str, phase: StepPhase, detail: Mapping[str, Any] | None = None
    ) -> StepRecord:
        return await self._call(self.journal.record, run_id, node, step, phase, detail)

    async def close(self) -> None:
        await self._call(self.journal.close)
        self._executor.shutdown(wait=True)


_P = ParamSpec("_P")
_T = TypeVar("_T")


def new_run_id(now: datetime) -> str:
    """A run's id: when it began, and enough randomness that two machines never pick the same."""
    return _new_run_id(now)


def _new_run_id(now: datetime) -> str:
    return f"{now.astimezone(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _run(row: sqlite3.Row) -> RunRecord:
    return RunRecord(
        id=row["id"],
        cluster=ClusterIdentity(server=row["cluster_server"], ca_sha256=row["cluster_ca_sha256"]),
        options=json.loads(row["options_json"]),
        started_at=datetime.fromisoformat(row["started_at"]),
        finished_at=datetime.fromisoformat(row["finished_at"]) if row["finished_at"] else None,
        status=RunStatus(row["status"]),
        pid=row["pid"],
        hostname=row["hostname"],
    )


def _step(row: sqlite3.Row) -> StepRecord:
    return StepRecord(
        seq=row["seq"],
        run_id=row["run_id"],
        node=row["node"],
        step=row["step"],
        phase=StepPhase(row["phase"]),
        detail=json.loads(row["detail_json"]),
        at=datetime.fromisoformat(row["at"]),
    )


def _read_holder(path: Path) -> str:
    try:
        holder = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        holder = {}
    if not holder:
        return "held by a live process (details not written yet)"
    return (
        f"run {holder.get('run')} (pid {holder.get('pid')} on {holder.get('host')}, "
        f"since {holder.get('since')})"
    )
