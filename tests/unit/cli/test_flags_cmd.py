"""`shimshift flags plan|check` over local files.

Matrix: plan text/json, no-op plan, refusal (exit 2, file and line on stderr, nothing on stdout), check with
and without findings (exit 1 / 0), cri-dockerd's streaming server on every address (unset, 0.0.0.0:PORT,
[::]), the extra-args file placed where the drop-in reads it (DEB and RPM), a missing config file named
with the option to pass it.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from click.testing import CliRunner

from shimshift.cli.main import main

from ..core.nodes import CONFIG, RPM_DROPIN

if TYPE_CHECKING:
    from pathlib import Path

DOCKERSHIM = (
    b'KUBELET_KUBEADM_ARGS="--network-plugin=cni --pod-infra-container-image=registry.k8s.io/pause:3.6"\n'
)
MIGRATED = (
    b'KUBELET_KUBEADM_ARGS="--pod-infra-container-image=registry.k8s.io/pause:3.6 --container-runtime=remote '
    b'--container-runtime-endpoint=unix:///var/run/cri-dockerd.sock"\n'
)


def files(
    tmp_path: Path, flags: bytes = DOCKERSHIM, extra: bytes = b"KUBELET_EXTRA_ARGS=--v=2\n"
) -> list[str]:
    (tmp_path / "flags.env").write_bytes(flags)
    (tmp_path / "extra").write_bytes(extra)
    (tmp_path / "config.yaml").write_bytes(CONFIG)
    return [
        "--flags-file",
        str(tmp_path / "flags.env"),
        "--extra-args-file",
        str(tmp_path / "extra"),
        "--config-file",
        str(tmp_path / "config.yaml"),
    ]


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["flags", *args])
    return result.exit_code, result.stdout, result.stderr


def test_plan_text(tmp_path: Path) -> None:
    code, out, err = run(
        "plan",
        "--kubelet-version",
        "v1.23.17",
        "--cri-dockerd-version",
        "0.3.16",
        "--docker-cgroup-driver",
        "systemd",
        *files(tmp_path),
    )
    assert code == 0, err
    assert "--- a/var/lib/kubelet/kubeadm-flags.env" in out
    assert '-KUBELET_KUBEADM_ARGS="--network-plugin=cni' in out
    assert "+++ b/etc/systemd/system/cri-docker.service.d/10-shimshift.conf" in out
    assert "  --network-plugin=cni" in out
    assert "kubelet command line must show: --container-runtime=remote" in out
    # The CLI never writes: the local files are unchanged.
    assert (tmp_path / "flags.env").read_bytes() == DOCKERSHIM


def test_plan_json(tmp_path: Path) -> None:
    code, out, _ = run("plan", "--kubelet-version", "1.24.17", "-o", "json", *files(tmp_path))
    assert code == 0
    data = json.loads(out)
    assert data["state"] == "stale-dockershim-config"
    assert [c["path"] for c in data["changes"]] == [
        "/var/lib/kubelet/kubeadm-flags.env",
        "/etc/systemd/system/cri-docker.service.d/10-shimshift.conf",
    ]
    assert data["expected_kubelet_args"] == {
        "--container-runtime-endpoint": "unix:///var/run/cri-dockerd.sock"
    }
    assert data["cri_dockerd"]["settings"]["--pod-infra-container-image"] == "registry.k8s.io/pause:3.6"
    assert "/var/lib/kubelet/kubeadm-flags.env" in data["diffs"]


def test_plan_noop(tmp_path: Path) -> None:
    code, out, _ = run("plan", "--kubelet-version", "1.23.17", *files(tmp_path, flags=MIGRATED))
    assert code == 0
    assert "nothing to do: the kubelet already uses cri-dockerd" in out
    assert "---" not in out


def test_plan_refused(tmp_path: Path) -> None:
    code, out, err = run(
        "plan",
        "--kubelet-version",
        "1.23.17",
        *files(tmp_path, flags=DOCKERSHIM + b'KUBELET_KUBEADM_ARGS="--a=b"\n'),
    )
    assert code == 2
    assert out == ""
    assert "/var/lib/kubelet/kubeadm-flags.env:2" in err and "twice" in err


def test_plan_unknown_version(tmp_path: Path) -> None:
    code, _, err = run("plan", "--kubelet-version", "1.38.0", *files(tmp_path))
    assert code == 2 and "1.38.0" in err


def test_missing_config_names_the_option(tmp_path: Path) -> None:
    (tmp_path / "flags.env").write_bytes(DOCKERSHIM)
    code, _, err = run("plan", "--kubelet-version", "1.23.17", "--flags-file", str(tmp_path / "flags.env"))
    assert code == 2 and "--config-file" in err


def test_check_findings(tmp_path: Path) -> None:
    code, out, _ = run("check", "--target-version", "1.24", *files(tmp_path))
    assert code == 1
    assert "/var/lib/kubelet/kubeadm-flags.env:1: error: kubelet 1.24 exits on --network-plugin" in out
    code, out, _ = run("check", "--target-version", "1.24", "-o", "json", *files(tmp_path))
    assert code == 1
    assert {f["flag"] for f in json.loads(out)} >= {"--network-plugin", "--container-runtime-endpoint"}


def cri_dockerd_dropin(tmp_path: Path, *extra: str) -> list[str]:
    words = " ".join(["/usr/bin/cri-dockerd --container-runtime-endpoint fd:// --network-plugin=cni", *extra])
    (tmp_path / "dropin").write_text(f"[Service]\nExecStart=\nExecStart={words}\n")
    return ["--cri-dockerd-dropin-file", str(tmp_path / "dropin")]


def test_check_clean(tmp_path: Path) -> None:
    loopback = cri_dockerd_dropin(tmp_path, "--streaming-bind-addr=127.0.0.1")
    code, out, _ = run("check", "--target-version", "1.23", *files(tmp_path, flags=MIGRATED), *loopback)
    assert code == 0 and out.startswith("no finding")


def test_check_flags_a_streaming_server_on_every_address(tmp_path: Path) -> None:
    # A node already on cri-dockerd whose streaming server is not bound to loopback.
    for extra in ((), ("--streaming-bind-addr", "0.0.0.0:10010"), ("--streaming-bind-addr=[::]",)):
        dropin = cri_dockerd_dropin(tmp_path, *extra)
        code, out, _ = run("check", "--target-version", "1.23", *files(tmp_path, flags=MIGRATED), *dropin)
        assert code == 1, extra
        assert "/etc/systemd/system/cri-docker.service.d/10-shimshift.conf: warning: cri-dockerd's streaming" in out
        assert "add --streaming-bind-addr=127.0.0.1" in out
    code, out, _ = run("check", "--target-version", "1.23", "-o", "json", *files(tmp_path, flags=MIGRATED))
    assert code == 1 and [f["flag"] for f in json.loads(out)] == ["--streaming-bind-addr"]
    assert "packaged command line" in json.loads(out)[0]["message"]


def test_rpm_dropin_places_extra_args_in_sysconfig(tmp_path: Path) -> None:
    (tmp_path / "dropin.conf").write_bytes(RPM_DROPIN)
    args = files(tmp_path, extra=b"KUBELET_EXTRA_ARGS=--cni-bin-dir=/usr/lib/cni\n")
    code, out, _ = run(
        "plan",
        "--kubelet-version",
        "1.22.0",
        "--dropin-file",
        str(tmp_path / "dropin.conf"),
        "-o",
        "json",
        *args,
    )
    assert code == 0
    data = json.loads(out)
    assert "/etc/sysconfig/kubelet" in [c["path"] for c in data["changes"]]
    assert data["cri_dockerd"]["settings"]["--cni-bin-dir"] == "/usr/lib/cni"


def test_dropin_reading_no_extra_file(tmp_path: Path) -> None:
    (tmp_path / "dropin.conf").write_bytes(
        b"[Service]\nEnvironmentFile=-/var/lib/kubelet/kubeadm-flags.env\n"
        b"ExecStart=\nExecStart=/usr/bin/kubelet $KUBELET_KUBEADM_ARGS\n"
    )
    code, _, err = run(
        "plan",
        "--kubelet-version",
        "1.22.0",
        "--dropin-file",
        str(tmp_path / "dropin.conf"),
        *files(tmp_path),
    )
    assert code == 2 and "--extra-args-file" in err


def snapshot(directory: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def test_nul_bytes_are_refused_and_nothing_is_written(tmp_path: Path) -> None:
    # the NULs used to be copied into the planned cri-dockerd unit.
    args = files(tmp_path, flags=b'KUBELET_KUBEADM_ARGS="--network-plugin=cni\0\0"\n')
    before = snapshot(tmp_path)
    for command in ("plan", "check"):
        version = ["--kubelet-version", "1.23.17"] if command == "plan" else ["--target-version", "1.24"]
        code, out, err = run(command, *version, *args)
        assert (code, out) == (2, "")
        assert f"{tmp_path / 'flags.env'}:1: control character NUL (0x00) at column 43" in err
        assert "cat -A" in err
    assert snapshot(tmp_path) == before


def test_an_endless_file_is_refused_without_reading_it_whole(tmp_path: Path) -> None:
    # /dev/zero passes click's "exists, not a directory" check; read whole, it would never end.
    args = files(tmp_path)
    args[args.index("--extra-args-file") + 1] = "/dev/zero"
    code, out, err = run("plan", "--kubelet-version", "1.23.17", *args)
    assert (code, out) == (2, "")
    assert "refused: /dev/zero: the file is larger than 1 MiB" in err
