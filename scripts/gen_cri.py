#!/usr/bin/env python3
"""Regenerate the checked-in CRI gRPC stubs from the vendored api.proto.

    .venv/bin/python scripts/gen_cri.py                 # regenerate src/shimshift/adapters/cri/generated/
    .venv/bin/python scripts/gen_cri.py --check         # fail if the checked-in stubs are stale
    .venv/bin/python scripts/gen_cri.py --wire-compat OLD_API_PROTO

Why checked-in stubs, and why this layout: docs/dependencies.md.
grpcio-tools cannot emit relative imports, so the proto is copied into a scratch tree at the path of the
package that will hold the output (``shimshift/adapters/cri/generated/api.proto``) and compiled with
``-I <scratch>``: the generated ``api_pb2_grpc.py`` then imports ``shimshift.adapters.cri.generated.api_pb2``.

The vendored proto is k8s.io/cri-api v0.34.13 ``pkg/apis/runtime/v1/api.proto``, unmodified: the first
cri-api release line without the gogo-protobuf import (v0.23 to v0.33 import gogo.proto). The messages and
enums shimshift uses (Version, Status, ListPodSandbox, ListContainers and what they contain) keep every
field number and type of v0.23.17, the CRI of the lab's kubelet; newer fields are only additions, which
older runtimes leave unset. ``--wire-compat`` re-checks that against another api.proto (strip its gogo
lines first, e.g. ``sed -e '/gogo/d' -e 's/\\[(gogoproto[^]]*\\]//g'``).

grpcio-tools and mypy-protobuf are dev dependencies (pyproject); the generated code stamps the versions
that produced it, and tests/unit/adapters/cri/test_stubs.py keeps the runtime pins at or above them.
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENDORED = ROOT / "src/shimshift/adapters/cri/proto/runtime/v1/api.proto"
PACKAGE_PATH = Path("shimshift/adapters/cri/generated")
OUT = ROOT / "src" / PACKAGE_PATH
# No typed stub for api_pb2_grpc: mypy-protobuf's grpc stubs lean on grpc type stubs that are not a
# dependency (types-grpcio), and against an untyped grpc their ignores trip mypy --strict. The client
# only needs the typed messages (api_pb2.pyi).
OUTPUTS = ("api_pb2.py", "api_pb2.pyi", "api_pb2_grpc.py")

# Messages and enums the CRI client reads or sends; their wire shape must not change.
USED = (
    "VersionRequest",
    "VersionResponse",
    "StatusRequest",
    "StatusResponse",
    "RuntimeStatus",
    "RuntimeCondition",
    "ListPodSandboxRequest",
    "PodSandboxFilter",
    "PodSandboxStateValue",
    "ListPodSandboxResponse",
    "PodSandbox",
    "PodSandboxMetadata",
    "ListContainersRequest",
    "ContainerFilter",
    "ContainerStateValue",
    "ListContainersResponse",
    "Container",
    "ContainerMetadata",
    "ImageSpec",
    "PodSandboxState",
    "ContainerState",
)


def generate(into: Path) -> None:
    """Compile the vendored proto into ``into`` (a tree rooted like ``src``)."""
    scratch = Path(tempfile.mkdtemp(prefix="shimshift-gen-cri-"))
    try:
        proto = scratch / PACKAGE_PATH / "api.proto"
        proto.parent.mkdir(parents=True)
        shutil.copyfile(VENDORED, proto)
        bindir = Path(sys.executable).parent
        (into / PACKAGE_PATH).mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "grpc_tools.protoc",
                f"-I{scratch}",
                f"--python_out={into}",
                f"--grpc_python_out={into}",
                f"--plugin=protoc-gen-mypy={bindir / 'protoc-gen-mypy'}",
                f"--mypy_out={into}",
                str(PACKAGE_PATH / "api.proto"),
            ],
            check=True,
            cwd=scratch,
        )
    finally:
        shutil.rmtree(scratch)


def _fields(proto: Path) -> dict[str, dict[int, tuple[str, int, int, str]]]:
    from google.protobuf import descriptor_pb2

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "set.pb"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "grpc_tools.protoc",
                f"-I{proto.parent}",
                f"--descriptor_set_out={out}",
                str(proto),
            ],
            check=True,
        )
        files = descriptor_pb2.FileDescriptorSet()
        files.ParseFromString(out.read_bytes())
    found: dict[str, dict[int, tuple[str, int, int, str]]] = {}
    for message in files.file[0].message_type:
        found[message.name] = {f.number: (f.name, f.type, f.label, f.type_name) for f in message.field}
    for enum in files.file[0].enum_type:
        found[enum.name] = {v.number: (v.name, 0, 0, "") for v in enum.value}
    return found


def wire_compat(old_proto: Path) -> list[str]:
    """Differences in the used messages between ``old_proto`` and the vendored proto (empty: compatible)."""
    old, new = _fields(old_proto), _fields(VENDORED)
    problems = []
    for name in USED:
        for number, shape in old[name].items():
            if new.get(name, {}).get(number) != shape:
                problems.append(f"{name} field {number}: {shape} became {new.get(name, {}).get(number)}")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--check", action="store_true", help="fail if the checked-in stubs are stale")
    parser.add_argument("--wire-compat", type=Path, metavar="OLD_API_PROTO")
    args = parser.parse_args()
    if args.wire_compat:
        problems = wire_compat(args.wire_compat)
        print("\n".join(problems) or f"wire-compatible with {args.wire_compat} for: {' '.join(USED)}")
        return 1 if problems else 0
    if args.check:
        with tempfile.TemporaryDirectory() as tmp:
            generate(Path(tmp))
            stale = [
                n for n in OUTPUTS if not filecmp.cmp(Path(tmp) / PACKAGE_PATH / n, OUT / n, shallow=False)
            ]
        print(f"stale: {' '.join(stale)}" if stale else "generated stubs are up to date")
        return 1 if stale else 0
    generate(ROOT / "src")
    print(f"wrote {', '.join(OUTPUTS)} into {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
