"""The migration plan for one node.

Matrix: every kubelet minor 1.20-1.37 x {kubeadm dockershim node (stale config from 1.24), node already on
cri-dockerd}; every source file (kubeadm-flags.env, /etc/default/kubelet, /etc/sysconfig/kubelet, the
drop-in under /etc or /usr/lib, config.yaml, instance-config.yaml, the cri-docker unit and our drop-in);
both flag forms; refusals (each names file and line, and yields no plan).
"""

from __future__ import annotations

import pytest

from shimshift.core.errors import Refusal
from shimshift.core.node_files import (
    CRI_DOCKERD_DROPIN,
    CRI_DOCKERD_UNIT_USR,
    DEFAULT_KUBELET,
    INSTANCE_CONFIG,
    KUBEADM_FLAGS_ENV,
    KUBELET_CONFIG,
    KUBELET_DROPIN_ETC,
    KUBELET_DROPIN_USR,
    NODE_FILES,
    SYSCONFIG_KUBELET,
    NodeView,
)
from shimshift.core.node_plan import NodePlan, RuntimeState, apply_changes
from shimshift.core.node_plan_record import plan_data
from shimshift.core.node_planner import plan_node
from shimshift.core.versions import (
    DOCKERSHIM_ONLY_FLAGS,
    FlagStatus,
    flag_status,
)
from shimshift.core.wellknown import CRI_DOCKERD_ENDPOINT

from .nodes import DEB_DROPIN, MINORS, cri_dockerd_node, dockershim_node, pause_image, rpm, version


def plan(files: dict[str, bytes | None], minor: int = 23, **kw: object) -> NodePlan:
    args: dict[str, object] = {"cri_dockerd_version": "0.3.16", "docker_cgroup_driver": "systemd"}
    args.update(kw)
    return plan_node(kubelet_version=version(minor), files=files, **args)  # type: ignore[arg-type]


def kubelet_accepts(files: dict[str, bytes | None], minor: int) -> NodeView:
    """The files as kubelet 1.<minor> would take them: no flag it rejects, none only dockershim read."""
    view = NodeView.load(files)
    for f in view.flags:
        assert flag_status(f.name, minor) is not FlagStatus.REMOVED, f"{f.name} at {f.where} breaks 1.{minor}"
        assert f.name not in DOCKERSHIM_ONLY_FLAGS, f"{f.name} left at {f.where}"
    return view


def cri_dockerd_words(files: dict[str, bytes | None]) -> str:
    data = files[CRI_DOCKERD_DROPIN]
    assert data is not None
    return data.decode().splitlines()[-1]


# ------------------------------------------------------------------------------------------------
# Every minor


