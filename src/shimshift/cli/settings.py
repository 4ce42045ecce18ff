"""What the top-level `shimshift` group decides for every subcommand: the state directory and the debug log."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import click

from shimshift.adapters.state_dir import state_dir


@dataclass(frozen=True)
class CliSettings:
    state_dir: Path
    log_file: Path | None = None


def current_state_dir() -> Path:
    """The group's ``--state-dir`` when a subcommand runs under it, else the environment's state directory."""
    context = click.get_current_context(silent=True)
    settings = context.find_object(CliSettings) if context is not None else None
    return settings.state_dir if settings is not None else state_dir()
