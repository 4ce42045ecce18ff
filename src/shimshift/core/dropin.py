"""systemd units around the kubelet and cri-dockerd: read the kubeadm drop-in, write cri-dockerd's.

The kubeadm drop-in ``10-kubeadm.conf`` (docs/runtime-facts.md#the-10-kubeadmconf-drop-in-and-kubelet_extra_args)
says which environment files feed the kubelet,
in what order, and how ``ExecStart`` expands their variables. We never rewrite it (the package owns it);
we read it to know where each kubelet flag comes from.

cri-dockerd takes its settings only on its command line (Mirantis/cri-dockerd config/options.go), and its packaged
unit starts it
with ``--container-runtime-endpoint fd://`` (socket activation). The moved dockershim settings therefore
go into a drop-in for ``cri-docker.service`` that resets ``ExecStart=`` and gives the full command line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from shimshift.core.errors import Refusal
from shimshift.core.flagfile import decode, split_lines

# Finding codes (docs/findings.md).
UNIT_FILE_UNREADABLE = "unit-file-unreadable"
UNIT_FILE_NOT_EDITABLE = "unit-file-not-editable"
NOT_KUBEADM_LAYOUT = "not-kubeadm-layout"

if TYPE_CHECKING:
    from collections.abc import Sequence

_VAR_WORD = re.compile(r"^\$([A-Za-z_][A-Za-z0-9_]*)$")
_VAR_BRACED = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True)
class UnitWord:
    raw: str  # as written in the unit
    text: str  # after quote removal and unescaping


@dataclass(frozen=True)
class UnitSetting:
    section: str
    key: str
    value: str
    line: int


def parse_unit(path: str, data: bytes) -> list[UnitSetting]:
    """Settings of a unit file or drop-in, in order. Continuation lines (trailing backslash) are joined."""
    text = decode(data)
    out: list[UnitSetting] = []
    section = ""
    pending: tuple[str, int] | None = None
    for number, (_offset, content, _ending) in enumerate(split_lines(text), start=1):
        if pending is not None:
            joined, first = pending
            content = joined + " " + content.strip()
            number_for = first
        else:
            number_for = number
        stripped = content.strip()
        if pending is None and (not stripped or stripped[0] in "#;"):
            continue
        if stripped.endswith("\\"):
            pending = (stripped[:-1], number_for)
            continue
        pending = None
        if stripped.startswith("[") and stripped.endswith("]"):
            section = stripped[1:-1]
            continue
        if "=" not in stripped:
            raise Refusal(
                f"unit line is not Key=Value: {stripped[:60]!r}",
                hint="fix the unit file; systemd ignores such lines with a warning",
                file=path,
                line=number_for,
                code=UNIT_FILE_UNREADABLE,
            )
        key, value = stripped.split("=", 1)
        out.append(UnitSetting(section, key.strip(), value.strip(), number_for))
    if pending is not None:
        raise Refusal(
            "unit file ends inside a continued line",
            hint="remove the trailing backslash",
            file=path,
            line=pending[1],
            code=UNIT_FILE_UNREADABLE,
        )
    return out


def split_words(value: str, *, path: str, line: int) -> list[UnitWord]:
    """systemd's word splitting: whitespace separates, quotes group, backslash escapes."""
    words: list[UnitWord] = []
    i = 0
    n = len(value)
    while i < n:
        if value[i] in " \t":
            i += 1
            continue
        start = i
        buf: list[str] = []
        while i < n and value[i] not in " \t":
            c = value[i]
            if c in "\"'":
                close = value.find(c, i + 1)
                while c == '"' and close != -1 and value[close - 1] == "\\":
                    close = value.find(c, close + 1)
                if close == -1:
                    raise Refusal(
                        f"unbalanced {c} quote in unit setting", hint="close the quote", file=path, line=line,
                        code=UNIT_FILE_UNREADABLE
                    )
                inner = value[i + 1 : close]
                buf.append(inner.replace('\\"', '"').replace("\\\\", "\\") if c == '"' else inner)
                i = close + 1
            elif c == "\\" and i + 1 < n:
                buf.append(value[i + 1])
                i += 2
            else:
                buf.append(c)
                i += 1
        words.append(UnitWord(raw=value[start:i], text="".join(buf)))
    return words