@pytest.mark.parametrize("minor", MINORS)
def test_dockershim_node_migrates_on_every_minor(minor: int) -> None:
    files = dockershim_node(minor)
    p = plan(files, minor)
    assert p.state is (RuntimeState.DOCKERSHIM if minor <= 23 else RuntimeState.STALE_DOCKERSHIM_CONFIG)
    assert p.noop_reason is None
    after = apply_changes(files, p.changes)
    view = kubelet_accepts(after, minor)

    # What verify will look for is really on the command line / in the config.
    for flag, value in p.expected_kubelet_args.items():
        assert view.value(flag) == value
    for forbidden in p.forbidden_kubelet_args:
        assert view.last(forbidden) is None
    if minor <= 23:
        # --container-runtime=remote is mandatory before 1.24, or dockershim takes the socket over.
        assert p.expected_kubelet_args == {
            "--container-runtime": "remote",
            "--container-runtime-endpoint": CRI_DOCKERD_ENDPOINT,
        }
    elif minor <= 26:
        assert p.expected_kubelet_args == {"--container-runtime-endpoint": CRI_DOCKERD_ENDPOINT}
        assert view.last("--container-runtime") is None
    else:
        # 1.27+: no endpoint flag was there, so the config file carries it (#112136).
        assert p.expected_kubelet_args == {}
        assert p.expected_kubelet_config == {"containerRuntimeEndpoint": CRI_DOCKERD_ENDPOINT}
        assert view.config is not None
        assert view.config.data["containerRuntimeEndpoint"] == CRI_DOCKERD_ENDPOINT
        assert "--container-runtime" in p.forbidden_kubelet_args
    # The pause image stays on the kubelet while it accepts it, and always moves to cri-dockerd.
    pause = pause_image(min(minor, 23))
    assert (view.value("--pod-infra-container-image") == pause) is (minor < 35)
    line = cri_dockerd_words(after)
    assert f"--pod-infra-container-image={pause}" in line
    assert "--network-plugin=cni" in line
    assert line.startswith("ExecStart=/usr/bin/cri-dockerd --container-runtime-endpoint fd:// ")
    assert ("--cri-dockerd-root-directory=/var/lib/dockershim" in line) is (minor <= 23)
    assert p.cri_dockerd_config_changed
    assert p.cri_dockerd_settings["--network-plugin"] == "cni"

    # Idempotent, and the rollback restores every byte.
    again = plan(after, minor)
    assert again.changes == ()
    assert again.state is RuntimeState.CRI_DOCKERD
    assert again.noop_reason is not None and "already uses cri-dockerd" in again.noop_reason
    assert apply_changes(after, p.rollback_changes) == files
    assert apply_changes(after, p.rollback().changes) == files


@pytest.mark.parametrize("minor", MINORS)
def test_node_set_up_by_kubeadm_on_cri_dockerd_is_a_noop(minor: int) -> None:
    files = cri_dockerd_node(minor)
    p = plan(files, minor, cri_socket_annotation=CRI_DOCKERD_ENDPOINT)
    assert p.changes == () and p.rollback_changes == ()
    assert p.state is RuntimeState.CRI_DOCKERD
    assert p.noop_reason is not None
    assert (p.cri_socket_before, p.cri_socket_after) == (CRI_DOCKERD_ENDPOINT, CRI_DOCKERD_ENDPOINT)
    assert not p.cri_dockerd_config_changed
    kubelet_accepts(files, minor)


@pytest.mark.parametrize("minor", [m for m in MINORS if m >= 35])
def test_migrated_node_upgraded_to_135_loses_only_the_pause_flag(minor: int) -> None:
    # --pod-infra-container-image left in the files makes kubelet 1.35 exit.
    files = cri_dockerd_node(26)
    p = plan(files, minor)
    assert p.state is RuntimeState.CRI_DOCKERD
    assert p.noop_reason is None
    assert [c.path for c in p.changes] == [KUBEADM_FLAGS_ENV]
    assert (
        p.changes[0].after
        == f'KUBELET_KUBEADM_ARGS="--container-runtime-endpoint={CRI_DOCKERD_ENDPOINT}"\n'.encode()
    )
    assert not p.cri_dockerd_config_changed


def test_the_123_lab_node_exact_bytes() -> None:
    files = dockershim_node(23)
    p = plan(files, 23, cri_socket_annotation="/var/run/dockershim.sock", node="shimshift-lab-worker")
    assert [c.path for c in p.changes] == [KUBEADM_FLAGS_ENV, CRI_DOCKERD_DROPIN]
    assert p.changes[0].after == (
        b'KUBELET_KUBEADM_ARGS="--pod-infra-container-image=registry.k8s.io/pause:3.6 '
        b'--container-runtime=remote --container-runtime-endpoint=unix:///var/run/cri-dockerd.sock"\n'
    )
    assert (p.cri_socket_before, p.cri_socket_after) == ("/var/run/dockershim.sock", CRI_DOCKERD_ENDPOINT)
    undo = p.rollback()
    assert (undo.cri_socket_before, undo.cri_socket_after) == (CRI_DOCKERD_ENDPOINT, "/var/run/dockershim.sock")
    assert p.rollback().forbidden_kubelet_args == ("--container-runtime", "--container-runtime-endpoint")
    assert p.rollback().rollback() == p
    assert p.cri_dockerd_args == (
        "/usr/bin/cri-dockerd",
        "--container-runtime-endpoint",
        "fd://",
        "--pod-infra-container-image=registry.k8s.io/pause:3.6",
        "--network-plugin=cni",
        "--cri-dockerd-root-directory=/var/lib/dockershim",
        "--streaming-bind-addr=127.0.0.1",
    )
    assert p.node == "shimshift-lab-worker"
    assert plan_data(p)["cri_dockerd"]["changed"] is True


