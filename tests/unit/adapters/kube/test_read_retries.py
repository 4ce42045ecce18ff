"""When a request to the API server is sent again: client-go's rules, for reads only."""

from __future__ import annotations

import pytest

from shimshift.adapters.kube.transport import DISCONNECT_WAIT, read_retry_wait


@pytest.mark.parametrize(
    ("method", "status", "retry_after", "dropped", "wait"),
    [
        ("GET", None, None, True, DISCONNECT_WAIT),  # reset or closed before an answer
        ("GET", 429, "1", False, 1.0),  # priority and fairness under load
        ("GET", 503, "3", False, 3.0),
        ("GET", 504, " 2 ", False, 2.0),
        ("GET", 500, "0", False, 0.0),
        ("GET", 429, None, False, None),  # no Retry-After: the caller's to handle
        ("GET", 504, None, False, None),  # a list that timed out: repeating it would time out again
        ("GET", 404, "1", False, None),
        ("GET", 409, "1", False, None),
        ("GET", 429, "Wed, 21 Oct 2026 07:28:00 GMT", False, None),
        ("GET", 429, "-1", False, None),
        ("POST", None, None, True, None),  # a write may have reached the server
        ("POST", 429, "10", False, None),  # "the disruption budget is still being processed": the drain's
        ("PATCH", 503, "1", False, None),
        ("DELETE", None, None, True, None),
    ],
)
def test_read_retry_wait(method: str, status: int | None, retry_after: str | None, dropped: bool,
                         wait: float | None) -> None:
    assert read_retry_wait(method, status=status, retry_after=retry_after, dropped=dropped) == wait
