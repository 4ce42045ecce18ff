"""The per-node migration as data: the steps in order, and the pure checks that decide them.

The order is the manual procedure's (the Kubernetes task page,
docs/runtime-facts.md#the-official-procedure-and-what-it-leaves-out) with the
parts it leaves out made explicit: a preflight that touches nothing, the cri-dockerd restart when the
plan moved dockershim's settings to it, and a verify that looks at the running kubelet and the CRI
socket rather than at `containerRuntimeVersion`, which reads `docker://...` both before and after
(docs/runtime-facts.md#telling-dockershim-from-cri-dockerd-on-a-node).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from shimshift.core.findings import Finding, error

ROLLBACK_PREFIX = "rollback:"


class Step(StrEnum):
    """Every step of every procedure, forward and rollback; its value is what the journal records."""

    INSTALL = "install-cri-dockerd"  # only with --install-cri-dockerd; a no-op otherwise
    PREFLIGHT = "preflight"
    CORDON = "cordon"
    DRAIN = "drain"
    WRITE_CONFIG = "write-config"
    ANNOTATE = "annotate"
    RESTART_CRI_DOCKERD = "restart-cri-dockerd"
    RESTART_KUBELET = "restart-kubelet"
    VERIFY = "verify"
    UNCORDON = "uncordon"
    # What `upgrade` adds between the cri-dockerd restart and the kubelet restart (core/upgrade/plan.py).
    INSTALL_KUBEADM = "install-kubeadm"
    KUBEADM_UPGRADE_PLAN = "kubeadm-upgrade-plan"
    KUBEADM_UPGRADE = "kubeadm-upgrade"
    INSTALL_KUBELET = "install-kubelet-kubectl"
    # The upgrade's rollback, before the migration's (a worker, or a control-plane node before kubeadm
    # upgrade succeeded).
    RESTORE_BINARIES = "rollback:restore-binaries"
    RESTORE_KUBEADM_FILES = "rollback:restore-kubeadm-files"
    # The migration's rollback: back to dockershim, proven, uncordoned.
    RESTORE_CONFIG = "rollback:restore-config"
    RESTORE_ANNOTATION = "rollback:restore-annotation"
    ROLLBACK_RESTART_CRI_DOCKERD = "rollback:restart-cri-dockerd"
    ROLLBACK_RESTART_KUBELET = "rollback:restart-kubelet"
    ROLLBACK_VERIFY = "rollback:verify"
    ROLLBACK_UNCORDON = "rollback:uncordon"

    @property
    def is_rollback(self) -> bool:
        return self.value.startswith(ROLLBACK_PREFIX)


MIGRATION_STEPS: tuple[Step, ...] = (
    Step.INSTALL,
    Step.PREFLIGHT,
    Step.CORDON,
    Step.DRAIN,
    Step.WRITE_CONFIG,
    Step.ANNOTATE,
    Step.RESTART_CRI_DOCKERD,
    Step.RESTART_KUBELET,
    Step.VERIFY,
    Step.UNCORDON,
)
MIGRATION_ROLLBACK: tuple[Step, ...] = (
    Step.RESTORE_CONFIG,
    Step.RESTORE_ANNOTATION,
    Step.ROLLBACK_RESTART_CRI_DOCKERD,
    Step.ROLLBACK_RESTART_KUBELET,
    Step.ROLLBACK_VERIFY,
    Step.ROLLBACK_UNCORDON,
)

# Steps after which the node's configuration may differ from what it was: a failure from here on
# needs a rollback of files and annotation, not just an uncordon.
FIRST_CHANGING_STEP = Step.WRITE_CONFIG


def changing_steps(sequence: tuple[Step, ...] = MIGRATION_STEPS) -> frozenset[Step]:
    """The steps of ``sequence`` after which the node may differ from what it was (files, annotation,
    binaries): a failure in one of them needs a rollback, not just an uncordon."""
    return frozenset(sequence[sequence.index(FIRST_CHANGING_STEP) :])


def changes_configuration(step: Step, sequence: tuple[Step, ...] = MIGRATION_STEPS) -> bool:
    return step in changing_steps(sequence)


def remaining_steps(finished: Iterable[str], sequence: tuple[Step, ...] = MIGRATION_STEPS) -> list[Step]:
    """Steps of ``sequence`` still to run after a crash: everything after the last one that finished.

    A step that started but did not finish runs again; every step is written to be idempotent.
    """
    done = set(finished)
    last = max((index for index, step in enumerate(sequence) if step in done), default=-1)
    return list(sequence[last + 1 :])


@dataclass(frozen=True)
class SandboxRef:
    namespace: str
    name: str
    uid: str


@dataclass(frozen=True)
class PodRef:
    namespace: str
    name: str
    uid: str
    # Mirror pods (static pods) carry the kubelet's own UID in this annotation; the sandbox has it, not
    # the API object's UID.
    config_hash: str | None = None

    @property
    def runtime_uid(self) -> str:
        return self.config_hash or self.uid


def split_cmdline(raw: bytes) -> list[str]:
    """/proc/<pid>/cmdline: NUL-separated, NUL-terminated."""
    return [part.decode("utf-8", "replace") for part in raw.split(b"\0") if part]


def kubelet_args(argv: Sequence[str]) -> dict[str, str]:
    """The kubelet's flags as a mapping; both `--flag=value` and `--flag value` forms, last one wins."""
    args: dict[str, str] = {}
    index = 1
    while index < len(argv):
        item = argv[index]
        if item.startswith("--"):
            if "=" in item:
                name, value = item.split("=", 1)
            elif index + 1 < len(argv) and not argv[index + 1].startswith("--"):
                name, value = item, argv[index + 1]
                index += 1
            else:
                name, value = item, "true"
            args[name] = value
        index += 1
    return args