# ------------------------------------------------------------------------------------------------
# Every source file


def test_flags_in_extra_args_move_and_the_rest_stays() -> None:
    files = dockershim_node(
        22,
        extra=b'# local\nKUBELET_EXTRA_ARGS="--cni-bin-dir /usr/lib/cni --node-ip=10.0.0.5 --network-plugin-mtu=1450"\n',  # noqa: E501
    )
    p = plan(files, 22)
    after = apply_changes(files, p.changes)
    assert after[DEFAULT_KUBELET] == b'# local\nKUBELET_EXTRA_ARGS="--node-ip=10.0.0.5"\n'
    line = cri_dockerd_words(after)
    assert "--cni-bin-dir=/usr/lib/cni" in line and "--network-plugin-mtu=1450" in line
    kubelet_accepts(after, 24)


def test_rpm_layout_edits_sysconfig() -> None:
    files = rpm(dockershim_node(21, extra=b"KUBELET_EXTRA_ARGS=--docker-endpoint=unix:///run/docker.sock\n"))
    p = plan(files, 21)
    after = apply_changes(files, p.changes)
    assert after[SYSCONFIG_KUBELET] == b"KUBELET_EXTRA_ARGS=\n"
    assert after[DEFAULT_KUBELET] is None
    assert "--docker-endpoint=unix:///run/docker.sock" in cri_dockerd_words(after)


def test_etc_dropin_wins_over_usr_lib() -> None:
    files = dockershim_node(23)
    files[KUBELET_DROPIN_ETC] = DEB_DROPIN.replace(b"/etc/default/kubelet", b"/etc/sysconfig/kubelet")
    files[SYSCONFIG_KUBELET] = b"KUBELET_EXTRA_ARGS=--cni-conf-dir=/etc/cni/custom\n"
    p = plan(files, 23)
    assert any("systemd uses /etc/systemd" in w.message and w.code == "two-kubelet-dropins" for w in p.warnings)
    assert {c.path for c in p.changes} == {KUBEADM_FLAGS_ENV, SYSCONFIG_KUBELET, CRI_DOCKERD_DROPIN}
    assert p.cri_dockerd_settings["--cni-conf-dir"] == "/etc/cni/custom"


def test_kubeadm_flags_env_absent_is_created() -> None:
    files = dockershim_node(23, extra=b'KUBELET_EXTRA_ARGS="--network-plugin=cni"\n')
    files[KUBEADM_FLAGS_ENV] = None
    p = plan(files, 23)
    created = next(c for c in p.changes if c.path == KUBEADM_FLAGS_ENV)
    assert created.before is None
    assert created.after == (
        b'KUBELET_KUBEADM_ARGS="--container-runtime=remote --container-runtime-endpoint=unix:///var/run/cri-dockerd.sock"\n'
    )
    assert apply_changes(apply_changes(files, p.changes), p.rollback_changes) == files


