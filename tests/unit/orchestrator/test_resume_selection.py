"""The selection a resumed run finishes: a run records the nodes it selected when it
began, and `--resume` works on exactly those, whatever runtime they show now.

Matrix: round trip through the JSON the journal stores, a run recorded before the selection was kept,
an empty selection, records no shimshift wrote; the canary settings and the opt-in kept for the resume.
"""

from __future__ import annotations

import json

import pytest

from shimshift.core.errors import Refusal
from shimshift.core.fleet import SELECTION_KEY, FleetNode, recorded_selection, selection_record
from shimshift.orchestrator.session import MigrateOptions, _options_from_record

NODES = [FleetNode("w2", False), FleetNode("cp1", True), FleetNode("w1", False)]


def test_selection_round_trips_through_the_run_options() -> None:
    options = {"all_nodes": True, **selection_record(NODES)}
    assert recorded_selection(json.loads(json.dumps(options))) == NODES


def test_a_run_recorded_before_the_selection_was_kept_has_none() -> None:
    assert recorded_selection({"all_nodes": True}) is None


def test_an_empty_selection_is_kept_as_empty() -> None:
    assert recorded_selection(selection_record([])) == []


@pytest.mark.parametrize("value", [{"name": "w1"}, [{"control_plane": True}], [{"name": ""}], ["w1"]])
def test_a_selection_no_shimshift_wrote_is_refused(value: object) -> None:
    with pytest.raises(Refusal) as caught:
        recorded_selection({SELECTION_KEY: value})
    assert SELECTION_KEY in str(caught.value)


def test_a_resumed_run_keeps_the_canary_settings_and_the_opt_in() -> None:
    options = MigrateOptions(
        all_nodes=True,
        accept_refused_hardened_pods=True,
        canary_image="busybox:local",
        canary_namespace="ops",
        canary_timeout=30.0,
    )
    record = json.loads(json.dumps({**options.to_record(), **selection_record(NODES)}))
    assert _options_from_record(record) == options
    assert _options_from_record({}).canary_namespace == "kube-system"