@dataclass(frozen=True)
class KubeletDropin:
    """What the kubeadm drop-in says about starting the kubelet."""

    path: str
    environment: tuple[tuple[str, str, int], ...]  # (name, value, line) from Environment=
    environment_files: tuple[tuple[str, bool, int], ...]  # (path, optional, line) in order
    exec_start: tuple[UnitWord, ...]  # words of the effective ExecStart (prefixes stripped)
    exec_start_line: int


def parse_kubelet_dropin(path: str, data: bytes) -> KubeletDropin:
    env: list[tuple[str, str, int]] = []
    files: list[tuple[str, bool, int]] = []
    exec_start: tuple[UnitWord, ...] | None = None
    exec_line = 0
    for s in parse_unit(path, data):
        if s.section != "Service":
            continue
        if s.key == "Environment":
            if not s.value:
                env.clear()
                continue
            for w in split_words(s.value, path=path, line=s.line):
                if "=" not in w.text:
                    raise Refusal(
                        f"Environment= word {w.text!r} is not NAME=VALUE",
                        hint="fix the drop-in",
                        file=path,
                        line=s.line,
                        code=UNIT_FILE_UNREADABLE,
                    )
                name, val = w.text.split("=", 1)
                env.append((name, val, s.line))
        elif s.key == "EnvironmentFile":
            if not s.value:
                files.clear()
                continue
            optional = s.value.startswith("-")
            files.append((s.value[1:] if optional else s.value, optional, s.line))
        elif s.key == "ExecStart":
            if not s.value:
                exec_start = ()
                continue
            words = split_words(s.value, path=path, line=s.line)
            first = words[0]
            stripped = first.text.lstrip("-@+!:")
            words[0] = UnitWord(raw=first.raw.lstrip("-@+!:"), text=stripped)
            exec_start = tuple(words)
            exec_line = s.line
    if not exec_start:
        raise Refusal(
            "the kubelet drop-in sets no ExecStart, so it is unknown which flag files the kubelet reads",
            hint="this is not a kubeadm layout shimshift can see; migrate this node by hand",
            file=path,
            code=NOT_KUBEADM_LAYOUT,
        )
    return KubeletDropin(path, tuple(env), tuple(files), exec_start, exec_line)


@dataclass(frozen=True)
class Expanded:
    """One word of the kubelet's command line, and where it came from: a variable (``var``) or the
    ExecStart line itself (``var`` None)."""

    text: str
    var: str | None


def expand_exec_start(dropin: KubeletDropin, env: dict[str, str]) -> list[Expanded]:
    """Expand ExecStart as systemd does: a whole word ``$NAME`` becomes the value split at whitespace,
    ``${NAME}`` is substituted inside its word; the binary itself is dropped."""
    out: list[Expanded] = []
    for w in dropin.exec_start[1:]:
        m = _VAR_WORD.match(w.raw)
        if m is not None:
            out.extend(Expanded(part, m[1]) for part in env.get(m[1], "").split())
            continue
        out.append(Expanded(_VAR_BRACED.sub(lambda mm: env.get(mm[1], ""), w.text), None))
    return out


# --------------------------------------------------------------------------------------------------
# cri-dockerd


#: The packaged unit's command line (Mirantis/cri-dockerd packaging/systemd/cri-docker.service v0.2.4-v0.4.3).
DEFAULT_CRI_DOCKERD_EXEC = ("/usr/bin/cri-dockerd", "--container-runtime-endpoint", "fd://")


