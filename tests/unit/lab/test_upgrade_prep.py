"""prepare_upgrade's decisions without a lab: which images a node must load, read from a real archive.

Matrix: image IDs read from a ``docker save`` manifest in Docker 20.10's layout and in the OCI layout of
Docker 25+, untagged entries ignored; an archive without a manifest and a file that is no tar refused
with the path; ``docker images`` output parsed with ``<none>`` tags dropped; what to load when nothing,
everything, or one image rebuilt under the same tag is there; ``lab prepare-upgrade`` with no lab is a
one-line error before anything is built. (The node side runs against the lab: tests/e2e/upgrade/.)
"""

from __future__ import annotations

import io
import json
import tarfile
from typing import TYPE_CHECKING

import pytest
from click.testing import CliRunner

from shimshift.cli.main import main
from shimshift.lab.docker import LabError
from shimshift.lab.upgrade_prep import images_to_load, parse_image_list, saved_image_ids

if TYPE_CHECKING:
    from pathlib import Path

A = "a" * 64
B = "b" * 64


def archive(path: Path, manifest: object | None) -> Path:
    with tarfile.open(path, "w") as tar:
        members = [("layer.tar", b"x")]
        if manifest is not None:
            members.append(("manifest.json", json.dumps(manifest).encode()))
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_ids_from_docker_20_layout(tmp_path: Path) -> None:
    tar = archive(
        tmp_path / "i.tar",
        [
            {"Config": f"{A}.json", "RepoTags": ["registry.k8s.io/pause:3.7"], "Layers": []},
            {"Config": f"{B}.json", "RepoTags": ["registry.k8s.io/etcd:3.5.6-0", "x/etcd:1"], "Layers": []},
            {"Config": f"{B}.json", "RepoTags": None, "Layers": []},
        ],
    )
    assert saved_image_ids(tar) == {
        "registry.k8s.io/pause:3.7": f"sha256:{A}",
        "registry.k8s.io/etcd:3.5.6-0": f"sha256:{B}",
        "x/etcd:1": f"sha256:{B}",
    }


def test_ids_from_oci_layout(tmp_path: Path) -> None:
    tar = archive(tmp_path / "i.tar", [{"Config": f"blobs/sha256/{A}", "RepoTags": ["r/kube-apiserver:v1.24.17"]}])
    assert saved_image_ids(tar) == {"r/kube-apiserver:v1.24.17": f"sha256:{A}"}


def test_archive_without_manifest_is_refused_with_its_path(tmp_path: Path) -> None:
    tar = archive(tmp_path / "i.tar", None)
    with pytest.raises(LabError, match=str(tar)):
        saved_image_ids(tar)
    junk = tmp_path / "junk.tar"
    junk.write_text("not a tar")
    with pytest.raises(LabError, match=str(junk)):
        saved_image_ids(junk)


def test_docker_images_listing_is_parsed_without_untagged() -> None:
    out = f"registry.k8s.io/pause:3.7 sha256:{A}\n<none>:<none> sha256:{B}\nr/etcd:3.5.6-0 sha256:{B}\n\n"
    assert parse_image_list(out) == {"registry.k8s.io/pause:3.7": f"sha256:{A}", "r/etcd:3.5.6-0": f"sha256:{B}"}


def test_images_to_load() -> None:
    wanted = {"p:3.7": f"sha256:{A}", "e:3.5.6-0": f"sha256:{B}"}
    assert images_to_load(wanted, {}) == ["e:3.5.6-0", "p:3.7"]
    assert images_to_load(wanted, {**wanted, "other:1": "sha256:c"}) == []
    # The 1.23.17 lab's etcd has the same tag as the upgrade's, as another image: it must be loaded.
    assert images_to_load(wanted, {"p:3.7": f"sha256:{A}", "e:3.5.6-0": f"sha256:{A}"}) == ["e:3.5.6-0"]


def test_cli_without_a_lab_fails_in_one_line_before_building(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    result = CliRunner().invoke(
        main,
        ["--state-dir", str(tmp_path / "state"), "lab", "prepare-upgrade", "--dir", str(tmp_path / "lab"),
         "--cache-dir", str(cache)],
    )
    assert result.exit_code == 1, result.output
    assert result.output.strip() == f"Error: no lab in {tmp_path / 'lab'}; run `shimshift lab up` first"
    assert not cache.exists()
