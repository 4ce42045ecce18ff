"""The `shimshift` command (also installed as the kubectl plugin `kubectl-shimshift`).

Every error ends here as one line on stderr, never a traceback: a :class:`Refusal` (bad input or state,
naming file/line/node) or an :class:`Unavailable` (the API server or a node could not be used, naming its
URL or the node) exits 2, as nothing was changed. Anything else is a bug: one line naming the file that
holds its traceback, exit 1.
"""

from __future__ import annotations

import sys
import traceback
from pathlib import Path
from typing import Any

import click

from shimshift import __version__
from shimshift.adapters.state_dir import STATE_DIR_ENV, logs_dir, state_dir
from shimshift.cli.debug_log import start_debug_log
from shimshift.cli.findings import guard_screen
from shimshift.cli.options import EXIT_NODES_FAILED, EXIT_REFUSED
from shimshift.cli.settings import CliSettings, current_state_dir
from shimshift.core.errors import Refusal, Unavailable
from shimshift.core.hardened_pods import HardenedPodsRefusal

TRACEBACK_FILE = "last-error.txt"


class _Shimshift(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except HardenedPodsRefusal as error:
            # The guard's refusal is the one that needs a screen: what breaks, which workloads, the ways on.
            click.echo(guard_screen(error.decision) if error.decision else f"shimshift: {error}", err=True)
            ctx.exit(EXIT_REFUSED)
        except (Refusal, Unavailable) as error:
            click.echo(f"shimshift: {error}", err=True)
            ctx.exit(EXIT_REFUSED)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except Exception as error:
            click.echo(f"shimshift: {_unexpected(error)}", err=True)
            ctx.exit(EXIT_NODES_FAILED)


def _unexpected(error: Exception) -> str:
    summary = f"unexpected {type(error).__name__}: {str(error).strip().splitlines()[0] if str(error).strip() else ''}"
    path = current_state_dir() / TRACEBACK_FILE
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(traceback.format_exception(error)))
    except OSError:
        return f"{summary} (a bug; its traceback could not be written to {path})"
    return f"{summary} (a bug; traceback in {path})"


@click.group(cls=_Shimshift, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="shimshift")
@click.option(
    "--state-dir",
    "state_directory",
    type=click.Path(file_okay=False, path_type=Path),
    envvar=STATE_DIR_ENV,
    show_envvar=True,
    help="Where the journal, the reports and the debug logs go (default: $XDG_STATE_HOME/shimshift, "
    "else ~/.local/state/shimshift).",
)
@click.option(
    "-v", "--verbose", is_flag=True, help="Write debug logs, with timestamps, to a file under STATE_DIR/logs."
)
@click.pass_context
def main(context: click.Context, state_directory: Path | None, verbose: bool) -> None:
    """Move Docker Engine nodes from the kubelet's dockershim to cri-dockerd, node by node."""
    state = state_directory.expanduser() if state_directory is not None else state_dir()
    log_file = None
    if verbose:
        try:
            debug_log = start_debug_log(logs_dir(state), sys.argv)
        except OSError as error:
            raise click.ClickException(f"cannot write the debug log in {logs_dir(state)}: {error.strerror}") from error
        # Said first, so the path is on screen even when the command then fails.
        click.echo(f"shimshift: debug log: {debug_log.path}", err=True)
        context.call_on_close(debug_log.stop)
        log_file = debug_log.path
    context.obj = CliSettings(state_dir=state, log_file=log_file)


from shimshift.cli.cluster_cmd import COMMANDS as _cluster_commands  # noqa: E402
from shimshift.cli.flags_cmd import flags as _flags  # noqa: E402
from shimshift.cli.lab_cmd import lab as _lab  # noqa: E402
from shimshift.cli.migrate_cmd import COMMANDS as _migrate_commands  # noqa: E402
from shimshift.cli.sudoers_cmd import sudoers as _sudoers  # noqa: E402

for _command in [_flags, _lab, *_cluster_commands, *_migrate_commands, _sudoers]:
    main.add_command(_command)

if __name__ == "__main__":
    main()
