"""The migration plan for one node: which files change, how, and how to undo it.

Top to bottom, what happens to one node (the facts behind each rule, with their upstream
sources: docs/runtime-facts.md):

1. Read the kubelet's command line from the kubeadm layout (node_files.NodeView).
2. Decide where the kubelet runs today: dockershim (<=1.23, ``--container-runtime`` absent or
   ``docker``), cri-dockerd already (nothing to do), a dockershim-era configuration on a kubelet that no
   longer has dockershim (repair it), or another runtime (refused: not a Docker node).
3. Move the dockershim settings to cri-dockerd: ``--network-plugin``, ``--cni-*``, MTU, docker endpoint,
   image pull deadline, pause image, root directory (docs/runtime-facts.md#dockershims-settings-move-to-cri-dockerd),
   written as a drop-in for cri-docker.service whose ExecStart is the packaged one plus those flags.
4. Point the kubelet at cri-dockerd the way its version wants it: ``--container-runtime=remote`` plus
   the endpoint before 1.24 (kubernetes/website#42442), the endpoint flag from 1.24, and from 1.27 the flag if
   one is already used, else ``containerRuntimeEndpoint`` in config.yaml (kubernetes/kubernetes#112136);
   kubeadm's instance-config.yaml too when it exists (KEP-4656, NodeLocalCRISocket).
5. Remove the flags that only dockershim read (they make kubelet 1.24+ exit: kubernetes/website#34755) and any flag this
   kubelet version rejects; everything else in the files stays byte for byte.

Decisions where upstream is silent (whether cri-dockerd adopts dockershim's containers:
docs/runtime-facts.md#cri-dockerd):
cri-dockerd is pointed at dockershim's checkpoint directory (``--cri-dockerd-root-directory=
/var/lib/dockershim``, or the kubelet's own ``--experimental-dockershim-root-directory``) so that pods the
drain leaves in place (DaemonSets, hostPort) keep their checkpoints, and a rollback to dockershim finds
what cri-dockerd wrote. Pass ``keep_dockershim_checkpoints=False`` for cri-dockerd's own default.
When the kubelet set no network plugin, cri-dockerd gets ``--network-plugin=`` (dockershim's default
was none; cri-dockerd's is cni from v0.2.5), so pod networking does not change under the pods' feet.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from shimshift.core.dropin import (
    DEFAULT_CRI_DOCKERD_EXEC,
    NOT_KUBEADM_LAYOUT,
    render_cri_dockerd_dropin,
    systemd_quote,
)
from shimshift.core.errors import Refusal, with_node
from shimshift.core.findings import Finding, Subject, warning
from shimshift.core.flagfile import FlagEdit, encode, group_flags, parse_env_file, rewrite_assignment
from shimshift.core.kubelet_config import KubeletConfigFile, set_endpoint
from shimshift.core.kubelet_settings import CgroupDrivers, cgroup_driver, compare_cgroup_drivers, runtime_endpoint
from shimshift.core.node_files import (
    CRI_DOCKERD_DROPIN,
    INSTANCE_CONFIG,
    KUBEADM_ARGS_VAR,
    KUBEADM_FLAGS_ENV,
    KUBELET_CONFIG,
    KUBELET_DROPIN_USR,
    NODE_FILES,
    NodeView,
)
from shimshift.core.node_plan import FileChange, NodePlan, RuntimeState
from shimshift.core.versions import (
    DOCKERSHIM_ONLY_FLAGS,
    DOCKERSHIM_ROOT_DIRECTORY,
    FLAG_RULES,
    CriDockerdVersion,
    EndpointHome,
    FlagStatus,
    KubernetesVersion,
    cri_dockerd_facts,
    cri_dockerd_serves,
    facts_for,
    flag_status,
    is_cri_dockerd_endpoint,
    is_dockershim_endpoint,
    parse_cgroup_driver,
    parse_cri_dockerd_version,
    parse_kubelet_version,
)
from shimshift.core.wellknown import CRI_DOCKERD_ENDPOINT

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["plan_node"]

# The codes of the planner's refusals (docs/findings.md); the last two are the readiness check's codes
# for the same rules.
RUNTIME_UNKNOWN = "container-runtime-unknown"
NOT_DOCKERSHIM = "not-dockershim"
FLAG_IN_DROPIN = "flag-in-kubelet-dropin"
CRI_DOCKERD_UNIT_UNREADABLE = "cri-dockerd-unit-unreadable"
CRI_API_SKEW = "cri-api-skew"
CGROUP_DRIVER_MISMATCH = "cgroup-driver-mismatch"

# The codes of the plan's warnings (docs/findings.md).
TWO_KUBELET_DROPINS = "two-kubelet-dropins"
REMOVED_FLAGS_ONLY = "only-removing-rejected-flags"
DOCKERSHIM_FLAGS_LEFT = "dockershim-flags-left"
SETTING_NOT_CARRIED = "setting-not-carried"
NETWORK_PLUGIN_NONE = "network-plugin-none"
STREAMING_UNBOUND = "streaming-server-unbound"
PAUSE_IMAGE_DEFAULT = "pause-image-default"
CRI_VERSION_UNKNOWN = "cri-dockerd-version-unknown"
CGROUP_DRIVER_UNKNOWN = "cgroup-driver-unknown"
CGROUP_DRIVER_FROM_CRI = "cgroup-driver-from-cri"

_ENDPOINT = "--container-runtime-endpoint"
_RUNTIME = "--container-runtime"
_IMAGE_ENDPOINT = "--image-service-endpoint"
_ROOT_DIR = "--cri-dockerd-root-directory"
_STREAMING = "--streaming-bind-addr"
STREAMING_LOOPBACK = "127.0.0.1"


def plan_node(
    *,
    kubelet_version: str,
    files: Mapping[str, bytes | None],
    cri_dockerd_version: str | None,
    docker_cgroup_driver: str | None,
    node: str | None = None,
    cri_socket_annotation: str | None = None,
    keep_dockershim_checkpoints: bool = True,
) -> NodePlan:
    """Plan the move of one node's kubelet from dockershim to cri-dockerd.

    ``files`` maps each path of ``NODE_FILES`` to its content (None or missing: absent).
    ``cri_socket_annotation`` is the node's current kubeadm annotation, if the caller knows it.
    Raises Refusal (naming file, line and node) for input it cannot act on safely.
    """
    version = with_node(node, lambda: parse_kubelet_version(kubelet_version))
    cri_version = (
        None
        if cri_dockerd_version is None
        else with_node(node, lambda: parse_cri_dockerd_version(cri_dockerd_version))
    )
    docker_driver = (
        None
        if docker_cgroup_driver is None
        else with_node(node, lambda: parse_cgroup_driver(docker_cgroup_driver))
    )
    view = NodeView.load(files, node=node)
    return _Planner(
        view, version, cri_version, docker_driver, cri_socket_annotation, keep_dockershim_checkpoints
    ).plan()


class _Planner:
    def __init__(
        self,
        view: NodeView,
        version: KubernetesVersion,
        cri_version: CriDockerdVersion | None,
        docker_driver: str | None,
        annotation: str | None,
        keep_checkpoints: bool,
    ) -> None:
        self.view = view
        self.version = version
        self.minor = version.minor
        self.facts = facts_for(version)
        self.cri_version = cri_version
        self.docker_driver = docker_driver
        self.annotation = annotation
        self.keep_checkpoints = keep_checkpoints
        self.warnings: list[Finding] = []

    def warn(self, code: str, message: str, *, setting: str | None = None) -> None:
        subject = Subject.of_node(self.view.node) if self.view.node else None
        self.warnings.append(warning(code, message, subject=subject, setting=setting))

    def refusal(self, what: str, hint: str, *, code: str, file: str | None = None, line: int | None = None) -> Refusal:
        return self.view.refusal(what, hint, file=file, line=line, code=code)

    # ---- where the kubelet runs today

    def current_endpoint(self) -> tuple[str | None, str | None, int | None]:
        """(endpoint, file, line) as this kubelet version resolves it; file None: the version's default."""
        endpoint = runtime_endpoint(self.view, self.facts)
        return (None, None, None) if endpoint is None else (endpoint.value, endpoint.file, endpoint.line)

    def describe_endpoint(self) -> str:
        endpoint, file, line = self.current_endpoint()
        where = f"the kubelet {self.version} default" if file is None else f"{file}:{line}"
        return f"{endpoint}, set at {where}"

    def state(self) -> RuntimeState:
        if self.facts.has_dockershim:
            runtime = self.view.last(_RUNTIME)
            if runtime is None or runtime.value == "docker":
                # kubernetes/website#42442: with --container-runtime at its default `docker` the kubelet runs
                # dockershim, even
                # when --container-runtime-endpoint names another socket (it then serves dockershim there).
                return RuntimeState.DOCKERSHIM
            if runtime.value != "remote":
                raise self.refusal(
                    f"--container-runtime={runtime.value} is neither docker nor remote",
                    hint="fix the flag; kubelet 1.20-1.23 accept only those two values",
                    code=RUNTIME_UNKNOWN,
                    file=runtime.file,
                    line=runtime.line,
                )
        endpoint, file, line = self.current_endpoint()
        if endpoint is not None and is_cri_dockerd_endpoint(endpoint):
            return RuntimeState.CRI_DOCKERD
        if endpoint is None or is_dockershim_endpoint(endpoint):
            # Nothing serves dockershim.sock once the kubelet has no dockershim (or uses a remote runtime).
            return RuntimeState.STALE_DOCKERSHIM_CONFIG
        if file is None and any(self.view.all(f) for f in DOCKERSHIM_ONLY_FLAGS):
            # pkg/kubelet/apis/config/v1beta1/defaults.go@v1.27.0: a 1.27+ kubelet with dockershim flags and no
            # endpoint was a Docker node; today it
            # would fall back to containerd.
            return RuntimeState.STALE_DOCKERSHIM_CONFIG
        raise self.refusal(
            f"the kubelet uses {self.describe_endpoint()}: not Docker Engine through dockershim",
            hint="shimshift moves dockershim nodes to cri-dockerd; this node runs another runtime",
            code=NOT_DOCKERSHIM,
            file=file,
            line=line,
        )

    # ---- the plan

    def plan(self) -> NodePlan:
        view = self.view
        if (
            view.files.get(view.dropin.path) is not None
            and view.dropin.path != KUBELET_DROPIN_USR
            and (view.files.get(KUBELET_DROPIN_USR) is not None)
        ):
            self.warn(
                TWO_KUBELET_DROPINS,
                f"both {view.dropin.path} and {KUBELET_DROPIN_USR} exist; systemd uses {view.dropin.path}",
            )
        state = self.state()
        original_args = {k: v for k in (_RUNTIME, _ENDPOINT) if (v := view.value(k)) is not None}
        removed_here = {f.name for f in view.flags if flag_status(f.name, self.minor) is FlagStatus.REMOVED}
        new_files: dict[str, bytes | None] = dict(view.files)
        settings: dict[str, str] = {}
        cri_args: tuple[str, ...] = ()
        noop_reason: str | None = None

        if state is RuntimeState.CRI_DOCKERD:
            if removed_here:
                # Migrated before, but flags this kubelet rejects are left (a removed flag stops it): remove only those.
                new_files.update(self.kubelet_edits(set_flags={}, remove=removed_here))
                self.warn(
                    REMOVED_FLAGS_ONLY,
                    "the kubelet already uses cri-dockerd; only removing flags kubelet "
                    f"{self.version} rejects: {', '.join(sorted(removed_here))}"
                )
            else:
                noop_reason = f"the kubelet already uses cri-dockerd ({self.describe_endpoint()})"
            leftovers = sorted({f.name for f in view.flags if f.name in DOCKERSHIM_ONLY_FLAGS} - removed_here)
            if leftovers:
                # Harmless with a remote runtime before 1.24, fatal from 1.24 (kubernetes/kubernetes#106907): say so,
                # change nothing.
                self.warn(
                    DOCKERSHIM_FLAGS_LEFT,
                    f"dockershim-only flags left on the kubelet ({', '.join(leftovers)}); kubelet 1.24+ "
                    "exits on them: see `shimshift flags check --target-version 1.24`"
                )
            expected, expected_config = self.expectations(set_in_flag=view.last(_ENDPOINT) is not None)
        else:
            self.check_cri_api()
            self.check_cgroup_driver()
            settings, cri_args, dropin = self.cri_dockerd(state)
            new_files[CRI_DOCKERD_DROPIN] = dropin
            set_flags, config_endpoint = self.runtime_flags()
            remove = (set(DOCKERSHIM_ONLY_FLAGS) | removed_here) - set(set_flags)
            new_files.update(self.kubelet_edits(set_flags=set_flags, remove=remove))
            if config_endpoint:
                new_files[KUBELET_CONFIG] = with_node(
                    view.node, partial(set_endpoint, _cfg(view.config), CRI_DOCKERD_ENDPOINT)
                )
            if view.instance_config is not None:
                # KEP-4656: kubeadm 1.32+ (NodeLocalCRISocket) reads the node's socket from this file.
                instance = view.instance_config
                new_files[INSTANCE_CONFIG] = with_node(
                    view.node, partial(set_endpoint, instance, CRI_DOCKERD_ENDPOINT)
                )
            expected, expected_config = self.expectations(set_in_flag=_ENDPOINT in set_flags)

        changes = tuple(
            FileChange(path, view.files.get(path), new_files.get(path))
            for path in NODE_FILES
            if new_files.get(path) != view.files.get(path)
        )
        # What the plan guarantees is gone afterwards. A node already on cri-dockerd keeps its harmless
        # pre-1.24 leftovers (only warned about above), so verify must not trip over them.
        migrating = state is not RuntimeState.CRI_DOCKERD
        forbidden = tuple(
            r.flag
            for r in FLAG_RULES
            if (migrating and r.dockershim_only) or flag_status(r.flag, self.minor) is FlagStatus.REMOVED
        )
        return NodePlan(
            kubelet_version=str(self.version),
            node=view.node,
            state=state,
            changes=changes,
            cri_socket_before=self.annotation,
            cri_socket_after=CRI_DOCKERD_ENDPOINT,
            expected_kubelet_args=expected,
            forbidden_kubelet_args=forbidden,
            expected_kubelet_config=expected_config,
            cri_dockerd_settings=settings,
            cri_dockerd_args=cri_args,
            noop_reason=noop_reason,
            warnings=tuple(self.warnings),
            original_kubelet_args=original_args,
            original_forbidden_kubelet_args=tuple(k for k in expected if k not in original_args),
        )

    def runtime_flags(self) -> tuple[dict[str, str], bool]:
        """Flags to set on the kubelet, and whether config.yaml gets containerRuntimeEndpoint."""
        view = self.view
        flags: dict[str, str] = {}
        config_endpoint = False
        if self.facts.needs_remote_runtime_flag:
            # kubernetes/website#42442: before 1.24 the endpoint alone would keep dockershim (serving on
            # cri-dockerd's path); `remote` makes the kubelet a CRI client.
            flags[_RUNTIME] = "remote"
            flags[_ENDPOINT] = CRI_DOCKERD_ENDPOINT
        elif self.facts.endpoint_home is EndpointHome.FLAG:
            flags[_ENDPOINT] = CRI_DOCKERD_ENDPOINT
            if view.last(_RUNTIME) is not None:
                flags[_RUNTIME] = (
                    "remote"  # deprecated in 1.24-1.26 but accepted; `remote` is its only valid value
                )
        else:
            # 1.27+ (#112136): keep the endpoint where it is; with none, the config file is its home
            # (kubeadm 1.34+ puts it there through instance-config.yaml, kubernetes/kubernetes#131981).
            has_flag = view.last(_ENDPOINT) is not None
            has_field = (
                view.config is not None and view.config.data.get("containerRuntimeEndpoint") is not None
            )
            if has_flag or view.config is None:
                flags[_ENDPOINT] = CRI_DOCKERD_ENDPOINT
            if view.config is not None and (has_field or not has_flag):
                config_endpoint = True
        image = view.last(_IMAGE_ENDPOINT)
        if image is not None and image.value and is_dockershim_endpoint(image.value):
            flags[_IMAGE_ENDPOINT] = CRI_DOCKERD_ENDPOINT
        return flags, config_endpoint

    def expectations(self, *, set_in_flag: bool) -> tuple[dict[str, str], dict[str, str]]:
        if self.facts.needs_remote_runtime_flag:
            return {_RUNTIME: "remote", _ENDPOINT: CRI_DOCKERD_ENDPOINT}, {}
        if self.facts.endpoint_home is EndpointHome.FLAG:
            return {_ENDPOINT: CRI_DOCKERD_ENDPOINT}, {}
        args = {_ENDPOINT: CRI_DOCKERD_ENDPOINT} if set_in_flag else {}
        # The live config reflects a flag override too from 1.27
        # (docs/runtime-facts.md#telling-dockershim-from-cri-dockerd-on-a-node).
        return args, {"containerRuntimeEndpoint": CRI_DOCKERD_ENDPOINT}

    def kubelet_edits(self, *, set_flags: Mapping[str, str], remove: set[str]) -> dict[str, bytes | None]:
        view = self.view
        for f in view.flags:
            if f.use is None and (f.name in remove or (f.name in set_flags and f.value != set_flags[f.name])):
                raise self.refusal(
                    f"{f.name} is written in the kubelet drop-in itself, which shimshift does not edit",
                    hint="move the flag into /etc/default/kubelet (KUBELET_EXTRA_ARGS) and retry",
                    code=FLAG_IN_DROPIN,
                    file=f.file,
                    line=f.line,
                )
        append = [(name, value) for name, value in set_flags.items() if not view.all(name)]
        targets: dict[tuple[str, str], None] = {}
        for f in view.flags:
            if f.use is not None:
                targets[(f.use.file, f.use.key)] = None
        if append:
            if KUBEADM_FLAGS_ENV not in {p for p, _opt, _line in view.dropin.environment_files}:
                raise self.refusal(
                    f"the kubelet drop-in does not read {KUBEADM_FLAGS_ENV}",
                    hint="this is not the kubeadm layout; migrate this node by hand",
                    code=NOT_KUBEADM_LAYOUT,
                    file=view.dropin.path,
                )
            targets[(KUBEADM_FLAGS_ENV, KUBEADM_ARGS_VAR)] = None
        out: dict[str, bytes | None] = {}
        texts: dict[str, bytes] = {}
        for path, key in targets:
            env = view.env_files.get(path)
            if path in texts:  # a second variable in a file already edited
                env = with_node(view.node, partial(parse_env_file, path, texts[path], unique=()))
            elif env is None:  # kubeadm-flags.env absent but read optionally: create it as kubeadm would
                env = parse_env_file(path, b"")
            edit = FlagEdit(
                set=set_flags,
                remove=frozenset(remove),
                append=append if (path, key) == (KUBEADM_FLAGS_ENV, KUBEADM_ARGS_VAR) else (),
            )
            texts[path] = encode(with_node(view.node, partial(rewrite_assignment, env, key, edit)))
        out.update(texts)
        return out

    def cri_dockerd(self, state: RuntimeState) -> tuple[dict[str, str], tuple[str, ...], bytes]:
        """The moved settings, cri-dockerd's full command line, and the drop-in text carrying it."""
        view = self.view
        settings: dict[str, str] = {}
        sources: dict[str, str] = {}
        for rule in FLAG_RULES:
            flag = view.last(rule.flag)
            if rule.cri_dockerd_flag is None or flag is None or flag.value is None:
                continue
            if (
                rule.flag == "--hairpin-mode"
                and self.cri_version is not None
                and not self.cri_version.at_least(0, 2, 2)
            ):
                self.warn(
                    SETTING_NOT_CARRIED,
                    f"cri-dockerd {self.cri_version} has no --hairpin-mode (v0.2.2+); not carried",
                    setting="--hairpin-mode",
                )
                continue
            settings[rule.cri_dockerd_flag] = flag.value
            sources[rule.cri_dockerd_flag] = flag.where
        defaults: set[str] = set()
        if state is RuntimeState.DOCKERSHIM and "--network-plugin" not in settings:
            # dockershim's default network plugin was none; cri-dockerd's is cni from v0.2.5 (Mirantis/cri-dockerd#103).
            settings["--network-plugin"] = ""
            sources["--network-plugin"] = "dockershim default (no network plugin)"
            defaults.add("--network-plugin")
            self.warn(
                NETWORK_PLUGIN_NONE,
                "the kubelet set no --network-plugin; cri-dockerd keeps dockershim's: none",
                setting="--network-plugin",
            )
        if state is RuntimeState.DOCKERSHIM and self.keep_checkpoints and _ROOT_DIR not in settings:
            settings[_ROOT_DIR] = DOCKERSHIM_ROOT_DIRECTORY
            sources[_ROOT_DIR] = "dockershim's default root (keeps its sandbox checkpoints)"
            defaults.add(_ROOT_DIR)
        if _STREAMING not in settings and (self.cri_version is None or self.cri_version.at_least(0, 2, 6)):
            # dockershim's streaming server (exec, attach, port-forward) listened on localhost only
            # (pkg/kubelet/kubelet.go@v1.23.17, getStreamingConfig);
            # cri-dockerd's listens on every address unless told. Address only: v0.3.17 cmd/server.go
            # parses it with netip and picks a free port, as dockershim's localhost:0 did.
            settings[_STREAMING] = STREAMING_LOOPBACK
            sources[_STREAMING] = "dockershim's streaming server listened on localhost only"
            defaults.add(_STREAMING)
        elif _STREAMING not in settings:
            self.warn(
                STREAMING_UNBOUND,
                f"cri-dockerd {self.cri_version} has no {_STREAMING} (v0.2.6+): its streaming server will "
                "listen on every address, where dockershim's listened on localhost (Mirantis/cri-dockerd#106)",
                setting=_STREAMING,
            )
        if "--pod-infra-container-image" not in settings:
            facts = None if self.cri_version is None else cri_dockerd_facts(self.cri_version)
            default = facts.default_pause_image if facts is not None else "its built-in default"
            self.warn(
                PAUSE_IMAGE_DEFAULT,
                f"the kubelet set no --pod-infra-container-image; cri-dockerd will use {default} "
                "(Mirantis/cri-dockerd#230)",
                setting="--pod-infra-container-image",
            )

        if view.cri_dockerd_exec is not None:
            base_raw = [w.raw for w in view.cri_dockerd_exec]
            base_text = [w.text for w in view.cri_dockerd_exec]
        else:
            base_text = list(DEFAULT_CRI_DOCKERD_EXEC)
            base_raw = [systemd_quote(w) for w in base_text]
        grouped = group_flags(base_text[1:])
        if isinstance(grouped, int):
            raise self.refusal(
                f"{base_text[1 + grouped]!r} in cri-dockerd's ExecStart is neither a flag nor a value",
                hint="fix the cri-docker.service unit",
                code=CRI_DOCKERD_UNIT_UNREADABLE,
                file=view.cri_dockerd_unit_path,
            )
        keep_raw, keep_text = [base_raw[0]], [base_text[0]]
        for name, _value, _sep, idx in grouped:
            if name in settings and name not in defaults:
                continue  # the kubelet's value replaces the unit's
            settings.pop(name, None)  # the operator set it on cri-dockerd already; keep theirs
            keep_raw.extend(base_raw[1 + i] for i in idx)
            keep_text.extend(base_text[1 + i] for i in idx)
        words = [f"{k}={v}" for k, v in settings.items()]
        exec_raw = keep_raw + [self.unit_word(name, word, sources) for name, word in zip(settings, words, strict=True)]
        comment = [
            "Written by shimshift: the settings the kubelet's dockershim had, now given to cri-dockerd.",
            *(f"  {k}={v}  <- {sources[k]}" for k, v in settings.items()),
            f"Base command line: {view.cri_dockerd_unit_path or 'the packaged cri-docker.service'}.",
            "To undo: delete this file, then `systemctl daemon-reload && systemctl restart cri-docker`.",
        ]
        dropin = render_cri_dockerd_dropin(exec_words=exec_raw, comment=comment)
        return settings, tuple(keep_text + words), dropin

    def unit_word(self, name: str, word: str, sources: Mapping[str, str]) -> str:
        """``word`` quoted for ExecStart=; a value systemd cannot take is refused at the flag's file:line."""
        try:
            return systemd_quote(word)
        except Refusal as exc:
            file, _, line = sources.get(name, "").rpartition(":")
            raise self.refusal(
                exc.what, exc.hint, file=file or None, line=int(line) if line.isdigit() else None, code=exc.code
            ) from exc

    def check_cri_api(self) -> None:
        if self.cri_version is None:
            self.warn(CRI_VERSION_UNKNOWN, "cri-dockerd version unknown: CRI API compatibility not checked")
            return
        if not cri_dockerd_serves(self.version, self.cri_version):
            raise self.refusal(
                f"cri-dockerd {self.cri_version} and kubelet {self.version} share no CRI API version",
                hint="kubelet 1.26+ needs cri-dockerd 0.3.0+; kubelet 1.22 and older need cri-dockerd 0.3.21 "
                "or 0.4.1 at most (v1alpha2); install a matching cri-dockerd (Mirantis/cri-dockerd#136)",
                code=CRI_API_SKEW,
            )

    def check_cgroup_driver(self) -> None:
        """Mirantis/cri-dockerd#101: dockershim refused a cgroup driver mismatch; cri-dockerd does not notice it."""
        kubelet = cgroup_driver(self.view)
        kubelet_driver, where = kubelet.value, kubelet.where
        drivers = compare_cgroup_drivers(kubelet, self.docker_driver, facts=self.facts, cri_version=self.cri_version)
        if drivers is CgroupDrivers.UNKNOWN:
            self.warn(
                CGROUP_DRIVER_UNKNOWN,
                f"Docker's cgroup driver unknown; the kubelet uses {kubelet_driver} ({where}) and "
                "cri-dockerd "
                "will not check that they match (cri-dockerd#101)"
            )
            return
        if drivers is CgroupDrivers.MATCH:
            return
        if drivers is CgroupDrivers.TAKEN_FROM_CRI:
            self.warn(
                CGROUP_DRIVER_FROM_CRI,
                f"the kubelet's cgroupDriver {kubelet_driver} differs from Docker's {self.docker_driver}; "
                f"kubelet {self.version} takes Docker's from cri-dockerd {self.cri_version} "
                "(KubeletCgroupDriverFromCRI)",
                setting="cgroupDriver",
            )
            return
        raise self.refusal(
            f"the kubelet's cgroup driver is {kubelet_driver} but Docker's is {self.docker_driver}",
            hint=f"set cgroupDriver: {self.docker_driver} for the kubelet first; cri-dockerd would run "
            "with the "
            "mismatch silently (cri-dockerd#101)",
            file=kubelet.file,
            line=kubelet.line,
            code=CGROUP_DRIVER_MISMATCH,
        )


def _cfg(config: KubeletConfigFile | None) -> KubeletConfigFile:
    if config is None:  # pragma: no cover - runtime_flags() only asks for a config edit when there is one
        raise Refusal("no kubelet config to edit")
    return config
