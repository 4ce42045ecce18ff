"""The node's kubelet and cri-dockerd files, parsed together: which flags the kubelet really gets, from where.

The caller (the orchestrator, or the CLI) reads every path in ``NODE_FILES`` and hands the contents in
(None when the file is absent). ``NodeView.load`` parses them, follows the kubeadm drop-in to learn
which environment files feed the kubelet and in which order (docs/runtime-facts.md, the 10-kubeadm.conf drop-in:
EnvironmentFile= settings
override Environment=, later files override earlier ones, ``KUBELET_EXTRA_ARGS`` is last on the command
line), and resolves the kubelet's command line into flags that each know their file and line.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from shimshift.core.dropin import (
    NOT_KUBEADM_LAYOUT,
    KubeletDropin,
    UnitWord,
    cri_dockerd_exec_start,
    expand_exec_start,
    parse_kubelet_dropin,
)
from shimshift.core.errors import REFUSED, Refusal, with_node
from shimshift.core.flagfile import (
    KUBELET_ARGS_UNREADABLE,
    Assignment,
    EnvFile,
    FlagUse,
    flag_uses,
    group_flags,
    parse_env_file,
)
from shimshift.core.kubelet_config import KubeletConfigFile, parse_kubelet_config
from shimshift.core.node_hygiene import check_node_files
from shimshift.core.versions import FLAG_RULES_BY_NAME

# Finding codes (docs/findings.md).
NODE_FILE_MISSING = "node-file-missing"
KUBELET_FLAG_CONFLICT = "kubelet-flag-conflict"

if TYPE_CHECKING:
    from collections.abc import Mapping


KUBEADM_FLAGS_ENV = "/var/lib/kubelet/kubeadm-flags.env"
DEFAULT_KUBELET = "/etc/default/kubelet"  # Debian packages
SYSCONFIG_KUBELET = "/etc/sysconfig/kubelet"  # RPM packages
KUBELET_DROPIN_ETC = "/etc/systemd/system/kubelet.service.d/10-kubeadm.conf"
KUBELET_DROPIN_USR = "/usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf"
KUBELET_CONFIG = "/var/lib/kubelet/config.yaml"
INSTANCE_CONFIG = "/var/lib/kubelet/instance-config.yaml"
#: Ours: the drop-in that carries the moved dockershim settings to cri-dockerd.
CRI_DOCKERD_DROPIN = "/etc/systemd/system/cri-docker.service.d/10-shimshift.conf"
#: Read only, to keep the packaged command line (binary path, fd:// endpoint, the operator's flags).
CRI_DOCKERD_UNIT_ETC = "/etc/systemd/system/cri-docker.service"
CRI_DOCKERD_UNIT_USR = "/usr/lib/systemd/system/cri-docker.service"
CRI_DOCKERD_UNIT_LIB = "/lib/systemd/system/cri-docker.service"

#: Every file the caller must read and pass in, in a fixed order (also the order of plan changes).
NODE_FILES: tuple[str, ...] = (
    KUBEADM_FLAGS_ENV,
    DEFAULT_KUBELET,
    SYSCONFIG_KUBELET,
    KUBELET_DROPIN_ETC,
    KUBELET_DROPIN_USR,
    KUBELET_CONFIG,
    INSTANCE_CONFIG,
    CRI_DOCKERD_DROPIN,
    CRI_DOCKERD_UNIT_ETC,
    CRI_DOCKERD_UNIT_USR,
    CRI_DOCKERD_UNIT_LIB,
)

ENV_FILES = (KUBEADM_FLAGS_ENV, DEFAULT_KUBELET, SYSCONFIG_KUBELET)
KUBEADM_ARGS_VAR = "KUBELET_KUBEADM_ARGS"
EXTRA_ARGS_VAR = "KUBELET_EXTRA_ARGS"

#: Flags whose value shimshift reads or writes; the same one given twice with different values is refused.
_WATCHED = frozenset(FLAG_RULES_BY_NAME) | {"--config", "--cgroup-driver"}


@dataclass(frozen=True)
class KubeletFlag:
    """One flag on the kubelet's command line. ``use`` is set when it sits in an environment file that
    shimshift may edit; flags written in the drop-in itself are read-only (``use`` None)."""

    name: str
    value: str | None
    file: str
    line: int
    use: FlagUse | None

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True)
class NodeView:
    files: Mapping[str, bytes | None]
    dropin: KubeletDropin
    env_files: Mapping[str, EnvFile]  # the ones the drop-in reads and that exist
    flags: tuple[KubeletFlag, ...]  # the kubelet's command line, in order
    config: KubeletConfigFile | None  # /var/lib/kubelet/config.yaml if the kubelet reads it
    instance_config: KubeletConfigFile | None
    cri_dockerd_exec: tuple[UnitWord, ...] | None  # from the packaged unit, not from our drop-in
    cri_dockerd_unit_path: str | None
    node: str | None

    # ---- queries

    def all(self, name: str) -> list[KubeletFlag]:
        return [f for f in self.flags if f.name == name]

    def last(self, name: str) -> KubeletFlag | None:
        uses = self.all(name)
        return uses[-1] if uses else None

    def value(self, name: str) -> str | None:
        f = self.last(name)
        return None if f is None else f.value

    def refusal(
        self, what: str, hint: str, *, file: str | None = None, line: int | None = None, code: str = REFUSED
    ) -> Refusal:
        return Refusal(what, hint=hint, file=file, line=line, node=self.node, code=code)

    # ---- loading

    @classmethod
    def load(cls, files: Mapping[str, bytes | None], *, node: str | None = None) -> NodeView:
        unknown = sorted(set(files) - set(NODE_FILES))
        if unknown:
            raise Refusal(
                f"unexpected node file {unknown[0]}",
                hint="pass only the paths in NODE_FILES",
                file=unknown[0],
                node=node,
            )
        # Before any parser: a NUL or an oversized file is refused with its line, never copied on.
        check_node_files(files, order=NODE_FILES, node=node)
        dropin_path = next(
            (p for p in (KUBELET_DROPIN_ETC, KUBELET_DROPIN_USR) if files.get(p) is not None), None
        )
        if dropin_path is None:
            raise Refusal(
                "no kubeadm drop-in (10-kubeadm.conf) for kubelet.service",
                hint="shimshift handles kubeadm nodes; see `systemctl cat kubelet`; migrate it by hand",
                file=KUBELET_DROPIN_USR,
                node=node,
                code=NOT_KUBEADM_LAYOUT,
            )
        dropin = with_node(node, partial(parse_kubelet_dropin, dropin_path, files[dropin_path] or b""))

        used = {w.raw[1:] for w in dropin.exec_start[1:] if w.raw.startswith("$") and "{" not in w.raw}
        env: dict[str, tuple[str, EnvFile | None, Assignment | None, int]] = {}
        for name, value, line in dropin.environment:
            env[name] = (value, None, None, line)
        env_files: dict[str, EnvFile] = {}
        defined_in: dict[str, list[str]] = {}
        for path, optional, line in dropin.environment_files:
            if path not in ENV_FILES:
                raise Refusal(
                    f"the kubelet drop-in reads {path}, a file shimshift does not know",
                    hint="move its kubelet flags into /etc/default/kubelet or /etc/sysconfig/kubelet",
                    file=dropin_path,
                    line=line,
                    node=node,
                    code=NOT_KUBEADM_LAYOUT,
                )
            data = files.get(path)
            if data is None:
                if not optional:
                    raise Refusal(
                        f"the kubelet drop-in requires {path}, which is missing",
                        hint="restore the file (systemd cannot start the kubelet without it)",
                        file=dropin_path,
                        line=line,
                        node=node,
                        code=NODE_FILE_MISSING,
                    )
                continue
            parsed = with_node(node, partial(parse_env_file, path, data, unique=used))
            env_files[path] = parsed
            for a in parsed.assignments:
                env[a.key] = (a.value, parsed, a, a.line)
                if path not in defined_in.get(a.key, []):
                    defined_in.setdefault(a.key, []).append(path)

        if KUBEADM_ARGS_VAR not in used:
            raise Refusal(
                f"the kubelet's ExecStart does not use ${KUBEADM_ARGS_VAR}",
                hint="this is not the kubeadm layout; migrate this node by hand",
                file=dropin_path,
                line=dropin.exec_start_line,
                node=node,
                code=NOT_KUBEADM_LAYOUT,
            )
        for var in sorted(used):
            places = defined_in.get(var, [])
            if len(places) > 1:
                raise Refusal(
                    f"{var} is set in both {places[0]} and {places[-1]}; systemd uses only the last",
                    hint=f"keep {var} in one file",
                    file=places[-1],
                    node=node,
                    code=KUBELET_FLAG_CONFLICT,
                )

        flags: list[KubeletFlag] = []
        expanded = expand_exec_start(dropin, {k: v[0] for k, v in env.items()})
        seen_vars: set[str] = set()
        literal: list[str] = []
        for word in expanded:
            if word.var is None:
                literal.append(word.text)
                continue
            if word.var in seen_vars:
                continue
            seen_vars.add(word.var)
            _value, env_file, assignment, line = env[word.var]
            if env_file is not None and assignment is not None:
                uses = with_node(node, partial(flag_uses, env_file.path, assignment))
                flags.extend(KubeletFlag(u.name, u.value, u.file, u.line, u) for u in uses)
            else:
                flags.extend(_literal_flags(env[word.var][0].split(), dropin_path, line, node))
        flags.extend(_literal_flags(literal, dropin_path, dropin.exec_start_line, node))
        _check_duplicates(flags, node)

        config: KubeletConfigFile | None = None
        config_flag = [f for f in flags if f.name == "--config"]
        if config_flag:
            path = config_flag[-1].value or ""
            if path != KUBELET_CONFIG:
                raise Refusal(
                    f"the kubelet reads its config from {path}, not {KUBELET_CONFIG}",
                    hint="shimshift follows the kubeadm layout; migrate this node by hand",
                    file=config_flag[-1].file,
                    line=config_flag[-1].line,
                    node=node,
                    code=NOT_KUBEADM_LAYOUT,
                )
            data = files.get(KUBELET_CONFIG)
            if data is None:
                raise Refusal(
                    f"the kubelet is started with --config={KUBELET_CONFIG}, which is missing",
                    hint="restore the file (kubeadm writes it)",
                    file=KUBELET_CONFIG,
                    node=node,
                    code=NODE_FILE_MISSING,
                )
            config = with_node(node, partial(parse_kubelet_config, KUBELET_CONFIG, data))
        instance = files.get(INSTANCE_CONFIG)
        instance_config = (
            None
            if instance is None
            else with_node(node, partial(parse_kubelet_config, INSTANCE_CONFIG, instance))
        )
        unit_path = next(
            (
                p
                for p in (CRI_DOCKERD_UNIT_ETC, CRI_DOCKERD_UNIT_USR, CRI_DOCKERD_UNIT_LIB)
                if files.get(p) is not None
            ),
            None,
        )
        exec_words = None
        if unit_path is not None:
            unit_data = files[unit_path] or b""
            words = with_node(node, partial(cri_dockerd_exec_start, unit_path, unit_data))
            exec_words = tuple(words) if words else None
        return cls(
            files=dict(files),
            dropin=dropin,
            env_files=env_files,
            flags=tuple(flags),
            config=config,
            instance_config=instance_config,
            cri_dockerd_exec=exec_words,
            cri_dockerd_unit_path=unit_path,
            node=node,
        )




def _literal_flags(words: list[str], path: str, line: int, node: str | None) -> list[KubeletFlag]:
    grouped = group_flags(words)
    if isinstance(grouped, int):
        raise Refusal(
            f"{words[grouped]!r} on the kubelet's command line is neither a flag nor a value",
            hint="fix the drop-in",
            file=path,
            line=line,
            node=node,
            code=KUBELET_ARGS_UNREADABLE,
        )
    return [KubeletFlag(n, v, path, line, None) for n, v, _sep, _idx in grouped]


def _check_duplicates(flags: list[KubeletFlag], node: str | None) -> None:
    """The same flag twice with different values: refused inside one variable (a typo or a bad merge),
    and across files for the flags shimshift reads (the kubelet would take the last; we would have to
    guess which one the operator meant)."""
    first: dict[tuple[str, str, int], KubeletFlag] = {}
    watched: dict[str, KubeletFlag] = {}
    for f in flags:
        key = (f.name, f.file, f.line)
        prior = first.get(key)
        if prior is not None and prior.value != f.value:
            raise Refusal(
                f"{f.name} is given twice with different values ({prior.value!r} and {f.value!r})",
                hint=f"keep one {f.name}",
                file=f.file,
                line=f.line,
                node=node,
                code=KUBELET_FLAG_CONFLICT,
            )
        first.setdefault(key, f)
        if f.name in _WATCHED:
            other = watched.get(f.name)
            if other is not None and other.value != f.value:
                raise Refusal(
                    f"{f.name} is {other.value!r} at {other.where} but {f.value!r} here",
                    hint=f"keep one {f.name} (KUBELET_EXTRA_ARGS wins today; make that explicit)",
                    file=f.file,
                    line=f.line,
                    node=node,
                    code=KUBELET_FLAG_CONFLICT,
                )
            watched.setdefault(f.name, f)
