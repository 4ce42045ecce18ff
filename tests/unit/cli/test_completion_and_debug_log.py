"""Shell completion scripts (click's), and `-v`: a debug log file in the state directory, with UTC
timestamps, owner-only, and no credential in it whatever a library logs.

Matrix: bash/zsh/fish completion sources; the redaction of every credential shape (Authorization header,
bare bearer, kubeconfig token / client-key-data / password keys, a dict repr, --token flags, an exception);
the log file's name, mode and line format; `shimshift -v` saying where the log is and writing to it.
"""

from __future__ import annotations

import logging
import re
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from shimshift.cli.debug_log import REDACTED, redact, start_debug_log
from shimshift.cli.main import main

TOKEN = "3f1c0ffee0ddba11d00dfeedbeefcafe"


@pytest.mark.parametrize(
    ("shell", "marker"),
    [
        ("bash_source", "complete -o nosort -F _shimshift_completion shimshift"),
        ("zsh_source", "compdef _shimshift_completion shimshift"),
        ("fish_source", "complete --no-files --command shimshift"),
    ],
)
def test_completion_source_is_a_script(shell: str, marker: str) -> None:
    result = CliRunner().invoke(main, [], prog_name="shimshift", env={"_SHIMSHIFT_COMPLETE": shell})
    assert result.exit_code == 0
    assert marker in result.output


def test_completion_answers_subcommands_and_options() -> None:
    env = {"_SHIMSHIFT_COMPLETE": "bash_complete", "COMP_WORDS": "shimshift mi", "COMP_CWORD": "1"}
    result = CliRunner().invoke(main, [], prog_name="shimshift", env=env)
    assert result.output.split() == ["plain,migrate"]
    env = {"_SHIMSHIFT_COMPLETE": "bash_complete", "COMP_WORDS": "shimshift migrate --max-u", "COMP_CWORD": "2"}
    assert CliRunner().invoke(main, [], prog_name="shimshift", env=env).output.split() == ["plain,--max-unavailable"]


@pytest.mark.parametrize(
    "text",
    [
        f"Authorization: Bearer {TOKEN}",
        f"{{'authorization': 'Bearer {TOKEN}', 'accept': 'application/json'}}",
        f"sending bearer {TOKEN}",
        f"users:\n- name: admin\n  user:\n    token: {TOKEN}\n",
        f'{{"token": "{TOKEN}"}}',
        f"client-key-data: {TOKEN}",
        f"password={TOKEN}",
        f"shimshift --token {TOKEN} audit",
        f"--token={TOKEN}",
    ],
)
def test_redact_every_credential_shape(text: str) -> None:
    redacted = redact(text)
    assert TOKEN not in redacted
    assert REDACTED in redacted


def test_redact_leaves_ordinary_text_alone() -> None:
    text = "GET https://127.0.0.1:6443/api/v1/nodes?limit=500 200 OK; tokens.csv; node w1 drained"
    assert redact(text) == text


def test_log_file_is_private_timestamped_and_redacted(tmp_path: Path) -> None:
    clock = lambda: datetime(2026, 12, 2, 13, 40, 5, tzinfo=UTC)  # noqa: E731
    log = start_debug_log(tmp_path / "logs", ["shimshift", "-v", "audit"], clock=clock)
    try:
        logging.getLogger("httpx").debug("request headers %s", {"Authorization": f"Bearer {TOKEN}"})
        try:
            raise ValueError(f"bad kubeconfig: token: {TOKEN}")
        except ValueError:
            logging.getLogger("shimshift.test").exception("loading failed")
    finally:
        log.stop()
    assert re.fullmatch(r"shimshift-20261202T134005Z-\d+\.log", log.path.name)
    assert log.path.parent == tmp_path / "logs"
    assert stat.S_IMODE(log.path.stat().st_mode) == 0o600
    text = log.path.read_text()
    assert TOKEN not in text
    lines = [line for line in text.splitlines() if re.match(r"\d{4}-\d\d-\d\dT", line)]
    assert len(lines) == 3
    assert all(re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (DEBUG|ERROR) ", line) for line in lines)
    assert "shimshift started: shimshift -v audit" in text
    assert "Traceback" in text  # the exception is logged, redacted
    # stopped: later records go nowhere near the file
    logging.getLogger("shimshift.test").debug("after stop")
    assert "after stop" not in log.path.read_text()


def test_verbose_says_where_the_log_is_and_writes_it(tmp_path: Path) -> None:
    state = tmp_path / "state"
    args = ["--state-dir", str(state), "-v", "lab", "status", "--dir", str(tmp_path / "lab")]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1  # no lab there
    match = re.search(r"shimshift: debug log: (\S+)", result.stderr)
    assert match is not None, result.stderr
    path = Path(match.group(1))
    assert path.parent == state / "logs"
    assert "DEBUG" in path.read_text()


def test_without_verbose_no_log_is_written(tmp_path: Path) -> None:
    state = tmp_path / "state"
    result = CliRunner().invoke(main, ["--state-dir", str(state), "lab", "status", "--dir", str(tmp_path / "lab")])
    assert "debug log" not in result.stderr
    assert not (state / "logs").exists()


def test_an_unwritable_log_directory_is_one_line(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / "logs").write_text("a file where the log directory should be")
    result = CliRunner().invoke(main, ["--state-dir", str(state), "-v", "lab", "status", "--dir", str(tmp_path)])
    assert result.exit_code == 1
    assert result.stderr.strip() == f"Error: cannot write the debug log in {state / 'logs'}: File exists"
