"""The checked-in CRI stubs: right package and methods, version floors, and in step with the proto.

Matrix:
- the descriptor's package is runtime.v1 and RuntimeService has every RPC the client calls;
- the generated code's version stamps (grpcio GRPC_GENERATED_VERSION, protobuf gencode version) are
  not newer than the floors of the grpcio / protobuf ranges in pyproject.toml, and the protobuf range stays
  in the gencode's major (else the stubs refuse to import: ``ValidateProtobufRuntimeVersion`` in api_pb2.py,
  the version check at the top of api_pb2_grpc.py);
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

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from shimshift.adapters.cri.generated import api_pb2, api_pb2_grpc

ROOT = Path(__file__).resolve().parents[4]
GENERATED = ROOT / "src/shimshift/adapters/cri/generated"
PROTO_DIR = ROOT / "src/shimshift/adapters/cri/proto"


def _ranges() -> dict[str, SpecifierSet]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    requirements = (Requirement(text) for text in project["project"]["dependencies"])
    return {requirement.name: requirement.specifier for requirement in requirements}


def _floor(name: str) -> tuple[int, ...]:
    """The lowest version the wheel accepts: its range's >= bound."""
    (floor,) = (Version(spec.version).release for spec in _ranges()[name] if spec.operator == ">=")
    return floor


def test_package_is_runtime_v1() -> None:
    assert api_pb2.DESCRIPTOR.package == "runtime.v1"


def test_runtime_service_has_the_rpcs_we_call() -> None:
    service = api_pb2.DESCRIPTOR.services_by_name["RuntimeService"]
    assert service.full_name == "runtime.v1.RuntimeService"
    methods = {m.name for m in service.methods}
    assert {"Version", "Status", "ListPodSandbox", "ListContainers"} <= methods
    assert hasattr(api_pb2_grpc, "RuntimeServiceStub")


def test_grpc_generated_version_is_not_newer_than_the_grpcio_floor() -> None:
    generated = tuple(int(p) for p in api_pb2_grpc.GRPC_GENERATED_VERSION.split("."))
    assert generated <= _floor("grpcio"), (generated, _floor("grpcio"))


def test_protobuf_range_is_the_gencode_major_from_the_gencode_version_up() -> None:
    text = (GENERATED / "api_pb2.py").read_text()
    match = re.search(
        r"ValidateProtobufRuntimeVersion\(\s*_runtime_version\.Domain\.PUBLIC,\s*(\d+),\s*(\d+),\s*(\d+),",
        text,
    )
    assert match, "no protobuf version guard found in api_pb2.py"
    gencode = tuple(int(g) for g in match.groups())
    assert gencode <= _floor("protobuf"), (gencode, _floor("protobuf"))
    assert f"{gencode[0] + 1}.0.0" not in _ranges()["protobuf"], _ranges()["protobuf"]


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