def test_endpoint_flag_on_127_is_rewritten_in_place_and_config_left_alone() -> None:
    files = dockershim_node(27)
    files[KUBEADM_FLAGS_ENV] = (
        b'KUBELET_KUBEADM_ARGS="--container-runtime-endpoint unix:///var/run/dockershim.sock --network-plugin=cni"\n'
    )
    p = plan(files, 27)
    after = apply_changes(files, p.changes)
    assert (
        after[KUBEADM_FLAGS_ENV]
        == b'KUBELET_KUBEADM_ARGS="--container-runtime-endpoint unix:///var/run/cri-dockerd.sock"\n'
    )
    assert KUBELET_CONFIG not in {c.path for c in p.changes}
    assert p.expected_kubelet_args == {"--container-runtime-endpoint": CRI_DOCKERD_ENDPOINT}


@pytest.mark.parametrize("minor", [32, 34, 37])
def test_instance_config_follows(minor: int) -> None:
    files = dockershim_node(minor)
    files[INSTANCE_CONFIG] = (
        b"apiVersion: kubelet.config.k8s.io/v1beta1\r\nkind: KubeletConfiguration\r\n"
        b"containerRuntimeEndpoint: unix:///var/run/dockershim.sock # set by kubeadm upgrade\r\n"
    )
    files[KUBELET_CONFIG] = (
        files[KUBELET_CONFIG] or b""
    ) + b"containerRuntimeEndpoint: unix:///var/run/dockershim.sock\n"
    p = plan(files, minor)
    assert p.instance_config is not None
    assert p.instance_config.after == (
        b"apiVersion: kubelet.config.k8s.io/v1beta1\r\nkind: KubeletConfiguration\r\n"
        b"containerRuntimeEndpoint: unix:///var/run/cri-dockerd.sock # set by kubeadm upgrade\r\n"
    )
    after = apply_changes(files, p.changes)
    assert (after[KUBELET_CONFIG] or b"").endswith(
        b"containerRuntimeEndpoint: unix:///var/run/cri-dockerd.sock\n"
    )
    assert plan(after, minor).changes == ()


def test_cri_dockerd_unit_command_line_is_kept() -> None:
    files = dockershim_node(23)
    files[CRI_DOCKERD_UNIT_USR] = (
        b"[Unit]\nDescription=CRI Interface for Docker\n[Service]\nType=notify\n"
        b"ExecStart=/usr/local/bin/cri-dockerd --container-runtime-endpoint fd:// --network-plugin= --log-level debug\n"
    )
    p = plan(files, 23)
    assert p.cri_dockerd_args[:5] == (
        "/usr/local/bin/cri-dockerd",
        "--container-runtime-endpoint",
        "fd://",
        "--log-level",
        "debug",
    )
    assert "--network-plugin=cni" in p.cri_dockerd_args
    assert "--network-plugin=" not in p.cri_dockerd_args


@pytest.mark.parametrize(
    ("written", "words"),
    [
        ("--cri-dockerd-root-directory=/data/cri", ("--cri-dockerd-root-directory=/data/cri",)),
        # an operator's streaming address stays, whatever it is.
        ("--streaming-bind-addr 10.1.2.3:10010", ("--streaming-bind-addr", "10.1.2.3:10010")),
    ],
)
def test_operator_setting_on_cri_dockerd_is_respected(written: str, words: tuple[str, ...]) -> None:
    files = dockershim_node(23)
    files[CRI_DOCKERD_UNIT_USR] = (
        f"[Service]\nExecStart=/usr/bin/cri-dockerd --container-runtime-endpoint fd:// {written}\n".encode()
    )
    p = plan(files, 23)
    assert p.cri_dockerd_args[3 : 3 + len(words)] == words
    flag = words[0].split("=")[0]
    assert flag not in p.cri_dockerd_settings
    assert [arg for arg in p.cri_dockerd_args if arg.startswith(flag)] == [words[0]]