def cri_dockerd_exec_start(path: str, data: bytes) -> list[UnitWord]:
    """The effective ExecStart words of a cri-docker.service unit (or drop-in)."""
    words: list[UnitWord] = []
    for s in parse_unit(path, data):
        if s.section == "Service" and s.key == "ExecStart":
            words = split_words(s.value, path=path, line=s.line) if s.value else []
    if words:
        words[0] = UnitWord(raw=words[0].raw.lstrip("-@+!:"), text=words[0].text.lstrip("-@+!:"))
    return words


def systemd_quote(word: str) -> str:
    """One command-line word as it must be written in an ExecStart= line, so that systemd passes
    exactly ``word`` to the program (systemd.service "Command lines", systemd.unit "Specifiers").

    Per character: ``%`` becomes ``%%`` (else a specifier such as ``%h`` is expanded, and an unknown
    one makes the unit fail to load); ``$`` becomes ``$$`` (else ``$NAME``/``${NAME}`` is replaced by
    an environment variable). A word holding whitespace, a quote, a backslash or ``;`` is written in
    double quotes, inside which ``\\`` and ``\"`` are the only escapes needed (systemd C-unescapes
    quoted text too); a quoted ``";"`` is a literal word, not the command separator a bare ``;`` is
    (both checked with ``systemd-analyze verify``, tests/e2e/core/test_systemd_quoting.py).
    Refused, with `Refusal`: control characters (systemd's line reader ends a line at NUL, CR and LF;
    the others would be invisible arguments; node_hygiene refuses them in the input already) and
    text that is not UTF-8 (undecodable bytes kept by ``surrogateescape``): systemd ignores a whole
    ``ExecStart=`` line that is not UTF-8 clean, which would leave cri-dockerd with no command at all.
    """
    for char in word:
        code = ord(char)
        if code < 0x20 or code == 0x7F or 0x80 <= code <= 0x9F:
            raise Refusal(
                f"cannot write {word!r} into a systemd ExecStart= line: it holds control character 0x{code:02x}",
                hint="remove the character from the flag's value",
                code=UNIT_FILE_NOT_EDITABLE,
            )
        if 0xDC80 <= code <= 0xDCFF:
            raise Refusal(
                f"cannot write {word!r} into a systemd ExecStart= line: it is not UTF-8 "
                f"(byte 0x{code - 0xDC00:02x}), and systemd would ignore the whole line",
                hint="write the flag's value in UTF-8 (plain ASCII is what the kubelet flags take)",
                code=UNIT_FILE_NOT_EDITABLE,
            )
    escaped = word.replace("%", "%%").replace("$", "$$")
    if escaped and not any(c in escaped for c in " \t\"'\\;"):
        return escaped
    return '"' + escaped.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_cri_dockerd_dropin(*, exec_words: Sequence[str], comment: Sequence[str]) -> bytes:
    """The drop-in text. ``exec_words`` are already written as unit words (quoted where needed)."""
    lines = [f"# {c}" if c else "#" for c in comment]
    lines += ["[Service]", "ExecStart=", "ExecStart=" + " ".join(exec_words)]
    return ("\n".join(lines) + "\n").encode()


#: kubeadm's packaged drop-in (kubernetes/release cmd/krel/templates/latest/kubeadm/10-kubeadm.conf,
#: DEB flavour). Used only when a caller cannot read the node's own and says so.
STANDARD_KUBEADM_DROPIN = b"""\
[Service]
Environment="KUBELET_KUBECONFIG_ARGS=--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf \
--kubeconfig=/etc/kubernetes/kubelet.conf"
Environment="KUBELET_CONFIG_ARGS=--config=/var/lib/kubelet/config.yaml"
EnvironmentFile=-/var/lib/kubelet/kubeadm-flags.env
EnvironmentFile=-/etc/default/kubelet
ExecStart=
ExecStart=/usr/bin/kubelet $KUBELET_KUBECONFIG_ARGS $KUBELET_CONFIG_ARGS $KUBELET_KUBEADM_ARGS \
$KUBELET_EXTRA_ARGS
"""
