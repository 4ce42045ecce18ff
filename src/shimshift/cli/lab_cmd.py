"""`shimshift lab ...`: a throwaway kubeadm cluster (v1.23.17 on dockershim by default), for trying a migration."""

from __future__ import annotations

import time
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from shimshift.core.errors import Refusal
from shimshift.lab import cluster, upgrade_prep
from shimshift.lab.docker import LabError
from shimshift.lab.model import DEFAULT_DIRECTORY, CriDockerdMode, LabSpec, lab_files
from shimshift.lab.releases import DEFAULT_CRI_DOCKERD_VERSION, DEFAULT_VERSION

_cache_option = click.option(
    "--cache-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("/var/cache/shimshift"),
    show_default=True,
    envvar="SHIMSHIFT_CACHE",
    help="Where the lab's built artifacts are kept (built here when missing).",
)
_dir_option = click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_DIRECTORY,
    show_default=True,
    envvar="SHIMSHIFT_LAB_DIR",
    help="Lab directory (kubeconfig, ssh key, ssh_config, known_hosts, lab.json).",
)


def _console() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


def _fail(e: Exception) -> None:
    raise click.ClickException(str(e)) from e


@click.group("lab")
def lab() -> None:
    """A throwaway kubeadm cluster of Docker Engine nodes (v1.23.17 on dockershim by default), built offline."""


@lab.command("up")
@click.option("--workers", type=int, default=2, show_default=True, help="Number of worker nodes.")
@click.option(
    "--cri-dockerd",
    "cri_dockerd",
    type=click.Choice([m.value for m in CriDockerdMode]),
    default=CriDockerdMode.RUNNING.value,
    show_default=True,
    help="State cri-dockerd is left in on every node.",
)
@click.option(
    "--hardened-demo/--no-hardened-demo",
    default=True,
    show_default=True,
    help="Include the `restricted` Deployment (allowPrivilegeEscalation: false, with a PDB) and keep kubeadm's "
    "CoreDNS as it deploys it (the same setting): either makes `migrate` refuse kubelets before 1.24. Without "
    "it, CoreDNS runs without that one setting, as an operator migrating 1.23 kubelets must leave it.",
)
@click.option(
    "--version",
    "version",
    default=DEFAULT_VERSION.removeprefix("v"),
    show_default=True,
    help="Kubernetes release (1.21 to 1.37; `lab status` lists them and which are built). Dockershim below "
    "1.24, cri-dockerd from 1.24. A release not built yet is built first (about 25 minutes cold).",
)
@click.option(
    "--cri-dockerd-version",
    default=DEFAULT_CRI_DOCKERD_VERSION,
    show_default=True,
    help="cri-dockerd release built into the nodes (the newest this machine's Go module proxy serves that builds).",
)
@click.option("--replace", is_flag=True, help="Take down an existing lab first.")
@_dir_option
def up_cmd(
    workers: int,
    cri_dockerd: str,
    hardened_demo: bool,
    version: str,
    cri_dockerd_version: str,
    replace: bool,
    directory: Path,
) -> None:
    """Build the lab: 1 control plane + N workers, sample workloads, ssh access."""
    console = _console()
    started = time.monotonic()
    try:
        spec = LabSpec(
            workers=workers,
            cri_dockerd=CriDockerdMode(cri_dockerd),
            hardened_demo=hardened_demo,
            version=version,
            cri_dockerd_version=cri_dockerd_version,
        )
        if replace:
            cluster.down(directory=directory, remove_images=False, progress=lambda m: console.print(f"  {m}"))
        info = cluster.up(
            spec=spec,
            directory=directory,
            progress=lambda m: console.print(f"[dim]{time.monotonic() - started:5.0f}s[/] {m}"),
        )
    except (LabError, Refusal) as e:
        _fail(e)
        return
    console.print(f"lab up in {time.monotonic() - started:.0f}s; lab directory: {info.directory}")
    console.print(f'  kubectl --kubeconfig "{info.kubeconfig}" get nodes')
    console.print(f"  ssh -F {info.ssh_config} {info.nodes[-1].name}")
    click.echo(str(info.directory))


