"""Ask a CRI socket inside a node for its version, with the node's own curl (there is no crictl).

One unary gRPC call, `runtime.<api>.RuntimeService/Version` with an empty VersionRequest, over
HTTP/2 on the unix socket. The lab uses it to prove that cri-dockerd *answers*, not just that its
socket file exists (systemd leaves the file behind when the socket unit stops: RemoveOnStop=no).
The project's real CRI client lives in the adapters; this is the lab's self-check only.
"""

from __future__ import annotations

import base64
import binascii

from shimshift.lab.docker import node_exec
from shimshift.lab.model import CRI_DOCKERD_SOCKET

# VersionResponse (CRI v1 and v1alpha2 alike): 1 version, 2 runtime_name, 3 runtime_version,
# 4 runtime_api_version, all strings.
_FIELDS = {1: "version", 2: "runtime_name", 3: "runtime_version", 4: "runtime_api_version"}

_SCRIPT = (
    "printf '\\0\\0\\0\\0\\0' | curl -sS --fail --max-time 5 --http2-prior-knowledge"
    " -H 'content-type: application/grpc' -H 'te: trailers' --data-binary @-"
    ' --unix-socket "$1" "http://localhost/runtime.$2.RuntimeService/Version" | base64 -w0'
)


def decode_version_response(body: bytes) -> dict[str, str]:
    """Decode one gRPC-framed VersionResponse; ValueError if it is not one."""
    if len(body) < 5 or body[0] != 0:
        raise ValueError("not an uncompressed gRPC message")
    size = int.from_bytes(body[1:5], "big")
    msg = body[5 : 5 + size]
    if len(msg) != size:
        raise ValueError("truncated gRPC message")
    out: dict[str, str] = {}
    i = 0
    while i < len(msg):
        key, i = _varint(msg, i)
        field, wire = key >> 3, key & 7
        if wire != 2:
            raise ValueError(f"unexpected wire type {wire} for field {field}")
        length, i = _varint(msg, i)
        value = msg[i : i + length]
        if len(value) != length:
            raise ValueError("truncated field")
        i += length
        if field in _FIELDS:
            out[_FIELDS[field]] = value.decode()
    return out


def _varint(data: bytes, i: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        if i >= len(data):
            raise ValueError("truncated varint")
        b = data[i]
        i += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, i
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def cri_version(node: str, *, api: str = "v1", socket: str = CRI_DOCKERD_SOCKET) -> dict[str, str] | None:
    """The runtime's VersionResponse fields, or None if nothing answers on the socket."""
    if api not in ("v1", "v1alpha2"):
        raise ValueError(f"unknown CRI API {api!r}")
    proc = node_exec(node, ["sh", "-c", _SCRIPT, "sh", socket, api], check=False, timeout=30)
    if proc.returncode != 0 or not proc.stdout.strip():
        return None
    try:
        return decode_version_response(base64.b64decode(proc.stdout.strip(), validate=True))
    except (ValueError, binascii.Error):
        return None