# The codes of the checks below (docs/findings.md).
RUNNING_FLAG_MISSING = "running-flag-missing"
RUNNING_FLAG_WRONG = "running-flag-wrong"
RUNNING_FLAG_LEFT = "running-flag-left"
RUNNING_CONFIG_WRONG = "running-config-wrong"


def cmdline_problems(
    argv: Sequence[str], *, expected: Mapping[str, str], forbidden: Iterable[str], process: str = "kubelet"
) -> list[Finding]:
    """What is wrong with the running ``process``'s command line; empty when it is right."""
    args = kubelet_args(argv)
    problems = []
    for flag, value in expected.items():
        actual = args.get(flag)
        if actual is None:
            text = f"the running {process} has no {flag} (expected {flag}={value})"
            problems.append(error(RUNNING_FLAG_MISSING, text, setting=flag))
        elif actual != value:
            text = f"the running {process} has {flag}={actual} (expected {value})"
            problems.append(error(RUNNING_FLAG_WRONG, text, setting=flag))
    problems.extend(
        error(RUNNING_FLAG_LEFT, f"the running {process} still has {flag}={args[flag]}", setting=flag)
        for flag in forbidden
        if flag in args
    )
    return problems


def missing_sandboxes(pods: Iterable[PodRef], sandboxes: Iterable[SandboxRef]) -> list[PodRef]:
    """Running pods of the node that the CRI socket does not list as ready sandboxes."""
    seen = {sandbox.uid for sandbox in sandboxes}
    seen_names = {(sandbox.namespace, sandbox.name) for sandbox in sandboxes}
    return [pod for pod in pods if pod.runtime_uid not in seen and (pod.namespace, pod.name) not in seen_names]


def config_problems(live: Mapping[str, object], *, expected: Mapping[str, str]) -> list[Finding]:
    """What the running kubelet's configuration (/configz) lacks of what the plan wrote to config.yaml."""
    return [
        error(
            RUNNING_CONFIG_WRONG,
            f"the running kubelet's configuration has {key}={live.get(key)!r} (expected {value})",
            setting=key,
        )
        for key, value in expected.items()
        if live.get(key) != value
    ]
