"""`shimshift sudoers [NODE...]`: the sudoers.d file a non-root SSH user needs, with the node's own paths.

The programs come from `shimshift.core.node_commands` (the commands a migration sends, checked
against the code by a unit test); their full paths are looked up on each node as the login user, on
sudo's search path. Without a node, they are looked up on this machine. Prints; never writes.
"""

from __future__ import annotations

import asyncio
import getpass
import os
import sys
from pathlib import Path

import click

from shimshift.adapters.node_access import NodeAccessError, find_programs_here
from shimshift.adapters.ssh import SSHNodeAccess
from shimshift.core.errors import Refusal
from shimshift.core.node_commands import PROGRAMS, UPGRADE_PROGRAMS, sudoers_lines
from shimshift.orchestrator.session import Connection, node_pool

EXIT_OK, EXIT_FAILED, EXIT_REFUSED = 0, 1, 2


async def _from_nodes(
    connection: Connection, nodes: tuple[str, ...], user: str | None, programs: tuple[str, ...]
) -> list[str]:
    out: list[str] = []
    async with node_pool(connection) as pool:
        for name in nodes:
            access = await pool.get(name)
            login = access.username if isinstance(access, SSHNodeAccess) else None
            paths = await access.find_programs(programs)
            if len(nodes) > 1:
                out.append(f"# --- node {name}")
            out += sudoers_lines(user or login or "root", paths, programs)
    return out


@click.command("sudoers")
@click.argument("nodes", nargs=-1)
@click.option("--user", help="The user to allow (default: the SSH login user; without NODE, $SUDO_USER or you).")
@click.option(
    "--ssh-config",
    type=click.Path(dir_okay=False, path_type=Path),
    help="ssh_config with a Host per node (default: ~/.ssh/config).",
)
@click.option(
    "--known-hosts",
    type=click.Path(dir_okay=False, path_type=Path),
    help="known_hosts to check node host keys against. Unknown host keys are always refused.",
)
@click.option("--ssh-user", help="SSH user to log in as (default: the ssh_config's).")
@click.option("--upgrade", is_flag=True, help="Also what `shimshift upgrade` runs (kubeadm, crictl, the binary swap).")
def sudoers(
    nodes: tuple[str, ...],
    user: str | None,
    ssh_config: Path | None,
    known_hosts: Path | None,
    ssh_user: str | None,
    upgrade: bool,
) -> None:
    """Print the /etc/sudoers.d/shimshift lines a non-root SSH user needs: exactly the commands a migration
    (with --upgrade: an upgrade) runs as root, by their full paths on the node (or on this machine
    without NODE)."""
    programs = UPGRADE_PROGRAMS if upgrade else PROGRAMS
    try:
        if nodes:
            connection = Connection(ssh_config=ssh_config, known_hosts=known_hosts, ssh_user=ssh_user)
            lines = asyncio.run(_from_nodes(connection, nodes, user or ssh_user, programs))
        else:
            here = user or os.environ.get("SUDO_USER") or getpass.getuser()
            lines = sudoers_lines(here, find_programs_here(programs), programs)
    except Refusal as error:
        click.echo(f"shimshift: {error}", err=True)
        sys.exit(EXIT_REFUSED)
    except NodeAccessError as error:
        click.echo(f"shimshift: {error}", err=True)
        sys.exit(EXIT_FAILED)
    click.echo("\n".join(lines))
    sys.exit(EXIT_OK)
