"""Which kubeconfig files to read and how to merge them, with kubectl's rules (client-go ``clientcmd``).

Pure: paths and parsed documents in, paths and one merged document out; the adapter
(``adapters/kube/kubeconfig.py``) reads the files and builds the client from the result.

kubectl's loading rules (client-go ``ClientConfigLoadingRules.Load``):

- ``--kubeconfig FILE``: that file only; it must exist.
- else ``$KUBECONFIG``: a ``:``-separated list; empty items and repeats are dropped, missing files are
  skipped, and the rest are merged. The first file to set a map key (a cluster, user or context name)
  wins, and its whole entry is kept (nothing of a later file's entry of the same name is mixed in); the
  first file to set ``current-context`` wins. An empty ``$KUBECONFIG`` counts as unset.
- else ``~/.kube/config``; else, inside a pod, the service account.

Relative file references (certificate-authority, client-certificate, client-key, tokenFile, and an exec
command containing a ``/``) are relative to the file that holds them, so they are made absolute before
the merge, as clientcmd's ``ResolveLocalPaths`` does.

One deliberate difference: when ``$KUBECONFIG`` names only files that do not exist, kubectl goes on with an
empty config; we refuse, naming the variable, instead of reaching some other cluster.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shimshift.core.errors import Refusal

# Finding codes (docs/findings.md), also of the refusals of adapters/kube/kubeconfig.py and client.py.
KUBECONFIG_MISSING = "kubeconfig-missing"
KUBECONFIG_INVALID = "kubeconfig-invalid"
KUBECONFIG_CONTEXT_UNKNOWN = "kubeconfig-context-unknown"
KUBECONFIG_CERTIFICATES_UNUSABLE = "kubeconfig-certificates-unusable"
PROXY_UNUSABLE = "proxy-unusable"

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

ENV_VAR = "KUBECONFIG"
DEFAULT_FILE = Path(".kube") / "config"
# The named lists of a kubeconfig and the key under which each entry keeps its body.
NAMED_LISTS = {"clusters": "cluster", "users": "user", "contexts": "context"}
_CLUSTER_FILES = ("certificate-authority",)
_USER_FILES = ("client-certificate", "client-key", "tokenFile")


@dataclass(frozen=True)
class KubeconfigSearch:
    """The files to read, in precedence order, and where that list came from.

    ``origin`` is ``"--kubeconfig"``, ``"$KUBECONFIG"`` or ``"default"``; ``required`` says whether a
    missing file is an error (an explicit --kubeconfig) or skipped (the others).
    """

    files: tuple[Path, ...]
    origin: str
    required: bool = False


def kubeconfig_search(explicit: Path | None, env_value: str | None, home: Path) -> KubeconfigSearch:
    """Where to look, from ``--kubeconfig``, the value of ``$KUBECONFIG`` and the home directory."""
    if explicit is not None:
        return KubeconfigSearch((explicit.expanduser(),), "--kubeconfig", required=True)
    if env_value:
        files: list[Path] = []
        for item in env_value.split(":"):
            path = Path(item).expanduser() if item else None
            if path is not None and path not in files:
                files.append(path)
        if files:
            return KubeconfigSearch(tuple(files), "$" + ENV_VAR)
    return KubeconfigSearch((home / DEFAULT_FILE,), "default")


def nothing_found(search: KubeconfigSearch) -> Refusal:
    """The refusal for a search whose files are all missing (the caller may still try in-cluster)."""
    if search.origin == "$" + ENV_VAR:
        names = ":".join(map(str, search.files))
        return Refusal(
            f"${ENV_VAR} names no file that exists ({names})",
            hint=f"fix ${ENV_VAR} or pass --kubeconfig FILE; shimshift does not fall back to ~/.kube/config",
            code=KUBECONFIG_MISSING,
        )
    return Refusal(
        "no kubeconfig: --kubeconfig not given, $KUBECONFIG not set, and the file does not exist",
        hint="pass --kubeconfig FILE (or set $KUBECONFIG)",
        file=str(search.files[0]),
        code=KUBECONFIG_MISSING,
    )


def absolutize(document: Mapping[str, Any], source: Path) -> dict[str, Any]:
    """A copy of the document read from ``source`` with its relative file references made absolute
    against the file's directory. Refuses, naming ``source``, a document not shaped like a kubeconfig."""
    base, where = source.parent, str(source)
    copy: dict[str, Any] = dict(document)
    for list_key, body_key in NAMED_LISTS.items():
        entries = document.get(list_key)
        if entries is None:
            continue
        if not isinstance(entries, list):
            raise Refusal(f"`{list_key}` is not a list", file=where, code=KUBECONFIG_INVALID)
        fixed = []
        for index, entry in enumerate(entries):
            if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
                raise Refusal(f"`{list_key}` entry {index + 1} has no name", file=where, code=KUBECONFIG_INVALID)
            body = entry.get(body_key)
            if body is not None and not isinstance(body, dict):
                raise Refusal(
                    f"`{list_key}` entry {entry['name']!r}: `{body_key}` is not a mapping", file=where,
                    code=KUBECONFIG_INVALID,
                )
            if isinstance(body, dict):
                entry = {**entry, body_key: _absolute_body(body_key, body, base)}
            fixed.append(entry)
        copy[list_key] = fixed
    return copy


def _absolute_body(kind: str, body: dict[str, Any], base: Path) -> dict[str, Any]:
    keys = _CLUSTER_FILES if kind == "cluster" else _USER_FILES if kind == "user" else ()
    result = dict(body)
    for key in keys:
        value = result.get(key)
        if isinstance(value, str) and value and not Path(value).is_absolute():
            result[key] = str(base / value)
    exec_section = result.get("exec") if kind == "user" else None
    if isinstance(exec_section, dict):
        command = exec_section.get("command")
        # A bare command name is looked up on PATH; only a path with a "/" is relative to the file.
        if isinstance(command, str) and "/" in command and not Path(command).is_absolute():
            result["exec"] = {**exec_section, "command": str(base / command)}
    return result


def merge(documents: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One kubeconfig from several, highest precedence first (each already :func:`absolutize`-d)."""
    merged: dict[str, Any] = {key: [] for key in NAMED_LISTS}
    seen: dict[str, set[str]] = {key: set() for key in NAMED_LISTS}
    for document in documents:
        for key, value in document.items():
            if key in NAMED_LISTS:
                for entry in value or []:
                    if entry["name"] not in seen[key]:
                        seen[key].add(entry["name"])
                        merged[key].append(entry)
            elif value not in (None, "", [], {}) and merged.get(key) in (None, "", [], {}):
                merged[key] = value
    return merged
