"""The top-level handler: every error is one line on stderr, never a traceback.

Matrix: a refusal (a kubeconfig that does not exist) exits 2 naming the file; an error nobody expected
(a journal file that is not a SQLite database) exits 1 with one line naming the file that now holds the
traceback; click's own usage errors keep click's wording and exit 2.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from click.testing import CliRunner

from shimshift.cli.main import TRACEBACK_FILE, main

if TYPE_CHECKING:
    from pathlib import Path

KUBECONFIG = """apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:6443"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
"""


def test_a_refusal_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["audit", "--kubeconfig", str(tmp_path / "missing")])
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [f"shimshift: {tmp_path / 'missing'}: kubeconfig file not found "
                                          "(pass an existing --kubeconfig)"]  # fmt: skip


def test_an_unexpected_error_is_one_line_and_its_traceback_goes_to_a_file(tmp_path: Path) -> None:
    (tmp_path / "kubeconfig").write_text(KUBECONFIG)
    (tmp_path / "journal.sqlite").write_text("not a database\n" * 200)
    state = tmp_path / "state"
    result = CliRunner().invoke(
        main,
        ["status", "--kubeconfig", str(tmp_path / "kubeconfig"), "--journal", str(tmp_path / "journal.sqlite")],
        env={"XDG_STATE_HOME": str(state)},
    )
    assert result.exit_code == 1
    saved = state / "shimshift" / TRACEBACK_FILE
    assert result.stderr.splitlines() == [
        f"shimshift: unexpected DatabaseError: file is not a database (a bug; traceback in {saved})"
    ]
    assert "Traceback" not in result.output
    assert saved.read_text().startswith("Traceback (most recent call last):")


def test_usage_errors_stay_clicks(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["drain", "n1", "--timeout", "soon", "--kubeconfig", str(tmp_path / "k")])
    assert result.exit_code == 2 and "not a duration" in result.stderr
