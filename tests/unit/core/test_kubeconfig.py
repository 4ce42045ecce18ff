"""The kubeconfig resolver, with kubectl's loading rules.

Matrix: which files are searched (--kubeconfig, $KUBECONFIG list with empties and repeats, empty
$KUBECONFIG, default); the merge (first file wins per named entry and for current-context, whole entries,
empty values do not win); relative references made absolute per file (exec command only with a "/");
load_kubeconfig on real files: a missing list item skipped, only missing items refused with no fallback to
~/.kube/config, a missing --kubeconfig refused, YAML errors with file:line, a context naming an undefined
cluster, in-cluster only as the last resort; and the cluster identity's CA read from the merged file.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
import yaml

from shimshift.adapters.kube.kubeconfig import load_kubeconfig
from shimshift.core.errors import Refusal
from shimshift.core.kubeconfig import absolutize, kubeconfig_search, merge

HOME = Path("/home/op")
Config = dict[str, Any]


def test_an_explicit_file_wins_and_must_exist() -> None:
    search = kubeconfig_search(Path("/x/admin.conf"), "/a:/b", HOME)
    assert search.files == (Path("/x/admin.conf"),) and search.required


def test_the_env_list_drops_empty_items_and_repeats_in_order() -> None:
    search = kubeconfig_search(None, "/a::/b:/a:", HOME)
    assert search.files == (Path("/a"), Path("/b")) and not search.required
    assert search.origin == "$KUBECONFIG"


@pytest.mark.parametrize("value", [None, "", ":"])
def test_unset_or_empty_env_means_the_default_file(value: str | None) -> None:
    search = kubeconfig_search(None, value, HOME)
    assert search.files == (HOME / ".kube" / "config",) and search.origin == "default"


def _config(cluster: str, server: str, *, user: str = "u", token: str = "t", current: str | None = None) -> Config:
    config: Config = {
        "clusters": [{"name": cluster, "cluster": {"server": server}}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": cluster, "context": {"cluster": cluster, "user": user}}],
    }
    if current is not None:
        config["current-context"] = current
    return config


def test_first_file_wins_per_entry_and_for_current_context() -> None:
    first = _config("a", "https://a:6443", token="first", current="")
    second = _config("a", "https://other:6443", token="second", current="b")
    second["clusters"].append({"name": "b", "cluster": {"server": "https://b:6443"}})
    second["contexts"].append({"name": "b", "context": {"cluster": "b", "user": "u"}})
    merged = merge([first, second])
    assert merged["clusters"] == [
        {"name": "a", "cluster": {"server": "https://a:6443"}},
        {"name": "b", "cluster": {"server": "https://b:6443"}},
    ]
    assert merged["users"] == [{"name": "u", "user": {"token": "first"}}]  # whole entry, nothing mixed in
    assert merged["current-context"] == "b"  # the first file's is empty: an empty value never wins


def test_relative_references_are_resolved_against_their_own_file() -> None:
    document: Config = {
        "clusters": [{"name": "c", "cluster": {"server": "s", "certificate-authority": "pki/ca.crt"}}],
        "users": [
            {
                "name": "u",
                "user": {
                    "client-certificate": "/abs/cert",
                    "client-key": "key.pem",
                    "tokenFile": "tok",
                    "exec": {"command": "bin/plugin", "apiVersion": "v"},
                },
            },
            {"name": "v", "user": {"exec": {"command": "gke-gcloud-auth-plugin", "apiVersion": "v"}}},
        ],
    }
    fixed = absolutize(document, Path("/etc/kube/config"))
    assert fixed["clusters"][0]["cluster"]["certificate-authority"] == "/etc/kube/pki/ca.crt"
    user = fixed["users"][0]["user"]
    assert (user["client-certificate"], user["client-key"], user["tokenFile"]) == (
        "/abs/cert",
        "/etc/kube/key.pem",
        "/etc/kube/tok",
    )
    assert user["exec"]["command"] == "/etc/kube/bin/plugin"
    assert fixed["users"][1]["user"]["exec"]["command"] == "gke-gcloud-auth-plugin"  # looked up on PATH
    assert document["clusters"][0]["cluster"]["certificate-authority"] == "pki/ca.crt"  # input untouched


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"clusters": {"name": "c"}}, "`clusters` is not a list"),
        ({"users": [{"user": {}}]}, "`users` entry 1 has no name"),
        ({"contexts": [{"name": "x", "context": "c"}]}, "`context` is not a mapping"),
    ],
)
def test_a_malformed_document_is_refused_naming_the_file(document: Config, message: str) -> None:
    with pytest.raises(Refusal, match=message) as refused:
        absolutize(document, Path("/k/config"))
    assert refused.value.file == "/k/config"


def _write(path: Path, config: Config) -> Path:
    path.write_text(yaml.safe_dump(config))
    return path


def test_a_list_is_merged_and_a_missing_item_skipped(tmp_path: Path) -> None:
    clusters = _write(tmp_path / "clusters", {**_config("a", "https://a:6443"), "users": [], "current-context": "a"})
    users = _write(tmp_path / "users", {"users": [{"name": "u", "user": {"token": "secret"}}]})
    env = {"KUBECONFIG": f"{tmp_path / 'missing'}:{clusters}:{users}"}
    config = load_kubeconfig(environ=env, home=tmp_path / "home")
    assert config.server == "https://a:6443"
    assert config.single.user is not None and config.single.user.token == "secret"
    assert config.source == f"{clusters}:{users}"


def test_only_missing_files_never_fall_back_to_the_home_config(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / ".kube").mkdir(parents=True)
    _write(home / ".kube" / "config", {**_config("home", "https://home:6443"), "current-context": "home"})
    env = {"KUBECONFIG": f"{tmp_path / 'a'}:{tmp_path / 'b'}", "KUBERNETES_SERVICE_HOST": "10.96.0.1"}
    with pytest.raises(Refusal, match=r"\$KUBECONFIG names no file that exists") as refused:
        load_kubeconfig(environ=env, home=home)
    assert str(tmp_path / "a") in str(refused.value)
    assert load_kubeconfig(environ={}, home=home).server == "https://home:6443"  # unset: the home file


def test_a_missing_explicit_file_and_bad_yaml_are_refused_with_file_and_line(tmp_path: Path) -> None:
    with pytest.raises(Refusal, match="kubeconfig file not found"):
        load_kubeconfig(tmp_path / "nope", environ={}, home=tmp_path)
    bad = tmp_path / "bad"
    bad.write_text("clusters:\n- name: a\n  cluster: [\n")
    with pytest.raises(Refusal) as refused:
        load_kubeconfig(bad, environ={}, home=tmp_path)
    assert refused.value.file == str(bad) and refused.value.line == 4


def test_contexts_that_cannot_be_used_are_refused(tmp_path: Path) -> None:
    config = _config("a", "https://a:6443", current="a")
    config["contexts"].append({"name": "broken", "context": {"cluster": "gone", "user": "u"}})
    path = _write(tmp_path / "config", config)
    with pytest.raises(Refusal, match="'nope' not found"):
        load_kubeconfig(path, context="nope", environ={}, home=tmp_path)
    with pytest.raises(Refusal, match="not defined"):
        load_kubeconfig(path, context="broken", environ={}, home=tmp_path)
    del config["current-context"]
    with pytest.raises(Refusal, match="current"):
        load_kubeconfig(_write(path, config), environ={}, home=tmp_path)


def test_no_file_at_all_outside_a_pod_is_refused(tmp_path: Path) -> None:
    with pytest.raises(Refusal, match="no kubeconfig"):
        load_kubeconfig(environ={}, home=tmp_path)


def test_the_ca_is_read_from_a_relative_reference_or_inline(tmp_path: Path) -> None:
    (tmp_path / "pki").mkdir()
    (tmp_path / "pki" / "ca.crt").write_bytes(b"PEM")
    config = _config("a", "https://a:6443", current="a")
    config["clusters"][0]["cluster"]["certificate-authority"] = "pki/ca.crt"
    path = _write(tmp_path / "config", config)
    assert load_kubeconfig(path, environ={}, home=tmp_path).ca_certificate() == b"PEM"
    config["clusters"][0]["cluster"] = {"server": "s", "certificate-authority-data": base64.b64encode(b"X").decode()}
    assert load_kubeconfig(_write(path, config), environ={}, home=tmp_path).ca_certificate() == b"X"


def test_the_context_clusters_proxy_url_is_kept(tmp_path: Path) -> None:
    config = _config("a", "https://a:6443", current="b")
    config["clusters"].append({"name": "b", "cluster": {"server": "https://b:6443", "proxy-url": "http://p:3128"}})
    config["contexts"].append({"name": "b", "context": {"cluster": "b", "user": "u"}})
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump(config))
    assert load_kubeconfig(path).proxy_url == "http://p:3128"
    assert load_kubeconfig(path, context="a").proxy_url is None
