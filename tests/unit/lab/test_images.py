"""ensure_artifacts and ensure_upgrade_artifacts: which builds run, what they report and return, how they fail.

The build scripts are replaced by small real scripts (in a temporary ``lab/`` folder) that record
their calls and make the files the real ones make, so the orchestration is exercised for real
without a 30-minute Go build. Covered: scripts missing (refused, nothing written); cold run (every
step once, in order, progress per build); warm run (only the cheap checks, no progress); a failing
build (refusal with the end of its log and the log's path; earlier results kept); the real
``lab/`` folder has every script ensure_artifacts calls. For the upgrade's artifacts: cold run
(the v1.24.17 binaries in one build, crictl, then the images without the workload image), after ``lab up``
(the kubelet it built is kept, only the rest is built, and ``lab up`` stays warm), warm run (one
check), changed image inputs (rebuilt), a failing build and missing scripts (refused). A lab at another
release: built once beside the others (crictl in its node image from 1.24, none below), warm run only
checks, ``cached_releases`` says which are built, an unknown release refused before any build.
"""

from __future__ import annotations

import os
import stat
from typing import TYPE_CHECKING

import pytest

from shimshift.core.errors import Refusal
from shimshift.lab import images
from shimshift.lab.images import (
    LabArtifacts,
    LabBinaries,
    UpgradeArtifacts,
    cached_releases,
    ensure_artifacts,
    ensure_binaries,
    ensure_release_artifacts,
    ensure_upgrade_artifacts,
    lab_scripts_dir,
    tail_lines,
)

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

STUBS = {
    "build/build-kubernetes.sh": """
echo "build-kubernetes $* cache=$SHIMSHIFT_CACHE" >> "$CALLS"
[ -n "${FAIL_K8S:-}" ] && { for i in $(seq 40); do echo "compile line $i"; done; echo "link: boom"; exit 2; }
version=$1 out=$2; shift 2
comps=("$@")
[ ${#comps[@]} -gt 0 ] || comps=(kubeadm kubelet kubectl kube-apiserver kube-controller-manager
                                 kube-scheduler kube-proxy)
mkdir -p "$out"
for c in "${comps[@]}"; do
  [ -x "$out/$c" ] && continue  # like the real script: only what is missing
  echo "$c $version" >> "$CALLS.built"
  printf '#!/bin/sh\\necho %s\\n' "$version" > "$out/$c"; chmod +x "$out/$c"
done
""",
    "build/build-cri-dockerd.sh": """
echo "build-cri-dockerd $*" >> "$CALLS"
mkdir -p "$2/systemd"; printf '#!/bin/sh\\n' > "$2/cri-dockerd"; chmod +x "$2/cri-dockerd"
""",
    "build/build-addons.sh": """
echo "build-addons $*" >> "$CALLS"
cache=$1
mkdir -p "$cache/bin/etcd-$2" "$cache/bin/coredns-$3" "$cache/bin/flannel-$4"
for f in "etcd-$2/etcd" "etcd-$2/etcdctl" "coredns-$3/coredns" "flannel-$4/flanneld" "flannel-$4/flannel"; do
  printf '#!/bin/sh\n' > "$cache/bin/$f"; chmod +x "$cache/bin/$f"
done
""",
    "build/build-crictl.sh": """
echo "build-crictl $*" >> "$CALLS"
mkdir -p "$2"; printf '#!/bin/sh\\n' > "$2/crictl"; chmod +x "$2/crictl"
""",
    "image/build-node-image.sh": """
if [ "$1" = --check ]; then echo "check-node" >> "$CALLS"; [ -e "$5/node.stamp" ] && exit 0; exit 3; fi
echo "build-node-image $*" >> "$CALLS"; touch "$4/node.stamp"
""",
    "image/build-inner-images.sh": """
check=false workload=true
while [ $# -gt 0 ]; do
  case "$1" in --check) check=true; shift;; --no-workload) workload=false; shift;; *) break;; esac
done
version=$("$1/kubeadm" version)
[ $# -eq 5 ] || { echo "BIN ETCD COREDNS FLANNEL OUT wanted, got $*" >&2; exit 2; }
for d in "$2" "$3"; do [ -d "$d" ] || { echo "no $d" >&2; exit 2; }; done
out=$5
if $check; then echo "check-inner $version workload=$workload" >> "$CALLS"; [ -e "$out" ] && exit 0; exit 3; fi
echo "build-inner-images $* $version workload=$workload" >> "$CALLS"; mkdir -p "$(dirname "$out")"; : > "$out"
echo "registry.k8s.io/kube-apiserver:$version" > "$out.images"
if $workload; then echo shimshift.local/busybox:1.0 >> "$out.images"; fi
""",
}


