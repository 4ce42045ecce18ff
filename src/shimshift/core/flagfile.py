"""Environment files that carry kubelet flags: read them, and rewrite them changing only what must change.

The files are ``/var/lib/kubelet/kubeadm-flags.env`` (``KUBELET_KUBEADM_ARGS="..."``, written by kubeadm
with Go's ``%q``, cmd/kubeadm/app/phases/kubelet/flags.go@v1.23.17) and ``/etc/default/kubelet`` /
``/etc/sysconfig/kubelet``
(``KUBELET_EXTRA_ARGS=...``, docs/runtime-facts.md#the-10-kubeadmconf-drop-in-and-kubelet_extra_args). systemd reads
them as ``EnvironmentFile=`` and the drop-in
expands ``$KUBELET_KUBEADM_ARGS`` by splitting the value at whitespace, so a value is a list of words.

We accept the subset of systemd's syntax that such files use and refuse the rest rather than guess:
blank lines, ``#``/``;`` comments, ``KEY=value``, ``KEY="value"``, ``KEY='value'``; CRLF or LF endings;
spaces around ``=`` and after the value. Refused: unbalanced quotes (systemd would let the value run onto
the next lines), text after a closing quote (systemd would glue it onto the value), backslash line
continuations, a variable assigned twice in one file.

A rewrite rebuilds only the inside of the changed value: every other byte of the file is kept, and so
is every untouched word, in order. The bytes are decoded with ``surrogateescape`` so that any byte
sequence round-trips.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from shimshift.core.errors import Refusal

# Finding codes (docs/findings.md).
FLAG_FILE_UNREADABLE = "flag-file-unreadable"
FLAG_FILE_NOT_EDITABLE = "flag-file-not-editable"
KUBELET_ARGS_UNREADABLE = "kubelet-args-unreadable"

if TYPE_CHECKING:
    from collections.abc import Collection, Mapping, Sequence

_ASSIGNMENT = re.compile(
    r"^(?P<lead>[ \t]*)(?P<key>[A-Za-z_][A-Za-z0-9_]*)[ \t]*=[ \t]*(?P<rest>.*)$", re.DOTALL
)
_WS = " \t"
# Characters a backslash escapes inside double quotes, as in systemd's env-file parser (and the shell).
_DQ_ESCAPED = '"\\`$'


def decode(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


def encode(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def split_lines(text: str) -> list[tuple[int, str, str]]:
    """(offset, content, ending) per line; ending is "\\r\\n", "\\n" or "" (last line without newline)."""
    out: list[tuple[int, str, str]] = []
    pos = 0
    while pos < len(text):
        nl = text.find("\n", pos)
        if nl == -1:
            out.append((pos, text[pos:], ""))
            break
        if nl > pos and text[nl - 1] == "\r":
            out.append((pos, text[pos : nl - 1], "\r\n"))
        else:
            out.append((pos, text[pos:nl], "\n"))
        pos = nl + 1
    return out


def line_ending(text: str) -> str:
    """The file's own line ending, for lines we add."""
    return "\r\n" if "\r\n" in text else "\n"


@dataclass(frozen=True)
class Word:
    """One whitespace-separated word of a value. ``start``/``end`` index the raw file text."""

    raw: str
    text: str  # after unescaping
    start: int
    end: int


@dataclass(frozen=True)
class Assignment:
    key: str
    line: int  # 1-based
    quote: str  # '"', "'" or ""
    content_start: int  # raw offset of the first byte inside the quotes (or of the value)
    content_end: int  # raw offset just past the last byte inside the quotes (or of the value)
    words: tuple[Word, ...]

    @property
    def value(self) -> str:
        return " ".join(w.text for w in self.words)


@dataclass(frozen=True)
class EnvFile:
    path: str
    text: str
    assignments: tuple[Assignment, ...]

    def get(self, key: str) -> Assignment | None:
        """The assignment systemd uses (the last one)."""
        for a in reversed(self.assignments):
            if a.key == key:
                return a
        return None


def _unescape(raw: str, quote: str) -> str:
    if quote != '"':
        return raw
    out: list[str] = []
    i = 0
    while i < len(raw):
        c = raw[i]
        if c == "\\" and i + 1 < len(raw) and raw[i + 1] in _DQ_ESCAPED:
            out.append(raw[i + 1])
            i += 2
            continue
        out.append(c)
        i += 1
    return "".join(out)