@lab.command("down")
@click.option("--keep-images", is_flag=True, help="Keep the node image (faster next `lab up`).")
@_dir_option
def down_cmd(keep_images: bool, directory: Path) -> None:
    """Remove every container, volume, network and image the lab made (idempotent)."""
    console = _console()
    started = time.monotonic()
    try:
        report = cluster.down(directory=directory, remove_images=not keep_images, progress=console.print)
    except LabError as e:
        _fail(e)
        return
    total = len(report.containers) + len(report.volumes) + len(report.networks) + len(report.images)
    console.print(
        f"lab down in {time.monotonic() - started:.0f}s: removed {total} Docker objects"
        if total
        else "lab down: nothing to remove"
    )


@lab.command("status")
@_cache_option
@_dir_option
def status_cmd(cache_dir: Path, directory: Path) -> None:
    """Show which releases are built, then nodes, readiness, kubelet and cri-dockerd state; exit 1 when the
    lab is not healthy."""
    from shimshift.lab.images import cached_releases

    console = Console(highlight=False)
    releases = Table("release", "runtime", "binaries", "lab images", title=f"releases in {cache_dir}")
    for cached in cached_releases(cache_dir):
        r = cached.release
        releases.add_row(
            r.version.removeprefix("v"),
            "dockershim" if r.uses_dockershim else "cri-dockerd",
            "built" if cached.binaries else "-",
            "built" if cached.lab_images else "-",
        )
    console.print(releases)
    try:
        st = cluster.status(directory)
    except LabError as e:
        _fail(e)
        return
    console.print(f"lab directory: {st.directory}")
    if st.info is not None:
        console.print(f"lab: Kubernetes {st.info.spec.version}, cri-dockerd {st.info.spec.cri_dockerd_version}")
        table = Table("node", "role", "ip", "container", "Ready", "kubelet", "cri-dockerd")
        for n in st.nodes:
            table.add_row(n.name, n.role, n.ip, n.container, n.ready, n.kubelet, n.cri_dockerd)
        console.print(table)
    for p in st.problems:
        console.print(f"[red]problem:[/] {p}")
    if not st.healthy:
        raise SystemExit(1)
    console.print("healthy")


def _print_path(directory: Path, key: str) -> None:
    path = lab_files(directory)[key]
    if not path.exists():
        raise click.ClickException(f"{path} does not exist; run `shimshift lab up`")
    click.echo(str(path))


@lab.command("kubeconfig")
@_dir_option
def kubeconfig_cmd(directory: Path) -> None:
    """Print the admin kubeconfig's path: kubectl --kubeconfig "$(shimshift lab kubeconfig)" get nodes."""
    _print_path(directory, "kubeconfig")


@lab.command("ssh-config")
@_dir_option
def ssh_config_cmd(directory: Path) -> None:
    """Print the ssh_config's path: ssh -F "$(shimshift lab ssh-config)" shimshift-lab-worker."""
    _print_path(directory, "ssh_config")


@lab.command("prepare-upgrade")
@click.option(
    "--version",
    "version",
    default="1.24.17",
    show_default=True,
    help="The release to upgrade to (any `lab status` lists).",
)
@_cache_option
@_dir_option
def prepare_upgrade_cmd(version: str, cache_dir: Path, directory: Path) -> None:
    """Ready the lab for `kubeadm upgrade` to VERSION: crictl and VERSION's images on every node.

    Builds what is missing first (cold: about 25 minutes). Prints the folder holding kubeadm, kubelet and
    kubectl at VERSION (for `shimshift upgrade --binaries`). Idempotent: a second run only checks.
    """
    console = _console()
    started = time.monotonic()
    try:
        prepared = upgrade_prep.prepare_upgrade(
            version=version,
            directory=directory,
            cache_dir=cache_dir,
            progress=lambda m: console.print(f"[dim]{time.monotonic() - started:5.0f}s[/] {m}"),
        )
    except (LabError, Refusal) as e:
        _fail(e)
        return
    console.print(
        f"lab ready for {prepared.artifacts.version} in {time.monotonic() - started:.0f}s "
        f"({len(prepared.nodes)} nodes); --binaries:"
    )
    click.echo(str(prepared.binaries_dir))
