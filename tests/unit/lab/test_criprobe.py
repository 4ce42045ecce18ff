"""Decoding the CRI VersionResponse the lab's curl probe gets back: good frames, and refusals."""

from __future__ import annotations

import pytest

from shimshift.lab.criprobe import decode_version_response


def _field(number: int, value: bytes) -> bytes:
    return bytes([number << 3 | 2, len(value)]) + value


def _frame(msg: bytes) -> bytes:
    return b"\x00" + len(msg).to_bytes(4, "big") + msg


def test_decodes_a_version_response() -> None:
    msg = _field(1, b"0.1.0") + _field(2, b"docker") + _field(3, b"20.10.24+dfsg1") + _field(4, b"v1")
    assert decode_version_response(_frame(msg)) == {
        "version": "0.1.0",
        "runtime_name": "docker",
        "runtime_version": "20.10.24+dfsg1",
        "runtime_api_version": "v1",
    }


def test_unknown_fields_are_ignored() -> None:
    assert decode_version_response(_frame(_field(9, b"x") + _field(2, b"docker"))) == {
        "runtime_name": "docker"
    }


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"\x01\x00\x00\x00\x00",
        _frame(_field(2, b"docker"))[:-2],
        b"\x00\x00\x00\x00\x02\x08\x01",
        b"<html>",
    ],
    ids=["empty", "compressed", "truncated", "varint-field", "not-grpc"],
)
def test_refuses_what_is_not_a_version_response(body: bytes) -> None:
    with pytest.raises(ValueError):
        decode_version_response(body)