def _words(text: str, start: int, end: int, quote: str) -> tuple[Word, ...]:
    out: list[Word] = []
    i = start
    while i < end:
        if text[i] in _WS:
            i += 1
            continue
        j = i
        while j < end and text[j] not in _WS:
            j += 1
        raw = text[i:j]
        out.append(Word(raw=raw, text=_unescape(raw, quote), start=i, end=j))
        i = j
    return tuple(out)


def parse_env_file(path: str, data: bytes, *, unique: Collection[str] | None = None) -> EnvFile:
    """Parse an environment file; Refusal (with file and line) for anything outside the accepted subset.

    A variable assigned twice is refused if it is in ``unique`` (default: every variable): systemd would
    silently use the last line, and an edit to the first would change nothing."""
    text = decode(data)
    assignments: list[Assignment] = []
    seen: dict[str, int] = {}
    for number, (offset, content, _ending) in enumerate(split_lines(text), start=1):
        stripped = content.strip(_WS)
        if not stripped or stripped[0] in "#;":
            continue
        m = _ASSIGNMENT.match(content)
        if m is None:
            raise Refusal(
                f"line is not a KEY=VALUE assignment: {stripped[:60]!r}",
                hint="EnvironmentFile lines are KEY=VALUE, # comments or blank; fix or remove the line",
                file=path,
                line=number,
                code=FLAG_FILE_UNREADABLE,
            )
        key = m["key"]
        if key in seen and (unique is None or key in unique):
            raise Refusal(
                f"{key} is assigned twice (lines {seen[key]} and {number}); systemd would use only the last",
                hint=f"merge the two {key} lines into one",
                file=path,
                line=number,
                code=FLAG_FILE_UNREADABLE,
            )
        seen[key] = number
        rest_start = offset + m.start("rest")
        rest = m["rest"]
        if rest.rstrip(_WS).endswith("\\"):
            raise Refusal(
                "line ends with a backslash continuation",
                hint="join the continued lines into one line",
                file=path,
                line=number,
                code=FLAG_FILE_UNREADABLE,
            )
        if rest[:1] in ("'", '"'):
            quote = rest[0]
            close = _closing_quote(rest, quote)
            if close == -1:
                raise Refusal(
                    f"unbalanced {quote} quote in the value of {key}",
                    hint="close the quote on the same line; systemd would read on into the following lines",
                    file=path,
                    line=number,
                    code=FLAG_FILE_UNREADABLE,
                )
            trailer = rest[close + 1 :]
            if trailer.strip(_WS):
                raise Refusal(
                    f"text after the closing quote of {key}: {trailer.strip()!r}",
                    hint="systemd glues it onto the value (not a comment); put comments on their own line",
                    file=path,
                    line=number,
                    code=FLAG_FILE_UNREADABLE,
                )
            c_start, c_end = rest_start + 1, rest_start + close
        else:
            quote = ""
            if any(ch in rest for ch in "\"'\\"):
                raise Refusal(
                    f"quote or backslash inside the unquoted value of {key}",
                    hint=f'quote the whole value: {key}="..."',
                    file=path,
                    line=number,
                    code=FLAG_FILE_UNREADABLE,
                )
            c_start = rest_start
            c_end = rest_start + len(rest.rstrip(_WS))
        assignments.append(
            Assignment(
                key=key,
                line=number,
                quote=quote,
                content_start=c_start,
                content_end=c_end,
                words=_words(text, c_start, c_end, quote),
            )
        )
    return EnvFile(path=path, text=text, assignments=tuple(assignments))


def _closing_quote(rest: str, quote: str) -> int:
    i = 1
    while i < len(rest):
        c = rest[i]
        if quote == '"' and c == "\\" and i + 1 < len(rest):
            i += 2
            continue
        if c == quote:
            return i
        i += 1
    return -1


# --------------------------------------------------------------------------------------------------
# Flags inside a value


@dataclass(frozen=True)
class FlagUse:
    """One flag on a command line: ``--name=value``, ``--name value`` or a bare ``--name``."""

    name: str
    value: str | None
    separate: bool  # the value is its own word (``--name value``)
    words: tuple[int, ...]  # indexes into the assignment's words
    file: str
    line: int
    key: str  # the variable it came from


