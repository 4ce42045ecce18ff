"""The `shimshift` command (also installed as the kubectl plugin `kubectl-shimshift`)."""

from __future__ import annotations

import click

from shimshift import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="shimshift")
def main() -> None:
    """Move Docker Engine nodes from the kubelet's dockershim to cri-dockerd, node by node."""


from shimshift.cli.cluster_cmd import COMMANDS as _cluster_commands  # noqa: E402
from shimshift.cli.flags_cmd import flags as _flags  # noqa: E402
from shimshift.cli.lab_cmd import lab as _lab  # noqa: E402
from shimshift.cli.migrate_cmd import COMMANDS as _migrate_commands  # noqa: E402
from shimshift.cli.sudoers_cmd import sudoers as _sudoers  # noqa: E402

for _command in [_flags, _lab, *_cluster_commands, *_migrate_commands, _sudoers]:
    main.add_command(_command)

if __name__ == "__main__":
    main()
