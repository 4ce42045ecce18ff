"""The state directory: SHIMSHIFT_STATE_DIR, then an absolute XDG_STATE_HOME, then ~/.local/state; the journal,
reports and logs inside it, and reports beside a journal moved elsewhere."""

from __future__ import annotations

from pathlib import Path

from shimshift.adapters.state_dir import journal_path, logs_dir, reports_dir, state_dir

HOME_STATE = Path.home() / ".local" / "state" / "shimshift"


def test_explicit_state_dir_wins_over_xdg() -> None:
    assert state_dir({"SHIMSHIFT_STATE_DIR": "/srv/ss", "XDG_STATE_HOME": "/x"}) == Path("/srv/ss")


def test_xdg_state_home_then_the_xdg_default() -> None:
    assert state_dir({"XDG_STATE_HOME": "/x"}) == Path("/x/shimshift")
    assert state_dir({}) == HOME_STATE
    assert state_dir({"XDG_STATE_HOME": "", "SHIMSHIFT_STATE_DIR": ""}) == HOME_STATE


def test_a_relative_xdg_state_home_is_ignored_as_the_spec_says() -> None:
    assert state_dir({"XDG_STATE_HOME": "relative/state"}) == HOME_STATE


def test_journal_reports_and_logs_live_in_it() -> None:
    state = Path("/s")
    assert journal_path(state) == Path("/s/journal.sqlite")
    assert reports_dir(journal_path(state)) == Path("/s/reports")
    assert logs_dir(state) == Path("/s/logs")
    assert reports_dir(Path("/elsewhere/j.sqlite")) == Path("/elsewhere/reports")
