"""KubeletConfiguration files: ``/var/lib/kubelet/config.yaml`` and kubeadm's ``instance-config.yaml``.

From 1.27 the kubelet reads ``containerRuntimeEndpoint`` from its config file (kubernetes/kubernetes#112136);
with kubeadm's NodeLocalCRISocket (1.32 alpha, 1.34 on by default) kubeadm keeps the node's socket in
``instance-config.yaml``, a KubeletConfiguration patch holding that single field (KEP-4656;
docs/runtime-facts.md#the-cri-socket-annotation-and-instance-configyaml).

Edits are line-based so that comments, key order and formatting survive: a top-level
``key: value`` line is rewritten in place (its indentation, spacing and trailing comment kept), or a
new line is added at the end. The result is parsed again and compared with the intended mapping; any
difference (flow style, anchors, a multi-line scalar, a duplicate key) is refused rather than written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml

from shimshift.core.errors import Refusal
from shimshift.core.flagfile import decode, encode, line_ending, split_lines

# Finding codes (docs/findings.md).
KUBELET_CONFIG_UNREADABLE = "kubelet-config-unreadable"
KUBELET_CONFIG_NOT_EDITABLE = "kubelet-config-not-editable"

_PLAIN_SAFE = re.compile(r"^[A-Za-z0-9_./:@+-]+$")


@dataclass(frozen=True)
class KubeletConfigFile:
    path: str
    text: str
    data: dict[str, Any]

    def line_of(self, key: str) -> int | None:
        return _key_line(self.text, key)[0]

    def get_str(self, key: str) -> str | None:
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            raise Refusal(
                f"{key} is not a string", hint="fix the value", file=self.path, line=self.line_of(key),
                code=KUBELET_CONFIG_UNREADABLE
            )
        return value


def _load(path: str, text: str) -> dict[str, Any]:
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise Refusal(
            f"not valid YAML: {getattr(exc, 'problem', None) or exc}",
            hint="fix the file; the kubelet could not read it either",
            file=path,
            line=(mark.line + 1) if mark is not None else None,
            code=KUBELET_CONFIG_UNREADABLE,
        ) from exc
    if not docs:
        return {}
    if len(docs) > 1:
        raise Refusal(
            "holds several YAML documents", hint="a KubeletConfiguration file holds one", file=path,
            code=KUBELET_CONFIG_UNREADABLE,
        )
    doc = docs[0]
    if not isinstance(doc, dict):
        raise Refusal(
            "is not a YAML mapping", hint="a KubeletConfiguration is a mapping", file=path, line=1,
            code=KUBELET_CONFIG_UNREADABLE,
        )
    kind = doc.get("kind")
    if kind is not None and kind != "KubeletConfiguration":
        raise Refusal(
            f"kind is {kind!r}, not KubeletConfiguration",
            hint="point shimshift at the kubelet's config",
            file=path,
            code=KUBELET_CONFIG_UNREADABLE,
        )
    return doc


def parse_kubelet_config(path: str, data: bytes) -> KubeletConfigFile:
    text = decode(data)
    return KubeletConfigFile(path=path, text=text, data=_load(path, text))


def _key_line(text: str, key: str) -> tuple[int | None, list[tuple[int, int, str, str]]]:
    """(1-based line of the top-level key or None, all matching lines as (line, offset, content, ending))."""
    pattern = re.compile(rf"^{re.escape(key)}[ \t]*:(?:[ \t]|$)")
    hits = [
        (n, off, content, end)
        for n, (off, content, end) in enumerate(split_lines(text), start=1)
        if pattern.match(content)
    ]
    return (hits[0][0] if hits else None), hits


def set_top_level_string(config: KubeletConfigFile, key: str, value: str) -> str:
    """The file text with top-level ``key`` set to ``value``; unchanged text if it already is."""
    if config.data.get(key) == value:
        return config.text
    if not _PLAIN_SAFE.match(value):
        raise Refusal(
            f"refusing to write {value!r} into {key}", hint="use a plain socket URL", file=config.path,
            code=KUBELET_CONFIG_NOT_EDITABLE
        )
    return _set_top_level(config, key, value, value)


def set_top_level_bool(config: KubeletConfigFile, key: str, value: bool) -> str:
    """The file text with top-level ``key`` set to ``true`` or ``false``; unchanged text if it already is."""
    if config.data.get(key) is value:
        return config.text
    return _set_top_level(config, key, value, "true" if value else "false")


def _set_top_level(config: KubeletConfigFile, key: str, data: object, value: str) -> str:
    """``key: value`` by editing (or adding) one line; refused unless YAML then reads ``data`` there."""
    _line, hits = _key_line(config.text, key)
    text = config.text
    if len(hits) > 1:
        raise Refusal(
            f"{key} appears {len(hits)} times", hint=f"keep one {key} line", file=config.path, line=hits[1][0],
            code=KUBELET_CONFIG_NOT_EDITABLE
        )
    if hits:
        number, offset, content, _ending = hits[0]
        m = re.match(rf"^({re.escape(key)}[ \t]*:[ \t]*)(.*?)([ \t]+#.*)?$", content)
        if m is None:  # pragma: no cover - the pattern above guarantees a match
            raise Refusal(f"cannot edit {key}", file=config.path, line=number, code=KUBELET_CONFIG_NOT_EDITABLE)
        new_line = m[1] + (value if m[1].endswith((" ", "\t")) else " " + value) + (m[3] or "")
        text = text[:offset] + new_line + text[offset + len(content) :]
    elif config.data and text.lstrip().startswith("{"):
        raise Refusal(
            "is written in JSON/flow style", hint=f"add {key}: {value} by hand", file=config.path,
            code=KUBELET_CONFIG_NOT_EDITABLE,
        )
    else:
        sep = "" if text == "" or text.endswith("\n") else line_ending(text)
        text = f"{text}{sep}{key}: {value}{line_ending(text)}"
    expected = dict(config.data)
    expected[key] = data
    if _load(config.path, text) != expected:
        raise Refusal(
            f"could not set {key} by editing one line (multi-line value, anchors or flow style?)",
            hint=f"set {key}: {value} by hand",
            file=config.path,
            line=hits[0][0] if hits else None,
            code=KUBELET_CONFIG_NOT_EDITABLE,
        )
    return text


def set_endpoint(config: KubeletConfigFile, endpoint: str) -> bytes:
    return encode(set_top_level_string(config, "containerRuntimeEndpoint", endpoint))
