"""`shimshift flags plan|check`: the node configuration engine over local copies of a node's files.

The command reads the files you name (this is the only I/O), places them at the node paths the core
expects, and prints what the core decides. It never writes: apply the diff by hand or let
`shimshift migrate` do it. Exit codes: 0 a plan (or no finding), 1 readiness findings, 2 refused input.
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from shimshift.cli.diffs import file_diff
from shimshift.cli.findings import plan_warnings_text
from shimshift.core.dropin import STANDARD_KUBEADM_DROPIN, parse_kubelet_dropin
from shimshift.core.errors import OPTION_INVALID, Refusal
from shimshift.core.node_files import (
    CRI_DOCKERD_DROPIN,
    CRI_DOCKERD_UNIT_USR,
    DEFAULT_KUBELET,
    INSTANCE_CONFIG,
    KUBEADM_FLAGS_ENV,
    KUBELET_CONFIG,
    KUBELET_DROPIN_USR,
    SYSCONFIG_KUBELET,
)
from shimshift.core.node_hygiene import MAX_NODE_FILE_BYTES, check_node_file
from shimshift.core.node_plan import NodePlan
from shimshift.core.node_plan_record import plan_data
from shimshift.core.node_planner import plan_node
from shimshift.core.readiness import Severity, check_readiness

if TYPE_CHECKING:
    from collections.abc import Callable

EXIT_OK, EXIT_FINDINGS, EXIT_REFUSED = 0, 1, 2

_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


def _file_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option("--flags-file", type=_FILE, required=True, help=f"The node's {KUBEADM_FLAGS_ENV}."),
        click.option(
            "--extra-args-file", type=_FILE, help=f"The node's {DEFAULT_KUBELET} or {SYSCONFIG_KUBELET}."
        ),
        click.option("--config-file", type=_FILE, help=f"The node's {KUBELET_CONFIG}."),
        click.option(
            "--dropin-file",
            type=_FILE,
            help="The node's kubelet drop-in 10-kubeadm.conf (default: kubeadm's packaged one).",
        ),
        click.option(
            "--instance-config-file", type=_FILE, help=f"The node's {INSTANCE_CONFIG} (kubeadm 1.32+)."
        ),
        click.option(
            "--cri-dockerd-unit-file",
            type=_FILE,
            help="The node's cri-docker.service (default: the packaged command line).",
        ),
        click.option(
            "--cri-dockerd-dropin-file", type=_FILE, help=f"The node's {CRI_DOCKERD_DROPIN}, if it exists."
        ),
        click.option("--cri-dockerd-version", help="`cri-dockerd --version` on the node, e.g. 0.3.16."),
        click.option(
            "--docker-cgroup-driver",
            type=click.Choice(["cgroupfs", "systemd"]),
            help="`docker info --format '{{.CgroupDriver}}'` on the node.",
        ),
        click.option(
            "-o", "--output", type=click.Choice(["text", "json"]), default="text", show_default=True
        ),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _read(path: Path) -> bytes:
    """The local copy of a node file, read only up to the size limit (a device or a huge file is refused)."""
    with path.open("rb") as handle:
        data = handle.read(MAX_NODE_FILE_BYTES + 1)
    check_node_file(str(path), data)
    return data


def _node_files(
    *,
    flags_file: Path,
    extra_args_file: Path | None,
    config_file: Path | None,
    dropin_file: Path | None,
    instance_config_file: Path | None,
    cri_dockerd_unit_file: Path | None,
    cri_dockerd_dropin_file: Path | None,
) -> dict[str, bytes | None]:
    """Local files placed at the node paths. The extra-args file goes wherever the drop-in reads it."""
    dropin = _read(dropin_file) if dropin_file is not None else STANDARD_KUBEADM_DROPIN
    files: dict[str, bytes | None] = {KUBELET_DROPIN_USR: dropin, KUBEADM_FLAGS_ENV: _read(flags_file)}
    if extra_args_file is not None:
        read = [
            p
            for p, _opt, _line in parse_kubelet_dropin(
                str(dropin_file or KUBELET_DROPIN_USR), dropin
            ).environment_files
        ]
        target = next((p for p in (DEFAULT_KUBELET, SYSCONFIG_KUBELET) if p in read), None)
        if target is None:
            raise Refusal(
                f"the kubelet drop-in reads neither {DEFAULT_KUBELET} nor {SYSCONFIG_KUBELET}",
                hint="drop --extra-args-file, or pass the drop-in that reads it with --dropin-file",
                file=str(dropin_file or KUBELET_DROPIN_USR),
                code=OPTION_INVALID,
            )
        files[target] = _read(extra_args_file)
    for path, local in (
        (KUBELET_CONFIG, config_file),
        (INSTANCE_CONFIG, instance_config_file),
        (CRI_DOCKERD_UNIT_USR, cri_dockerd_unit_file),
        (CRI_DOCKERD_DROPIN, cri_dockerd_dropin_file),
    ):
        if local is not None:
            files[path] = _read(local)
    return files


def _refused(exc: Refusal, *, config_given: bool) -> None:
    if exc.file == KUBELET_CONFIG and not config_given:
        exc = replace(exc, hint="pass the node's config.yaml with --config-file")
    click.echo(f"refused: {exc}", err=True)
    sys.exit(EXIT_REFUSED)


def _render_plan(plan: NodePlan) -> str:
    out: list[str] = [f"kubelet {plan.kubelet_version}: {plan.state.value}"]
    if plan.noop_reason:
        out.append(f"nothing to do: {plan.noop_reason}")
    for change in plan.changes:
        out.append(file_diff(change.path, change.before, change.after).rstrip("\n"))
    if plan.cri_dockerd_settings:
        out.append("cri-dockerd settings moved from the kubelet:")
        out += [f"  {k}={v}" for k, v in plan.cri_dockerd_settings.items()]
    if plan.cri_dockerd_args:
        out.append(f"cri-dockerd command line: {' '.join(plan.cri_dockerd_args)}")
    out.append(
        f"kubeadm.alpha.kubernetes.io/cri-socket annotation: {plan.cri_socket_before or '(unknown)'} -> "
        f"{plan.cri_socket_after}"
    )
    if plan.expected_kubelet_args:
        out.append(
            "kubelet command line must show: "
            + " ".join(f"{k}={v}" for k, v in plan.expected_kubelet_args.items())
        )
    if plan.expected_kubelet_config:
        out.append(
            "kubelet config must show: "
            + ", ".join(f"{k}: {v}" for k, v in plan.expected_kubelet_config.items())
        )
    out.append("kubelet command line must not show: " + " ".join(plan.forbidden_kubelet_args))
    out += plan_warnings_text(plan.warnings)
    return "\n".join(out)


@click.group("flags")
def flags() -> None:
    """Plan a node's kubelet and cri-dockerd configuration, or check it against a kubelet version."""