@pytest.mark.parametrize("minor", [21, 23, 24, 27])
@pytest.mark.parametrize("cri_dockerd_version", ["0.3.0", "0.3.16", "0.3.17", None])
def test_streaming_server_is_bound_to_loopback(minor: int, cri_dockerd_version: str | None) -> None:
    # dockershim's streaming server listened on localhost:0; cri-dockerd's on every address.
    files = dockershim_node(minor)
    p = plan(files, minor, cri_dockerd_version=cri_dockerd_version)
    assert p.cri_dockerd_settings["--streaming-bind-addr"] == "127.0.0.1"
    assert p.cri_dockerd_args[-1] == "--streaming-bind-addr=127.0.0.1"
    dropin = apply_changes(files, p.changes)[CRI_DOCKERD_DROPIN]
    assert dropin is not None and b"--streaming-bind-addr=127.0.0.1" in dropin
    assert b"localhost only" in dropin  # the drop-in's comment says why


def test_cri_dockerd_without_the_streaming_flag_is_warned_about() -> None:
    p = plan(dockershim_node(23), 23, cri_dockerd_version="0.2.5")
    assert "--streaming-bind-addr" not in p.cri_dockerd_settings
    assert not any("streaming" in arg for arg in p.cri_dockerd_args)
    assert any(
        "--streaming-bind-addr (v0.2.6+)" in w.message and w.code == "streaming-server-unbound" for w in p.warnings
    )


def test_existing_dropin_of_ours_is_replaced_and_restored() -> None:
    files = dockershim_node(23)
    files[CRI_DOCKERD_DROPIN] = b"[Service]\nExecStart=\nExecStart=/usr/bin/cri-dockerd --old\n"
    p = plan(files, 23)
    change = next(c for c in p.changes if c.path == CRI_DOCKERD_DROPIN)
    assert change.before == files[CRI_DOCKERD_DROPIN]
    assert apply_changes(apply_changes(files, p.changes), p.rollback_changes) == files


def test_no_network_plugin_keeps_dockershims_none_and_checkpoints_optional() -> None:
    files = dockershim_node(20)
    files[KUBEADM_FLAGS_ENV] = b'KUBELET_KUBEADM_ARGS="--experimental-dockershim-root-directory=/srv/ds"\n'
    p = plan(files, 20, keep_dockershim_checkpoints=False)
    assert p.cri_dockerd_settings == {
        "--network-plugin": "",
        "--cri-dockerd-root-directory": "/srv/ds",
        "--streaming-bind-addr": "127.0.0.1",
    }
    assert any("no --network-plugin" in w.message and w.code == "network-plugin-none" for w in p.warnings)
    assert any("--pod-infra-container-image" in w.message and w.code == "pause-image-default" for w in p.warnings)
    p2 = plan(dockershim_node(20), 20, keep_dockershim_checkpoints=False)
    assert "--cri-dockerd-root-directory" not in p2.cri_dockerd_settings


def test_unknown_versions_and_driver_only_warn() -> None:
    p = plan(dockershim_node(23), 23, cri_dockerd_version=None, docker_cgroup_driver=None)
    assert any("version unknown" in w.message and w.code == "cri-dockerd-version-unknown" for w in p.warnings)
    assert any("cgroup driver unknown" in w.message and w.code == "cgroup-driver-unknown" for w in p.warnings)


def test_cgroup_mismatch_is_allowed_when_the_kubelet_asks_cri_dockerd() -> None:
    # KubeletCgroupDriverFromCRI on by default from 1.31, RuntimeConfig in cri-dockerd 0.3.17+.
    p = plan(dockershim_node(31), 31, cri_dockerd_version="0.3.17", docker_cgroup_driver="cgroupfs")
    assert any("KubeletCgroupDriverFromCRI" in w.message and w.code == "cgroup-driver-from-cri" for w in p.warnings)


def test_value_with_quotes_is_escaped_in_the_unit() -> None:
    files = dockershim_node(23)
    files[KUBEADM_FLAGS_ENV] = (
        b'KUBELET_KUBEADM_ARGS="--network-plugin=cni --cni-conf-dir=/etc/cni/50%\\"x"\n'
    )
    p = plan(files, 23)
    assert p.cri_dockerd_settings["--cni-conf-dir"] == '/etc/cni/50%"x'
    assert b'"--cni-conf-dir=/etc/cni/50%%\\"x"' in (
        apply_changes(files, p.changes)[CRI_DOCKERD_DROPIN] or b""
    )