def group_flags(words: Sequence[str]) -> list[tuple[str, str | None, bool, tuple[int, ...]]] | int:
    """Group command-line words into (name, value, separate, word indexes). A word not starting with
    ``-`` is the value of the flag before it (the kubelet takes no positional arguments). Returns the
    index of the first word that is neither a flag nor a value instead, so callers can refuse it."""
    out: list[tuple[str, str | None, bool, tuple[int, ...]]] = []
    i = 0
    while i < len(words):
        w = words[i]
        if not w.startswith("-") or w in ("-", "--"):
            return i
        if "=" in w:
            name, value = w.split("=", 1)
            out.append((name, value, False, (i,)))
            i += 1
        elif i + 1 < len(words) and not words[i + 1].startswith("-"):
            out.append((w, words[i + 1], True, (i, i + 1)))
            i += 2
        else:
            out.append((w, None, False, (i,)))
            i += 1
    return out


def flag_uses(path: str, assignment: Assignment) -> list[FlagUse]:
    """The flags in one assignment's value; Refusal for a word that is neither a flag nor a value."""
    grouped = group_flags([w.text for w in assignment.words])
    if isinstance(grouped, int):
        raise Refusal(
            f"{assignment.words[grouped].text!r} in {assignment.key} is neither a flag nor the value of one",
            hint="the kubelet takes no arguments; remove the word or attach it to its flag with =",
            file=path,
            line=assignment.line,
            code=KUBELET_ARGS_UNREADABLE,
        )
    return [FlagUse(n, v, sep, idx, path, assignment.line, assignment.key) for n, v, sep, idx in grouped]


# --------------------------------------------------------------------------------------------------
# Rewriting


def _quote_for(text: str, quote: str, *, path: str, key: str) -> str:
    if quote == '"':
        return "".join("\\" + c if c in _DQ_ESCAPED else c for c in text)
    bad = "'" if quote == "'" else " \t\"'\\"
    if any(c in bad for c in text) or any(c in _WS for c in text):
        raise Refusal(
            f"cannot write {text!r} into the {'single-quoted' if quote else 'unquoted'} value of {key}",
            hint=f'quote the value with double quotes: {key}="..."',
            file=path,
            code=FLAG_FILE_NOT_EDITABLE,
        )
    return text


@dataclass(frozen=True)
class FlagEdit:
    """Changes to one assignment: ``set`` maps flag name to new value (existing uses are rewritten in
    place, keeping their form), ``remove`` lists flags to drop entirely, ``append`` adds ``--name=value``
    words at the end (in the given order)."""

    set: Mapping[str, str]
    remove: frozenset[str]
    append: Sequence[tuple[str, str]]


def rewrite_assignment(env: EnvFile, key: str, edit: FlagEdit) -> str:
    """The file's text with ``key``'s value edited. Adds a ``key="..."`` line if the key is missing and
    something must be appended. Raises Refusal if a new value cannot be written in the value's quoting."""
    a = env.get(key)
    if a is None:
        if not edit.append:
            return env.text
        words = " ".join(n + "=" + _quote_for(v, '"', path=env.path, key=key) for n, v in edit.append)
        sep = "" if env.text == "" or env.text.endswith("\n") else line_ending(env.text)
        return f'{env.text}{sep}{key}="{words}"{line_ending(env.text)}'
    uses = flag_uses(env.path, a)
    new_raw: dict[int, str | None] = {}  # word index -> replacement (None = delete)
    for use in uses:
        if use.name in edit.remove:
            for i in use.words:
                new_raw[i] = None
        elif use.name in edit.set and use.value != edit.set[use.name]:
            value = _quote_for(edit.set[use.name], a.quote, path=env.path, key=key)
            if use.separate:
                new_raw[use.words[1]] = value
            elif use.value is None:
                new_raw[use.words[0]] = a.words[use.words[0]].raw + "=" + value
            else:
                raw = a.words[use.words[0]].raw
                new_raw[use.words[0]] = raw[: raw.index("=") + 1] + value
    appended = [f"{n}={_quote_for(v, a.quote, path=env.path, key=key)}" for n, v in edit.append]
    if not new_raw and not appended:
        return env.text
    text = env.text
    lead = text[a.content_start : a.words[0].start] if a.words else text[a.content_start : a.content_end]
    tail = text[a.words[-1].end : a.content_end] if a.words else ""
    pieces: list[str] = []
    for i, w in enumerate(a.words):
        replacement = new_raw.get(i, w.raw)
        if replacement is None:
            continue
        if pieces:
            gap_start = a.words[i - 1].end if i > 0 else a.content_start
            pieces.append(text[gap_start : w.start] or " ")
        pieces.append(replacement)
    for word in appended:
        if pieces:
            pieces.append(" ")
        pieces.append(word)
    content = lead + "".join(pieces) + tail
    return text[: a.content_start] + content + text[a.content_end :]
