"""The state directory: the journal, the reports and the debug logs of the runs made from this machine.

One place decides it, so the three never drift apart: ``$SHIMSHIFT_STATE_DIR`` (also the top-level
``--state-dir`` option), else ``$XDG_STATE_HOME/shimshift``, else ``~/.local/state/shimshift`` (the XDG
Base Directory default for state that outlives a run but is not user data). Never the current
directory: a report written wherever the command happened to run gets lost or committed to a repository.

Layout::

    <state dir>/journal.sqlite      the journal (adapters/journal.py)
    <state dir>/reports/            shimshift-<run>.{html,md,json}, next to the journal they come from
    <state dir>/logs/               shimshift-<time>-<pid>.log, one per `shimshift -v` invocation
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

STATE_DIR_ENV = "SHIMSHIFT_STATE_DIR"
JOURNAL_NAME = "journal.sqlite"


def state_dir(environ: Mapping[str, str] | None = None) -> Path:
    """The state directory named by the environment (not created here)."""
    env = os.environ if environ is None else environ
    if env.get(STATE_DIR_ENV):
        return Path(env[STATE_DIR_ENV]).expanduser()
    # XDG says a relative $XDG_STATE_HOME is invalid and must be ignored.
    xdg = env.get("XDG_STATE_HOME", "")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".local" / "state"
    return base / "shimshift"


def journal_path(state: Path) -> Path:
    return state / JOURNAL_NAME


def reports_dir(journal: Path) -> Path:
    """Reports sit next to the journal they are rendered from (also when ``--journal`` moved it)."""
    return journal.expanduser().parent / "reports"


def logs_dir(state: Path) -> Path:
    return state / "logs"
