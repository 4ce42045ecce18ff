"""What a node file may hold before any parser looks at it: a bounded size, and no control characters.

Every node file shimshift reads is a small text file that kubeadm, a package or an operator wrote:
kubeadm-flags.env and /etc/default/kubelet are a line or two, 10-kubeadm.conf and cri-docker.service
under a kilobyte, config.yaml a few kilobytes. Anything else is refused here, with the file and line,
before it can be parsed or copied somewhere (NUL bytes in kubeadm-flags.env once ended up in the planned
cri-dockerd unit).

Refused characters, and why each one:

- NUL and the other C0 controls except tab and line feed: systemd's line reader ends a line at NUL, and
  none of these has a meaning in an environment file, a unit or YAML; copied into cri-dockerd's
  ``ExecStart=`` they become part of an argument no one can see.
- CR, unless it is the CR of a CRLF line ending: our parsers (``flagfile.split_lines``) take CRLF as one
  line ending, which is what systemd and YAML do too; a lone CR is a line break for systemd's reader and
  for YAML but not for a line-based editor, so the three would disagree on where lines start.
- DEL (0x7f) and the C1 controls (U+0080-U+009F, when the file is UTF-8): invisible in a terminal; NEL
  (U+0085) is a line break for YAML 1.1.
- U+2028 and U+2029 (line and paragraph separators): line breaks for YAML 1.1 (PyYAML), not for systemd.

Tabs stay: they are ordinary whitespace in all three formats. Bytes that are not UTF-8 are left to
the parsers (they round-trip through ``surrogateescape``); what is written into a unit is checked again
where it is rendered (``dropin.systemd_quote``).

The size limit is checked by the node access before a file is transferred whole: it reads at most
``MAX_NODE_FILE_BYTES + 1`` bytes, and this module turns the extra byte into the refusal.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shimshift.core.errors import Refusal
from shimshift.core.flagfile import decode

# Finding codes (docs/findings.md).
NODE_FILE_TOO_LARGE = "node-file-too-large"
NODE_FILE_CONTROL_CHARACTER = "node-file-control-character"

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

#: 1 MiB: a hundred times the largest kubelet config seen in practice, small enough to hold in memory
#: for every node of a fleet run.
MAX_NODE_FILE_BYTES = 1 << 20

_NAMES = {
    0x00: "NUL",
    0x07: "BEL",
    0x08: "BS",
    0x0B: "VT",
    0x0C: "FF",
    0x0D: "CR",
    0x1B: "ESC",
    0x7F: "DEL",
    0x85: "NEL",
    0x2028: "LINE SEPARATOR",
    0x2029: "PARAGRAPH SEPARATOR",
}


def _refused(char: str) -> bool:
    code = ord(char)
    return (
        (code < 0x20 and char not in "\t\n")
        or code == 0x7F
        or 0x80 <= code <= 0x9F
        or code in (0x2028, 0x2029)
    )


def _describe(char: str) -> str:
    code = ord(char)
    name = _NAMES.get(code)
    number = f"0x{code:02x}" if code < 0x100 else f"U+{code:04X}"
    return f"control character {name} ({number})" if name else f"control character {number}"


def _hint(char: str, path: str) -> str:
    if char == "\x00":
        why = "systemd stops reading a line at a NUL byte"
    elif char == "\r":
        why = "a CR that does not end a CRLF line is a line break for systemd and YAML"
    else:
        why = "kubeadm and the packages never write it, and it would be copied into cri-dockerd's unit"
    return f"{why}; find it with `cat -A {path}` and remove it"


def check_node_file(path: str, data: bytes, *, node: str | None = None) -> None:
    """Raise `Refusal` (file, line, node) if ``data`` is over the size limit or holds a refused character."""
    if len(data) > MAX_NODE_FILE_BYTES:
        raise Refusal(
            f"the file is larger than {MAX_NODE_FILE_BYTES // (1 << 20)} MiB ({MAX_NODE_FILE_BYTES} bytes), "
            "far beyond any kubelet or cri-dockerd file; it was not read whole",
            hint=f"check what it holds (`ls -l {path}`, `head -c 300 {path}`); shimshift reads only "
            "small text files",
            file=path,
            node=node,
            code=NODE_FILE_TOO_LARGE,
        )
    text = decode(data)
    line = 1
    column = 1
    for index, char in enumerate(text):
        if char == "\n":
            line, column = line + 1, 1
            continue
        if _refused(char) and not (char == "\r" and text[index + 1 : index + 2] == "\n"):
            raise Refusal(
                f"{_describe(char)} at column {column}",
                hint=_hint(char, path),
                file=path,
                line=line,
                node=node,
                code=NODE_FILE_CONTROL_CHARACTER,
            )
        column += 1


def check_node_files(
    files: Mapping[str, bytes | None], *, order: Iterable[str] = (), node: str | None = None
) -> None:
    """`check_node_file` on every present file; ``order`` first (so the first refusal is predictable)."""
    ordered = [p for p in order if p in files] + sorted(set(files) - set(order))
    for path in ordered:
        data = files[path]
        if data is not None:
            check_node_file(path, data, node=node)