# ------------------------------------------------------------------------------------------------
# Refusals: file and line named, no plan produced


def refused(files: dict[str, bytes | None], minor: int = 23, **kw: object) -> Refusal:
    with pytest.raises(Refusal) as info:
        plan(files, minor, node="n1", **kw)
    assert info.value.node == "n1"
    assert info.value.hint
    return info.value


@pytest.mark.parametrize("text", ["1.19.16", "1.38.0", "v2.0.0", "garbage", "", "1.x"])
def test_unknown_kubelet_version(text: str) -> None:
    with pytest.raises(Refusal, match="kubelet version"):
        plan_node(
            kubelet_version=text,
            files=dockershim_node(23),
            cri_dockerd_version=None,
            docker_cgroup_driver=None,
        )


def test_two_kubeadm_args_lines() -> None:
    files = dockershim_node(23)
    files[KUBEADM_FLAGS_ENV] = b'KUBELET_KUBEADM_ARGS="--network-plugin=cni"\nKUBELET_KUBEADM_ARGS="--a=b"\n'
    r = refused(files)
    assert (r.file, r.line) == (KUBEADM_FLAGS_ENV, 2)
    assert "twice" in r.what


def test_unbalanced_quote() -> None:
    files = dockershim_node(23, extra=b'\nKUBELET_EXTRA_ARGS="--fail-swap-on=false\n')
    r = refused(files)
    assert (r.file, r.line) == (DEFAULT_KUBELET, 2)
    assert "unbalanced" in r.what


def test_flag_twice_with_different_values() -> None:
    files = dockershim_node(23)
    files[KUBEADM_FLAGS_ENV] = (
        b'KUBELET_KUBEADM_ARGS="--network-plugin=cni --node-ip=1.1.1.1 --node-ip=2.2.2.2"\n'
    )
    r = refused(files)
    assert (r.file, r.line) == (KUBEADM_FLAGS_ENV, 1)
    assert "--node-ip" in r.what


def test_runtime_flag_disagreeing_across_files() -> None:
    files = dockershim_node(23, extra=b"KUBELET_EXTRA_ARGS=--network-plugin=kubenet\n")
    r = refused(files)
    assert (r.file, r.line) == (DEFAULT_KUBELET, 1)


def test_same_flag_same_value_twice_is_fine() -> None:
    files = dockershim_node(23, extra=b"KUBELET_EXTRA_ARGS=--network-plugin=cni\n")
    after = apply_changes(files, plan(files).changes)
    assert after[DEFAULT_KUBELET] == b"KUBELET_EXTRA_ARGS=\n"


def test_no_kubeadm_dropin() -> None:
    files = dockershim_node(23)
    files[KUBELET_DROPIN_USR] = None
    r = refused(files)
    assert r.file == KUBELET_DROPIN_USR and "kubeadm" in r.what


def test_dropin_without_kubeadm_args() -> None:
    files = dockershim_node(23)
    files[KUBELET_DROPIN_USR] = b"[Service]\nExecStart=\nExecStart=/usr/bin/kubelet $KUBELET_EXTRA_ARGS\n"
    r = refused(files)
    assert (r.file, r.line) == (KUBELET_DROPIN_USR, 3)


def test_dropin_reading_an_unknown_env_file() -> None:
    files = dockershim_node(23)
    files[KUBELET_DROPIN_USR] = (files[KUBELET_DROPIN_USR] or b"").replace(
        b"EnvironmentFile=-/etc/default/kubelet", b"EnvironmentFile=/etc/kubelet.env"
    )
    r = refused(files)
    assert r.file == KUBELET_DROPIN_USR and r.line == 8


