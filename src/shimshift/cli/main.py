"""The `shimshift` command (also installed as the kubectl plugin `kubectl-shimshift`)."""

from __future__ import annotations

import click

from shimshift import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="shimshift")
def main() -> None:
    """Move Docker Engine nodes from the kubelet's dockershim to cri-dockerd, node by node."""


from shimshift.cli import lab_cmd  # noqa: E402

main.add_command(lab_cmd.lab)

if __name__ == "__main__":
    main()
