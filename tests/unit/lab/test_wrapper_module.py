"""wrapper-module.sh: the go.mod that builds k8s.io/kubernetes from the published staging modules.

Matrix: a staging module served at the release's own version is taken as is; one refused at that version
is taken at the newest earlier patch the proxy serves; one served at no patch of the minor (the proxy
serves no k8s.io/sample-cli-plugin v0.25.x) becomes an empty local module named as the module, so Go finds
its go.mod and nothing is compiled from it. The script runs for real; only `go` is a stand-in on PATH that
answers from a list of served module versions, as the proxy does (403 for the rest).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from shimshift.lab.images import lab_scripts_dir

SCRIPT = lab_scripts_dir() / "build" / "wrapper-module.sh"

KUBERNETES_GO_MOD = """module k8s.io/kubernetes

go 1.19

require (
\tk8s.io/api v0.0.0
\tk8s.io/sample-cli-plugin v0.0.0
\tk8s.io/sample-controller v0.0.0
)

replace (
\tk8s.io/api => ./staging/src/k8s.io/api
\tk8s.io/sample-cli-plugin => ./staging/src/k8s.io/sample-cli-plugin
\tk8s.io/sample-controller => ./staging/src/k8s.io/sample-controller
)
"""

# A `go` that knows only `go mod download [-json] MODULE@VERSION`, answering from $SERVED like the proxy.
FAKE_GO = """#!/usr/bin/env bash
[ "$1 $2" = "mod download" ] || exit 2
if [ "$3" = -json ]; then printf '{\\n\\t"GoMod": "%s",\\n}\\n' "$GOMOD_FILE"; exit 0; fi
grep -qxF "$3" "$SERVED"
"""


def _run(tmp_path: Path, served: list[str]) -> tuple[str, str]:
    tools = tmp_path / "tools"
    tools.mkdir()
    go = tools / "go"
    go.write_text(FAKE_GO)
    go.chmod(0o755)
    gomod = tmp_path / "kubernetes.mod"
    gomod.write_text(KUBERNETES_GO_MOD)
    (tmp_path / "served").write_text("".join(f"{line}\n" for line in served))
    env = {**os.environ, "PATH": f"{tools}:{os.environ['PATH']}", "GOMOD_FILE": str(gomod)}
    env["SERVED"] = str(tmp_path / "served")
    wrapper = tmp_path / "wrapper"
    result = subprocess.run(
        ["bash", str(SCRIPT), "k8s.io/kubernetes", "v1.25.16", str(wrapper)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return (wrapper / "go.mod").read_text(), result.stderr


def test_each_staging_module_is_the_served_one_nearest_the_release(tmp_path: Path) -> None:
    gomod, said = _run(tmp_path, ["k8s.io/api@v0.25.16", "k8s.io/sample-controller@v0.25.6"])
    assert "\tk8s.io/api => k8s.io/api v0.25.16\n" in gomod
    assert "\tk8s.io/sample-controller => k8s.io/sample-controller v0.25.6\n" in gomod
    assert "k8s.io/sample-controller v0.25.16 is not served; using v0.25.6" in said


def test_a_staging_module_served_at_no_patch_becomes_an_empty_local_module(tmp_path: Path) -> None:
    gomod, said = _run(tmp_path, ["k8s.io/api@v0.25.16", "k8s.io/sample-controller@v0.25.16"])
    assert "\tk8s.io/sample-cli-plugin => ./unserved/k8s.io/sample-cli-plugin\n" in gomod
    stand_in = tmp_path / "wrapper" / "unserved" / "k8s.io" / "sample-cli-plugin"
    assert (stand_in / "go.mod").read_text() == "module k8s.io/sample-cli-plugin\n"
    assert sorted(p.name for p in stand_in.iterdir()) == ["go.mod"]  # no package: nothing can be built from it
    assert "serves no k8s.io/sample-cli-plugin v0.25.x; an empty module stands in" in said
    assert "\tk8s.io/api => k8s.io/api v0.25.16\n" in gomod