def test_runtime_flag_written_in_the_dropin() -> None:
    files = dockershim_node(23)
    files[KUBELET_DROPIN_USR] = (files[KUBELET_DROPIN_USR] or b"").replace(
        b"$KUBELET_EXTRA_ARGS", b"$KUBELET_EXTRA_ARGS --network-plugin=cni"
    )
    r = refused(files)
    assert r.file == KUBELET_DROPIN_USR and "does not edit" in r.what


def test_node_on_containerd() -> None:
    files = cri_dockerd_node(26)
    files[KUBEADM_FLAGS_ENV] = (
        b'KUBELET_KUBEADM_ARGS="--container-runtime-endpoint=unix:///run/containerd/containerd.sock"\n'
    )
    r = refused(files, 26)
    assert "containerd" in r.what
    assert (r.file, r.line) == (KUBEADM_FLAGS_ENV, 1)


def test_127_with_nothing_dockershim_left_defaults_to_containerd_and_is_refused() -> None:
    files = cri_dockerd_node(27)
    files[KUBEADM_FLAGS_ENV] = b'KUBELET_KUBEADM_ARGS=""\n'
    r = refused(files, 27)
    assert "default" in r.what


def test_cgroup_driver_mismatch() -> None:
    r = refused(dockershim_node(23), docker_cgroup_driver="cgroupfs")
    assert (r.file, r.line, r.code) == (KUBELET_CONFIG, 7, "cgroup-driver-mismatch")


@pytest.mark.parametrize(("minor", "cri"), [(26, "0.2.6"), (22, "0.3.22"), (22, "0.4.2")])
def test_cri_api_mismatch(minor: int, cri: str) -> None:
    r = refused(dockershim_node(minor), minor, cri_dockerd_version=cri)
    assert "CRI API" in r.what and r.code == "cri-api-skew"


@pytest.mark.parametrize(
    ("kw", "match"),
    [({"cri_dockerd_version": "latest"}, "cri-dockerd"), ({"docker_cgroup_driver": "cgroupv2"}, "cgroup")],
)
def test_bad_parameters(kw: dict[str, str], match: str) -> None:
    with pytest.raises(Refusal, match=match):
        plan(dockershim_node(23), 23, **kw)


def test_unexpected_path() -> None:
    files = dockershim_node(23)
    files["/etc/passwd"] = b""
    refused(files)


def test_container_runtime_with_a_bad_value() -> None:
    files = dockershim_node(23)
    files[KUBEADM_FLAGS_ENV] = b'KUBELET_KUBEADM_ARGS="--container-runtime=rkt"\n'
    r = refused(files)
    assert (r.file, r.line) == (KUBEADM_FLAGS_ENV, 1)


def test_node_files_are_the_documented_paths() -> None:
    assert NODE_FILES[0] == "/var/lib/kubelet/kubeadm-flags.env"
    assert {
        DEFAULT_KUBELET,
        SYSCONFIG_KUBELET,
        KUBELET_DROPIN_ETC,
        KUBELET_DROPIN_USR,
        KUBELET_CONFIG,
        INSTANCE_CONFIG,
        CRI_DOCKERD_DROPIN,
    } <= set(NODE_FILES)
    assert len(set(NODE_FILES)) == len(NODE_FILES)


def test_hand_migrated_node_with_leftovers_is_a_noop_with_a_warning() -> None:
    files = cri_dockerd_node(23)
    files[DEFAULT_KUBELET] = b"KUBELET_EXTRA_ARGS=--network-plugin=cni\n"
    p = plan(files, 23)
    assert p.changes == () and p.noop_reason is not None
    assert any(
        "--network-plugin" in w.message and "1.24" in w.message and w.code == "dockershim-flags-left"
        for w in p.warnings
    )
    # verify must not fail on the leftover that the plan leaves alone
    assert "--network-plugin" not in p.forbidden_kubelet_args
    assert plan(files, 24).forbidden_kubelet_args[:1] == ("--network-plugin",)