@pytest.fixture
def stub_lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    lab = tmp_path / "lab"
    for name, body in STUBS.items():
        script = lab / name
        script.parent.mkdir(parents=True, exist_ok=True)
        script.write_text("#!/usr/bin/env bash\nset -u\n" + body)
        script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("CALLS", str(tmp_path / "calls"))
    return lab


def calls(tmp_path: Path, suffix: str = "") -> list[str]:
    path = tmp_path / f"calls{suffix}"
    return path.read_text().splitlines() if path.exists() else []


@pytest.mark.parametrize("ensure", [ensure_artifacts, ensure_upgrade_artifacts])
def test_missing_scripts_are_refused_naming_the_path_and_nothing_is_written(
    tmp_path: Path, ensure: Callable[..., object]
) -> None:
    cache = tmp_path / "cache"
    with pytest.raises(Refusal) as refused:
        ensure(cache_dir=cache, lab_dir=tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in str(refused.value)
    assert not cache.exists()


def test_cold_run_builds_each_artifact_once_in_order_and_reports_it(stub_lab: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    heard: list[str] = []
    found = ensure_artifacts(cache_dir=cache, progress=heard.append, lab_dir=stub_lab)

    steps = [line.split()[0] for line in calls(tmp_path)]
    assert steps == [
        "build-kubernetes",
        "build-cri-dockerd",
        "build-kubernetes",
        "build-addons",
        "check-node",
        "build-node-image",
        "check-inner",
        "build-inner-images",
    ]
    assert calls(tmp_path)[2].split()[1:] == [
        "v1.24.17",
        str(cache / "bin" / "v1.24.17"),
        "kubelet",
        f"cache={cache}",
    ]
    assert calls(tmp_path)[3].split()[1:] == [str(cache), "v3.5.6", "v1.8.6", "v0.28.0"]
    assert len(heard) == 12
    assert [h.split()[0] for h in heard] == ["building", "built"] * 6
    assert found == LabArtifacts(
        node_image="shimshift/node:v1.23.17",
        inner_images_tar=cache / "images" / "lab-images-v1.23.17.tar",
        inner_images=("registry.k8s.io/kube-apiserver:v1.23.17", "shimshift.local/busybox:1.0"),
        workload_image="shimshift.local/busybox:1.0",
        kubelet_124=cache / "bin" / "v1.24.17" / "kubelet",
        cri_dockerd=cache / "bin" / "cri-dockerd-v0.4.6" / "cri-dockerd",
        bin_dir_123=cache / "bin" / "v1.23.17",
        versions=images.LabVersions(),
    )
    assert (cache / "logs" / "node-image.log").exists()


def test_warm_run_only_checks_and_reports_nothing(stub_lab: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = ensure_artifacts(cache_dir=cache, lab_dir=stub_lab)
    (tmp_path / "calls").unlink()
    heard: list[str] = []
    second = ensure_artifacts(cache_dir=cache, progress=heard.append, lab_dir=stub_lab)
    assert second == first
    assert calls(tmp_path) == ["check-node", "check-inner v1.23.17 workload=true"]
    assert heard == []


def test_binaries_alone_build_no_image_and_skip_the_next_kubelet_when_asked(stub_lab: Path, tmp_path: Path) -> None:
    """What the test session ensures before kube-apiserver or cri-dockerd tests (the cold path)."""
    cache = tmp_path / "cache"
    heard: list[str] = []
    found = ensure_binaries(cache_dir=cache, progress=heard.append, lab_dir=stub_lab, kubelet_next=False)
    assert [line.split()[:2] for line in calls(tmp_path)] == [
        ["build-kubernetes", "v1.23.17"],
        ["build-cri-dockerd", "v0.4.6"],
    ]
    assert [h.split()[0] for h in heard] == ["building", "built"] * 2
    assert found == LabBinaries(
        bin_dir_123=cache / "bin" / "v1.23.17",
        cri_dockerd=cache / "bin" / "cri-dockerd-v0.4.6" / "cri-dockerd",
        kubelet_124=cache / "bin" / "v1.24.17" / "kubelet",
    )
    (tmp_path / "calls").unlink()
    assert ensure_binaries(cache_dir=cache, lab_dir=stub_lab, kubelet_next=False) == found
    assert calls(tmp_path) == []  # warm: only file checks


def test_a_failing_build_is_refused_with_its_log_tail_and_keeps_nothing_half_done(
    stub_lab: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    monkeypatch.setenv("FAIL_K8S", "1")
    heard: list[str] = []
    with pytest.raises(Refusal) as refused:
        ensure_artifacts(cache_dir=cache, progress=heard.append, lab_dir=stub_lab)
    message = str(refused.value)
    assert "exit status 2" in message
    assert "link: boom" in message
    assert "compile line 1\n" not in message  # only the end of the log
    assert str(cache / "logs" / "kubernetes-v1.23.17.log") in message
    assert (cache / "logs" / "kubernetes-v1.23.17.log").read_text().count("compile line") == 40
    assert heard == ["building Kubernetes v1.23.17 binaries (first build: about 20 minutes)"]
    assert [line.split()[0] for line in calls(tmp_path)] == ["build-kubernetes"]


def test_a_broken_check_is_refused_not_taken_for_stale(stub_lab: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    node = stub_lab / "image" / "build-node-image.sh"
    node.write_text("#!/usr/bin/env bash\necho 'sha256sum: kubelet: No such file' >&2\nexit 1\n")
    with pytest.raises(Refusal) as refused:
        ensure_artifacts(cache_dir=cache, lab_dir=stub_lab)
    assert "No such file" in str(refused.value)
    assert not any(line.startswith("build-node-image") for line in calls(tmp_path))


def test_a_missing_script_is_refused_naming_it(stub_lab: Path, tmp_path: Path) -> None:
    script = stub_lab / "image" / "build-inner-images.sh"
    script.unlink()
    with pytest.raises(Refusal) as refused:
        ensure_artifacts(cache_dir=tmp_path / "cache", lab_dir=stub_lab)
    assert str(script) in str(refused.value)


def test_the_real_lab_folder_has_every_script_ensure_artifacts_runs() -> None:
    lab = lab_scripts_dir()
    for name in STUBS:
        assert os.access(lab / name, os.X_OK), lab / name


def test_tail_lines_keeps_the_last_non_empty_lines() -> None:
    assert tail_lines("a\n\nb\nc\n\n", 2) == ["b", "c"]
    assert tail_lines("", 3) == []
    assert tail_lines("only", 5) == ["only"]


COMPONENTS_124 = [f"{name} v1.24.17" for name in images.KUBERNETES_COMPONENTS]


def test_upgrade_cold_run_builds_the_binaries_then_the_images_without_the_workload(
    stub_lab: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    heard: list[str] = []
    found = ensure_upgrade_artifacts(cache_dir=cache, progress=heard.append, lab_dir=stub_lab)

    bin_dir = cache / "bin" / "v1.24.17"
    tar = cache / "images" / "upgrade-images-v1.24.17.tar"
    addons = " ".join(str(cache / "bin" / name) for name in ("etcd-v3.5.6", "coredns-v1.8.6", "flannel-v0.28.0"))
    assert calls(tmp_path) == [
        f"build-kubernetes v1.24.17 {bin_dir} kubeadm kubelet kubectl kube-apiserver "
        f"kube-controller-manager kube-scheduler kube-proxy cache={cache}",
        f"build-crictl v1.34.0 {cache / 'bin' / 'crictl-v1.34.0'}",
        f"build-addons {cache} v3.5.6 v1.8.6 v0.28.0",
        "check-inner v1.24.17 workload=false",
        f"build-inner-images {bin_dir} {addons} {tar} v1.24.17 workload=false",
    ]
    assert sorted(calls(tmp_path, ".built")) == sorted(COMPONENTS_124)
    assert [line.rsplit(" in ", 1)[0] if line.startswith("built ") else line for line in heard] == [
        "building Kubernetes v1.24.17 control plane, kubeadm and kubectl (first build: about 20 minutes)",
        "built Kubernetes v1.24.17 control plane, kubeadm and kubectl",
        "building crictl v1.34.0 (first build: about 3 minutes)",
        "built crictl v1.34.0",
        "building etcd v3.5.6, CoreDNS v1.8.6 and flannel v0.28.0 (first build: about 10 minutes)",
        "built etcd v3.5.6, CoreDNS v1.8.6 and flannel v0.28.0",
        "building images for the upgrade to v1.24.17 (upgrade-images-v1.24.17.tar) (first build: under a minute)",
        "built images for the upgrade to v1.24.17 (upgrade-images-v1.24.17.tar)",
    ]
    assert found == UpgradeArtifacts(
        version="v1.24.17",
        bin_dir=bin_dir,
        images_tar=tar,
        images=("registry.k8s.io/kube-apiserver:v1.24.17",),
        crictl=cache / "bin" / "crictl-v1.34.0" / "crictl",
    )
    assert (cache / "logs" / "upgrade-control-plane-v1.24.17.log").exists()


def test_upgrade_after_lab_up_keeps_its_kubelet_and_lab_up_stays_warm(stub_lab: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    lab = ensure_artifacts(cache_dir=cache, lab_dir=stub_lab)
    assert "kubelet v1.24.17" in calls(tmp_path, ".built")
    (tmp_path / "calls").unlink()
    (tmp_path / "calls.built").unlink()

    upgrade = ensure_upgrade_artifacts(cache_dir=cache, lab_dir=stub_lab)
    assert sorted(calls(tmp_path, ".built")) == sorted(c for c in COMPONENTS_124 if c != "kubelet v1.24.17")
    assert upgrade.bin_dir / "kubelet" == lab.kubelet_124
    assert upgrade.images_tar != lab.inner_images_tar
    (tmp_path / "calls").unlink()

    assert ensure_artifacts(cache_dir=cache, lab_dir=stub_lab) == lab
    assert calls(tmp_path) == ["check-node", "check-inner v1.23.17 workload=true"]


def test_upgrade_warm_run_only_checks_the_images_and_reports_nothing(stub_lab: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = ensure_upgrade_artifacts(cache_dir=cache, lab_dir=stub_lab)
    (tmp_path / "calls").unlink()
    heard: list[str] = []
    assert ensure_upgrade_artifacts(cache_dir=cache, progress=heard.append, lab_dir=stub_lab) == first
    assert calls(tmp_path) == ["check-inner v1.24.17 workload=false"]
    assert heard == []


def test_upgrade_images_are_rebuilt_when_their_check_says_stale(stub_lab: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    found = ensure_upgrade_artifacts(cache_dir=cache, lab_dir=stub_lab)
    found.images_tar.unlink()  # the stub's check: stale when the tarball is gone
    (tmp_path / "calls").unlink()
    ensure_upgrade_artifacts(cache_dir=cache, lab_dir=stub_lab)
    assert [line.split()[0] for line in calls(tmp_path)] == ["check-inner", "build-inner-images"]


def test_upgrade_failing_build_is_refused_with_its_log(
    stub_lab: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    monkeypatch.setenv("FAIL_K8S", "1")
    with pytest.raises(Refusal) as refused:
        ensure_upgrade_artifacts(cache_dir=cache, lab_dir=stub_lab)
    assert "link: boom" in str(refused.value)
    assert str(cache / "logs" / "upgrade-control-plane-v1.24.17.log") in str(refused.value)
    assert [line.split()[0] for line in calls(tmp_path)] == ["build-kubernetes"]
    assert not (cache / "images").exists()


def test_a_release_is_built_once_beside_the_others_with_crictl_from_1_24(stub_lab: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    found = ensure_release_artifacts("1.27.16", cache_dir=cache, lab_dir=stub_lab)

    bin_dir = cache / "bin" / "v1.27.16"
    crictl = cache / "bin" / "crictl-v1.34.0" / "crictl"
    tar = cache / "images" / "lab-images-v1.27.16.tar"
    addons = " ".join(str(cache / "bin" / name) for name in ("etcd-v3.5.12", "coredns-v1.10.1", "flannel-v0.28.0"))
    assert calls(tmp_path) == [
        f"build-kubernetes v1.27.16 {bin_dir} kubeadm kubelet kubectl kube-apiserver "
        f"kube-controller-manager kube-scheduler kube-proxy cache={cache}",
        f"build-cri-dockerd v0.4.6 {cache / 'bin' / 'cri-dockerd-v0.4.6'}",
        f"build-crictl v1.34.0 {crictl.parent}",
        f"build-addons {cache} v3.5.12 v1.10.1 v0.28.0",
        "check-node",
        f"build-node-image shimshift/node:v1.27.16 {bin_dir} {cache / 'bin' / 'cri-dockerd-v0.4.6'} {cache} {crictl}",
        "check-inner v1.27.16 workload=true",
        f"build-inner-images {bin_dir} {addons} {tar} v1.27.16 workload=true",
    ]
    assert found.node_image == "shimshift/node:v1.27.16"
    assert found.crictl == crictl
    assert found.inner_images == ("registry.k8s.io/kube-apiserver:v1.27.16", "shimshift.local/busybox:1.0")

    before = len(calls(tmp_path))
    assert ensure_release_artifacts("v1.27.16", cache_dir=cache, lab_dir=stub_lab) == found
    assert calls(tmp_path)[before:] == ["check-node", "check-inner v1.27.16 workload=true"]  # warm: checks only

    built = {c.release.version: c.built for c in cached_releases(cache)}
    assert built["v1.27.16"] is True
    assert built["v1.30.14"] is False
    assert built["v1.23.17"] is False


def test_a_dockershim_release_gets_no_crictl(stub_lab: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    found = ensure_release_artifacts("1.22.17", cache_dir=cache, lab_dir=stub_lab)
    assert found.crictl is None
    assert not any(line.startswith("build-crictl") for line in calls(tmp_path))
    node = next(line for line in calls(tmp_path) if line.startswith("build-node-image"))
    assert node.split()[1:] == [
        "shimshift/node:v1.22.17",
        str(cache / "bin" / "v1.22.17"),
        str(cache / "bin" / "cri-dockerd-v0.4.6"),
        str(cache),
    ]


def test_an_unknown_release_is_refused_before_anything_is_built(stub_lab: Path, tmp_path: Path) -> None:
    with pytest.raises(Refusal, match="does not know"):
        ensure_release_artifacts("1.28.1", cache_dir=tmp_path / "cache", lab_dir=stub_lab)
    assert calls(tmp_path) == []