@flags.command("plan")
@click.option("--kubelet-version", required=True, help="The node's kubelet version, e.g. 1.23.17.")
@click.option("--cri-socket-annotation", help="The node's kubeadm.alpha.kubernetes.io/cri-socket value.")
@_file_options
def plan_cmd(
    *,
    kubelet_version: str,
    cri_socket_annotation: str | None,
    cri_dockerd_version: str | None,
    docker_cgroup_driver: str | None,
    output: str,
    **paths: Path | None,
) -> None:
    """Print the diff of every file the migration to cri-dockerd would change, and its settings."""
    try:
        files = _node_files(**paths)  # type: ignore[arg-type]
        plan = plan_node(
            kubelet_version=kubelet_version,
            files=files,
            cri_dockerd_version=cri_dockerd_version,
            docker_cgroup_driver=docker_cgroup_driver,
            cri_socket_annotation=cri_socket_annotation,
        )
    except Refusal as exc:
        _refused(exc, config_given=paths.get("config_file") is not None)
        return
    if output == "json":
        data = plan_data(plan)
        data["diffs"] = {c.path: file_diff(c.path, c.before, c.after) for c in plan.changes}
        click.echo(json.dumps(data, indent=2))
    else:
        click.echo(_render_plan(plan))
    sys.exit(EXIT_OK)


@flags.command("check")
@click.option("--target-version", required=True, help="The kubelet version to check for, e.g. 1.24 or 1.27.")
@_file_options
def check_cmd(
    *,
    target_version: str,
    cri_dockerd_version: str | None,
    docker_cgroup_driver: str | None,
    output: str,
    **paths: Path | None,
) -> None:
    """List every setting that would stop a kubelet of the target version or change its runtime."""
    try:
        files = _node_files(**paths)  # type: ignore[arg-type]
        findings = check_readiness(
            target_version=target_version,
            files=files,
            cri_dockerd_version=cri_dockerd_version,
            docker_cgroup_driver=docker_cgroup_driver,
        )
    except Refusal as exc:
        _refused(exc, config_given=paths.get("config_file") is not None)
        return
    if output == "json":
        click.echo(
            json.dumps(
                [
                    {"file": f.file, "line": f.line, "flag": f.setting, **f.to_json()}
                    for f in findings
                ],
                indent=2,
            )
        )
    elif not findings:
        click.echo(f"no finding: a kubelet {target_version} would start on these files with the same runtime")
    else:
        for f in findings:
            click.echo(str(f))
        errors = sum(1 for f in findings if f.severity is Severity.ERROR)
        click.echo(f"{errors} error(s), {len(findings) - errors} warning(s)")
    sys.exit(EXIT_FINDINGS if findings else EXIT_OK)
