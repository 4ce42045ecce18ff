"""The checked-in CRI stubs: right package and methods, version floors, and in step with the proto.

Matrix:
- the descriptor's package is runtime.v1 and RuntimeService has every RPC the client calls;
- the generated code's version stamps (grpcio GRPC_GENERATED_VERSION, protobuf gencode version) are
  not newer than the grpcio / protobuf pins in pyproject.toml (else import fails at runtime,
  ../shared/reference/python-dependencies.md §3.1);
- regenerating from the vendored proto gives byte-identical files (nobody edited the stubs by hand);
- the vendored proto is the documented upstream file (hash in proto/README.md).
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
import tomllib
from pathlib import Path

from shimshift.adapters.cri.generated import api_pb2, api_pb2_grpc

ROOT = Path(__file__).resolve().parents[3]
GENERATED = ROOT / "src/shimshift/adapters/cri/generated"
PROTO_DIR = ROOT / "src/shimshift/adapters/cri/proto"


def _pins() -> dict[str, tuple[int, ...]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    pins = {}
    for requirement in project["project"]["dependencies"]:
        name, _, version = requirement.partition("==")
        if version:
            pins[name.strip()] = tuple(int(part) for part in version.split("."))
    return pins


def test_package_is_runtime_v1() -> None:
    assert api_pb2.DESCRIPTOR.package == "runtime.v1"


def test_runtime_service_has_the_rpcs_we_call() -> None:
    service = api_pb2.DESCRIPTOR.services_by_name["RuntimeService"]
    assert service.full_name == "runtime.v1.RuntimeService"
    methods = {m.name for m in service.methods}
    assert {"Version", "Status", "ListPodSandbox", "ListContainers"} <= methods
    assert hasattr(api_pb2_grpc, "RuntimeServiceStub")


def test_grpc_generated_version_is_not_newer_than_the_grpcio_pin() -> None:
    generated = tuple(int(p) for p in api_pb2_grpc.GRPC_GENERATED_VERSION.split("."))
    assert generated <= _pins()["grpcio"], (generated, _pins()["grpcio"])


def test_protobuf_gencode_version_is_not_newer_than_the_protobuf_pin() -> None:
    text = (GENERATED / "api_pb2.py").read_text()
    match = re.search(
        r"ValidateProtobufRuntimeVersion\(\s*_runtime_version\.Domain\.PUBLIC,\s*(\d+),\s*(\d+),\s*(\d+),",
        text,
    )
    assert match, "no protobuf version guard found in api_pb2.py"
    gencode = tuple(int(g) for g in match.groups())
    assert gencode <= _pins()["protobuf"], (gencode, _pins()["protobuf"])


def test_stubs_match_the_vendored_proto() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts/gen_cri.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_vendored_proto_is_the_documented_upstream_file() -> None:
    digest = hashlib.sha256((PROTO_DIR / "runtime/v1/api.proto").read_bytes()).hexdigest()
    assert digest in (PROTO_DIR / "README.md").read_text()
