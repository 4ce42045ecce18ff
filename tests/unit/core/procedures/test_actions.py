"""Every action declares its one result type (core/actions.py ``returns``), and the check the tests' worlds
use to hold their answers to it catches a wrong shape."""

from __future__ import annotations

import typing
from datetime import UTC, datetime

import pytest

from shimshift.core import actions as act
from shimshift.core.steps import PodRef
from tests.unit.core.procedures.node_world import Result
from tests.unit.core.procedures.results import check_result, conforms

ACTIONS = typing.get_args(act.Action)


@pytest.mark.parametrize("action", ACTIONS, ids=lambda action: action.__name__)
def test_every_action_declares_what_it_returns(action: type) -> None:
    assert "returns" in vars(action), f"{action.__name__} declares no result type"


def test_a_wrong_answer_is_caught() -> None:
    check_result(act.ReadFile("/x"), None)
    check_result(act.ReadFile("/x"), b"data")
    with pytest.raises(AssertionError, match=r"returns bytes \| None"):
        check_result(act.ReadFile("/x"), "text")
    check_result(act.Run(("true",)), Result())
    with pytest.raises(AssertionError):
        check_result(act.Run(("true",)), b"")  # no returncode
    assert conforms([PodRef("ns", "p", "u")], act.RunningPods.returns)
    assert not conforms(["ns/p"], act.RunningPods.returns)
    assert conforms(("10.0.0.0/24",), act.PodCidrs.returns) and not conforms(["10.0.0.0/24"], act.PodCidrs.returns)
    assert conforms({"a": 1}, act.StepDetail.returns) and not conforms({1: 1}, act.StepDetail.returns)
    assert conforms(datetime.now(UTC), act.Now.returns) and conforms(None, act.Record.returns)
