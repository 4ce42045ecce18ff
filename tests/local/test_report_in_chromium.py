"""The HTML report of a real journal, opened in headless Chromium (Debian's `chromium`; no lab needed).

The journal is the real adapter (SQLite, the cluster lock) fed through its API with a clock the test
moves: a node migrated through every step (with a canary in verify's detail), a node whose verify failed
and was rolled back, a node refused at preflight. Chromium parses the file we wrote; every node and every
step the journal holds must be in the DOM it built, and its screenshot must not be blank.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest

from shimshift.adapters.journal import ClusterIdentity, Journal, RunStatus, StepPhase
from shimshift.cli.report_files import ReportFiles, write_reports
from shimshift.core.steps import MIGRATION_STEPS

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CLUSTER = ClusterIdentity("https://127.0.0.1:6443")


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def _step(journal: Journal, clock: Clock, run: str, node: str, step: str, seconds: float, **detail: object) -> None:
    journal.record(run, node, step, StepPhase.STARTED)
    clock.advance(seconds)
    phase = StepPhase.FAILED if "message" in detail else StepPhase.FINISHED
    journal.record(run, node, step, phase, detail)


@pytest.fixture
def report(tmp_path: Path) -> Iterator[tuple[ReportFiles, dict[str, list[str]]]]:
    clock = Clock()
    journal = Journal(tmp_path / "journal.sqlite", clock=clock)
    run = journal.begin_run(CLUSTER, options={"nodes": ["cp", "w1", "w2"]}).id
    journal.record(run, "cp", "preflight", StepPhase.STARTED)
    clock.advance(0.4)
    journal.record(run, "cp", "preflight", StepPhase.FAILED, {"message": "cri-dockerd is not installed"})
    seconds = {"drain": 24.0, "restart-kubelet": 3.0, "verify": 11.0}
    for step in MIGRATION_STEPS:
        detail: dict[str, object] = {}
        if step == "preflight":
            detail = {"plan": {"warnings": ["--pod-infra-container-image moved to cri-dockerd"]}}
        if step == "drain":
            detail = {"evicted": ["shimshift-demo/web-7c9d-abcde", "shimshift-demo/cache-0"]}
        if step == "verify":
            detail = {"canary": {"pod": "shimshift-canary-w1", "ip": "10.244.1.9", "seconds_to_ready": 2.1}}
        _step(journal, clock, run, "w1", str(step), seconds.get(str(step), 0.6), **detail)
    for name in ("preflight", "cordon", "drain", "write-config", "annotate", "restart-kubelet"):
        _step(journal, clock, run, "w2", name, 1.5)
    _step(journal, clock, run, "w2", "verify", 30, message="node not healthy after the kubelet restart")
    for name in ("restore-config", "restore-annotation", "restart-kubelet", "verify", "uncordon"):
        _step(journal, clock, run, "w2", f"rollback:{name}", 2)
    journal.finish_run(run, status=RunStatus.FAILED)
    expected: dict[str, list[str]] = {}
    for record in journal.timeline(run):
        expected.setdefault(record.node, [])
        if record.step not in expected[record.node]:
            expected[record.node].append(record.step)
    files = write_reports(journal, run, CLUSTER.server, tmp_path / "reports")
    journal.close()
    yield files, expected


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.nodes: list[str] = []
        self.steps: dict[str, list[str]] = {}
        self.bars: dict[str, list[str]] = {}
        self._node = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "section" and values.get("data-node"):
            self._node = values["data-node"] or ""
            self.nodes.append(self._node)
        elif tag == "tr" and values.get("data-step"):
            self.steps.setdefault(self._node, []).append(values["data-step"] or "")
        elif tag == "rect" and values.get("data-step"):
            self.bars.setdefault(self._node, []).append(values["data-step"] or "")


def _chromium(*args: str) -> subprocess.CompletedProcess[str]:
    # --no-sandbox: the tests run as root, where Chromium's sandbox refuses to start.
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_chromium_finds_every_node_and_step(report: tuple[ReportFiles, dict[str, list[str]]]) -> None:
    files, expected = report
    result = _chromium("--dump-dom", files.html.as_uri())
    assert result.returncode == 0, result.stderr[-2000:]
    dom = _Collector()
    dom.feed(result.stdout)
    assert dom.nodes == ["cp", "w1", "w2"]  # the order of the journal's summary: by node name
    for node, steps in expected.items():
        assert list(dict.fromkeys(dom.steps[node])) == steps, node
        assert list(dict.fromkeys(dom.bars[node])) == steps, node
    assert len(expected["w1"]) == len(MIGRATION_STEPS)
    assert "10.244.1.9" in result.stdout  # the canary
    assert "shimshift-demo/cache-0" in result.stdout  # an eviction
    assert "The rollback completed" in result.stdout


def test_chromium_screenshot_is_not_blank(report: tuple[ReportFiles, dict[str, list[str]]], tmp_path: Path) -> None:
    files, _ = report
    shot = tmp_path / "report.png"
    result = _chromium(f"--screenshot={shot}", "--window-size=1100,2600", files.html.as_uri())
    assert result.returncode == 0, result.stderr[-2000:]
    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    # A blank white page of this size compresses to a few kB; a drawn report is much larger.
    assert len(data) > 40_000, len(data)
