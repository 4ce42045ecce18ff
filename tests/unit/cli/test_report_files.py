"""The report files a run leaves (cli/report_files.py): a journey's records (a step per drain and per kubeadm
run, named by the operation) render like a migration's; a directory that refuses them costs one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shimshift.adapters.journal import ClusterIdentity, Journal, StepPhase
from shimshift.cli.report_files import announce_reports, reports_after_run

SERVER = "https://127.0.0.1:6443"
APPLY = "kubeadm-apply:v1.25.16:cp1"
DRAIN = "drain-1:v1.25.16:w1#1/drain"


def journey_journal(path: Path) -> str:
    journal = Journal(path)
    run = journal.begin_run(ClusterIdentity(SERVER), options={}).id
    for node, step in (("cp1", APPLY), ("w1", DRAIN)):
        journal.record(run, node, step, StepPhase.STARTED)
        journal.record(run, node, step, StepPhase.FINISHED)
    journal.finish_run(run)
    journal.close()
    return run


def test_a_journey_s_operations_are_in_every_report_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = journey_journal(tmp_path / "journal.sqlite")
    files = reports_after_run(tmp_path / "journal.sqlite", run, SERVER, tmp_path / "reports")
    assert files is not None
    html = files.html.read_text(encoding="utf-8")
    assert f'data-step="{DRAIN}"' in html and f'data-step="{APPLY}"' in html
    steps = {entry["step"] for node in json.loads(files.json.read_text())["nodes"] for entry in node["timeline"]}
    assert {APPLY, DRAIN} <= steps
    assert DRAIN in files.markdown.read_text()
    announce_reports(files, run)
    assert capsys.readouterr().out.splitlines()[0] == f"report: {files.html}"


def test_a_directory_that_refuses_the_reports_costs_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = journey_journal(tmp_path / "journal.sqlite")
    (tmp_path / "reports").write_text("a file where the directory should be")
    assert reports_after_run(tmp_path / "journal.sqlite", run, SERVER, tmp_path / "reports") is None
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("shimshift: cannot write the reports in "), err
    announce_reports(None, run)
    assert f"shimshift report --run {run} -o html" in capsys.readouterr().out
