"""pods/exec's answer read into an ExecOutcome: the error channel's metav1.Status (k8s.io/apimachinery
pkg/util/remotecommand), and the query that asks for the command."""

from __future__ import annotations

from shimshift.adapters.kube.exec import exec_params, outcome_from_status
from shimshift.core.actions import ExecOutcome


def test_success_is_exit_code_zero() -> None:
    assert outcome_from_status({"metadata": {}, "status": "Success"}, b"pause.c 3.6\n", b"") == ExecOutcome(
        0, b"pause.c 3.6\n"
    )


def test_a_non_zero_exit_carries_its_code() -> None:
    status = {
        "status": "Failure",
        "message": "command terminated with non-zero exit code: exit status 2",
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": "2"}]},
    }
    outcome = outcome_from_status(status, b"", b"usage\n")
    assert (outcome.exit_code, outcome.stderr, outcome.failure) == (2, b"usage\n", "")


def test_a_command_the_runtime_could_not_start_has_no_exit_code_but_its_message() -> None:
    status = {"status": "Failure", "message": 'OCI runtime exec failed: exec: "/pause": stat /pause: no such file'}
    outcome = outcome_from_status(status, b"", b"")
    assert outcome.exit_code is None and outcome.message.startswith("OCI runtime exec failed") and not outcome.failure


def test_the_query_names_each_word_and_asks_for_no_stdin_nor_tty() -> None:
    query = str(exec_params("canary", ["/pause", "-v"]))
    assert query == "command=%2Fpause&command=-v&container=canary&stdout=true&stderr=true"
