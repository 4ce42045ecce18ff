"""`shimshift report` reads the journal of the state directory (--state-dir or SHIMSHIFT_STATE_DIR) and prints
any format, HTML included; nothing is contacted (the cluster is identified from the kubeconfig file)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from shimshift.adapters.journal import ClusterIdentity, Journal, StepPhase
from shimshift.adapters.state_dir import journal_path
from shimshift.cli.main import main

SERVER = "https://127.0.0.1:6443"
KUBECONFIG = f"""apiVersion: v1
kind: Config
clusters:
- name: c
  cluster:
    server: {SERVER}
users:
- name: u
  user: {{}}
contexts:
- name: c
  context: {{cluster: c, user: u}}
current-context: c
"""


@pytest.fixture
def state(tmp_path: Path) -> Path:
    directory = tmp_path / "state"
    directory.mkdir()
    journal = Journal(journal_path(directory))
    run = journal.begin_run(ClusterIdentity(SERVER), options={}).id
    for step in ("preflight", "cordon"):
        journal.record(run, "w<1>", step, StepPhase.STARTED)
        journal.record(run, "w<1>", step, StepPhase.FINISHED)
    journal.finish_run(run)
    journal.close()
    (tmp_path / "kubeconfig").write_text(KUBECONFIG)
    return directory


def test_html_from_the_state_dir_option(state: Path) -> None:
    kubeconfig = state.parent / "kubeconfig"
    args = ["--state-dir", str(state), "report", "-o", "html", "--kubeconfig", str(kubeconfig)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert result.output.startswith("<!DOCTYPE html>")
    assert 'data-node="w&lt;1&gt;"' in result.output
    assert 'data-step="cordon"' in result.output


def test_markdown_from_the_state_dir_environment(state: Path) -> None:
    env = {"SHIMSHIFT_STATE_DIR": str(state)}
    result = CliRunner().invoke(main, ["report", "--kubeconfig", str(state.parent / "kubeconfig")], env=env)
    assert result.exit_code == 0, result.output
    assert "## w<1>" in result.output


def test_another_state_dir_has_no_run(state: Path, tmp_path: Path) -> None:
    args = ["--state-dir", str(tmp_path / "empty"), "report", "--kubeconfig", str(state.parent / "kubeconfig")]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2
    assert "no such run in the journal" in result.stderr
    assert str(tmp_path / "empty" / "journal.sqlite") in result.stderr
