"""Which pods a drain may remove, and why: kubectl drain's filters as plain functions.

Pure: a pod (as :class:`PodFacts`) and the :class:`DrainOptions` in, a :class:`PodDecision` out. The
adapters do the listing and the DaemonSet lookups (``shimshift.adapters.kube.drain_pods``), the evictions
and the waiting (``.evictions``), the budgets' dry runs (``.drain_budgets``); everything that decides
lives here so it can be tested without a cluster.

The filters, their order, their short-circuit and their messages follow kubectl v1.23
(kubernetes/kubectl pkg/drain/filters.go at kubernetes-1.23.17):

1. skip-deleted  2. DaemonSet  3. mirror pod  4. emptyDir local storage  5. unreplicated  6. extra filters

The first filter that answers "do not delete" (skip or error) ends the evaluation. A warning from a filter
that still allows deletion is overwritten by the next filter's answer, exactly like kubectl (a TODO in
filters.go says so); we keep that quirk so our warnings match kubectl's output pod for pod.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shimshift.core.errors import OPTION_INVALID, Refusal
from shimshift.core.findings import Finding, Subject, error
from shimshift.core.wellknown import MIRROR_POD_ANNOTATION

# kubectl's own texts (filters.go), reused verbatim so operators recognise them.
DAEMONSET_FATAL = "DaemonSet-managed Pods (use --ignore-daemonsets to ignore)"
DAEMONSET_WARNING = "ignoring DaemonSet-managed Pods"
LOCAL_STORAGE_FATAL = "Pods with local storage (use --delete-emptydir-data to override)"
LOCAL_STORAGE_WARNING = "deleting Pods with local storage"
UNMANAGED_FATAL = "Pods declare no controller (use --force to override)"
UNMANAGED_WARNING = "deleting Pods that declare no controller"

FINISHED_PHASES = frozenset({"Succeeded", "Failed"})


class DryRun(enum.StrEnum):
    """kubectl's ``--dry-run`` values."""

    NONE = "none"
    CLIENT = "client"
    SERVER = "server"


class Verdict(enum.StrEnum):
    """What a filter says about a pod (kubectl's PodDeleteStatus reasons)."""

    DELETE = "delete"  # okay, or okay with a warning
    SKIP = "skip"  # left in place (DaemonSet with --ignore-daemonsets, mirror pod, long-deleted pod)
    ERROR = "error"  # refused: nothing on the node is evicted while any pod has this verdict


@dataclass(frozen=True)
class DrainOptions:
    """kubectl drain's options, with kubectl's defaults (kubernetes/kubectl pkg/cmd/drain/drain.go).

    ``grace_period`` -1 means "the pod's own terminationGracePeriodSeconds"; ``timeout`` 0 means no limit;
    ``skip_wait_for_delete_timeout`` 0 means never skip. ``eviction_retry_delay`` is kubectl's
    EvictErrorRetryDelay (5 s, no flag in kubectl); tests shorten it.
    """

    ignore_daemonsets: bool = False
    delete_emptydir_data: bool = False
    force: bool = False
    grace_period: int = -1
    timeout: float = 0.0
    pod_selector: str | None = None
    disable_eviction: bool = False
    skip_wait_for_delete_timeout: int = 0
    dry_run: DryRun = DryRun.NONE
    chunk_size: int = 500
    eviction_retry_delay: float = 5.0

    def __post_init__(self) -> None:
        if self.grace_period < -1:
            raise Refusal(
                f"--grace-period={self.grace_period} is below -1",
                "use -1 for the pod's own grace period, 0 to delete at once, or seconds",
                code=OPTION_INVALID,
            )
        if self.timeout < 0:
            raise Refusal(
                f"--timeout={self.timeout} is negative", "use 0 for no limit, or seconds", code=OPTION_INVALID
            )
        if self.skip_wait_for_delete_timeout < 0:
            raise Refusal(
                f"--skip-wait-for-delete-timeout={self.skip_wait_for_delete_timeout} is negative",
                "use 0 to never skip, or seconds",
                code=OPTION_INVALID,
            )
        if self.chunk_size < 0:
            raise Refusal(
                f"--chunk-size={self.chunk_size} is negative", "use 0 for no paging, or a count", code=OPTION_INVALID
            )
        if self.eviction_retry_delay < 0:
            raise Refusal("eviction retry delay is negative", "use seconds >= 0", code=OPTION_INVALID)


@dataclass(frozen=True)
class ControllerRef:
    """The pod's owner reference that has ``controller: true``."""

    kind: str
    name: str
    api_version: str = ""


@dataclass(frozen=True)
class PodFacts:
    """What the filters need to know about one pod.

    ``daemonset_lookup_error`` is filled by the adapter for a DaemonSet-managed, unfinished pod whose
    DaemonSet GET failed (kubectl puts the API error text in the refusal); ``daemonset_not_found`` tells
    whether that error was a 404 (then ``--force`` deletes the orphan with a warning).
    """

    namespace: str
    name: str
    uid: str = ""
    phase: str = ""
    deletion_timestamp: datetime | None = None
    controller: ControllerRef | None = None
    annotations: Mapping[str, str] = field(default_factory=dict)
    has_emptydir: bool = False
    daemonset_lookup_error: str | None = None
    daemonset_not_found: bool = False

    @property
    def key(self) -> str:
        """``namespace/name``, the form used in every report."""
        return f"{self.namespace}/{self.name}"

    @property
    def finished(self) -> bool:
        return self.phase in FINISHED_PHASES

    @property
    def is_mirror(self) -> bool:
        return MIRROR_POD_ANNOTATION in self.annotations

    @property
    def daemonset_managed(self) -> bool:
        return self.controller is not None and self.controller.kind == "DaemonSet"


@dataclass(frozen=True)
class PodDecision:
    """One filter's answer. ``reason`` is kubectl's message (an error or a warning); empty when plain okay."""

    verdict: Verdict
    reason: str = ""
    filter: str = ""

    @property
    def delete(self) -> bool:
        return self.verdict is Verdict.DELETE


OKAY = PodDecision(Verdict.DELETE)

PodFilter = Callable[[PodFacts, DrainOptions, datetime], PodDecision]


def skip_deleted_filter(pod: PodFacts, options: DrainOptions, now: datetime) -> PodDecision:
    """Skip a pod deleted more than ``--skip-wait-for-delete-timeout`` seconds ago (only when that is > 0).

    kubectl truncates the age to whole seconds and compares with ``>``.
    """
    if options.skip_wait_for_delete_timeout > 0 and pod.deletion_timestamp is not None:
        age = int((now - pod.deletion_timestamp).total_seconds())
        if age > options.skip_wait_for_delete_timeout:
            return PodDecision(Verdict.SKIP, "", "skip-deleted")
    return OKAY


def daemonset_filter(pod: PodFacts, options: DrainOptions, now: datetime) -> PodDecision:
    """DaemonSet pods are never deleted, except finished ones and (with --force) orphans."""
    if not pod.daemonset_managed or pod.finished:
        return OKAY
    if pod.daemonset_lookup_error is not None:
        if pod.daemonset_not_found and options.force:
            return PodDecision(Verdict.DELETE, pod.daemonset_lookup_error, "daemonset")
        return PodDecision(Verdict.ERROR, pod.daemonset_lookup_error, "daemonset")
    if not options.ignore_daemonsets:
        return PodDecision(Verdict.ERROR, DAEMONSET_FATAL, "daemonset")
    return PodDecision(Verdict.SKIP, DAEMONSET_WARNING, "daemonset")


def mirror_pod_filter(pod: PodFacts, options: DrainOptions, now: datetime) -> PodDecision:
    """Static pods (the kubelet's mirror pods) cannot be evicted through the API: skip them silently."""
    if pod.is_mirror:
        return PodDecision(Verdict.SKIP, "", "mirror")
    return OKAY


def local_storage_filter(pod: PodFacts, options: DrainOptions, now: datetime) -> PodDecision:
    """An emptyDir volume (not hostPath) is data lost on eviction: refuse unless --delete-emptydir-data."""
    if not pod.has_emptydir or pod.finished:
        return OKAY
    if not options.delete_emptydir_data:
        return PodDecision(Verdict.ERROR, LOCAL_STORAGE_FATAL, "local-storage")
    return PodDecision(Verdict.DELETE, LOCAL_STORAGE_WARNING, "local-storage")


def unreplicated_filter(pod: PodFacts, options: DrainOptions, now: datetime) -> PodDecision:
    """A pod no controller recreates is gone for good: refuse unless --force."""
    if pod.finished or pod.controller is not None:
        return OKAY
    if options.force:
        return PodDecision(Verdict.DELETE, UNMANAGED_WARNING, "unreplicated")
    return PodDecision(Verdict.ERROR, UNMANAGED_FATAL, "unreplicated")


BASE_FILTERS: tuple[PodFilter, ...] = (
    skip_deleted_filter,
    daemonset_filter,
    mirror_pod_filter,
    local_storage_filter,
    unreplicated_filter,
)


def decide(
    pod: PodFacts,
    options: DrainOptions,
    *,
    now: datetime,
    extra_filters: Sequence[PodFilter] = (),
) -> PodDecision:
    """Run the filters in kubectl's order; the first "do not delete" answer wins, else the last answer."""
    decision = OKAY
    for pod_filter in (*BASE_FILTERS, *extra_filters):
        decision = pod_filter(pod, options, now)
        if not decision.delete:
            break
    return decision


@dataclass(frozen=True)
class DrainPlan:
    """The filters' verdict on every pod of one node, in listing order."""

    delete: tuple[PodFacts, ...]
    skip: tuple[tuple[PodFacts, PodDecision], ...]
    errors: tuple[tuple[PodFacts, PodDecision], ...]
    warnings: tuple[tuple[PodFacts, PodDecision], ...]

    @property
    def refused(self) -> bool:
        """kubectl evicts nothing on a node while any pod is refused."""
        return bool(self.errors)

    def error_messages(self) -> list[str]:
        """kubectl's aggregated form: ``cannot delete <reason>: ns/a, ns/b``, one line per reason."""
        return _grouped("cannot delete ", self.errors)

    def warning_messages(self) -> list[str]:
        """kubectl's form: ``<warning>: ns/a, ns/b``, one line per warning."""
        return _grouped("", self.warnings)


def _grouped(prefix: str, items: Iterable[tuple[PodFacts, PodDecision]]) -> list[str]:
    by_reason: dict[str, list[str]] = {}
    for pod, decision in items:
        by_reason.setdefault(decision.reason, []).append(pod.key)
    return [f"{prefix}{reason}: {', '.join(keys)}" for reason, keys in by_reason.items()]


def plan_pods(
    pods: Iterable[PodFacts],
    options: DrainOptions,
    *,
    now: datetime,
    extra_filters: Sequence[PodFilter] = (),
) -> DrainPlan:
    """Sort a node's pods into delete / skip / error, keeping kubectl's warnings."""
    delete: list[PodFacts] = []
    skip: list[tuple[PodFacts, PodDecision]] = []
    errors: list[tuple[PodFacts, PodDecision]] = []
    warnings: list[tuple[PodFacts, PodDecision]] = []
    for pod in pods:
        decision = decide(pod, options, now=now, extra_filters=extra_filters)
        if decision.verdict is Verdict.ERROR:
            errors.append((pod, decision))
            continue
        if decision.reason:
            warnings.append((pod, decision))
        if decision.verdict is Verdict.DELETE:
            delete.append(pod)
        else:
            skip.append((pod, decision))
    return DrainPlan(tuple(delete), tuple(skip), tuple(errors), tuple(warnings))


def eviction_group_version(core_v1_resources: Iterable[Mapping[str, object]]) -> str | None:
    """Which Eviction API to use, from the ``resources`` of ``GET /api/v1`` (kubectl CheckEvictionSupport).

    Returns ``"policy/v1"`` when the server advertises it for ``pods/eviction``, ``"policy/v1beta1"`` for
    any other advertised version (supported by every server that has the subresource), and ``None`` when
    there is no eviction subresource at all (then drain falls back to DELETE).
    As kubectl's ``CheckEvictionSupport`` (kubernetes/kubectl pkg/drain/drain.go); policy/v1 exists from 1.22
    (https://kubernetes.io/docs/concepts/scheduling-eviction/api-eviction/).
    """
    for resource in core_v1_resources:
        if resource.get("name") == "pods/eviction" and resource.get("kind") == "Eviction":
            if resource.get("group") == "policy" and resource.get("version") == "v1":
                return "policy/v1"
            return "policy/v1beta1"
    return None


def should_skip_wait(pod: PodFacts, options: DrainOptions, *, now: datetime) -> bool:
    """kubectl's shouldSkipPod, used while waiting: a long-deleted pod counts as gone."""
    return skip_deleted_filter(pod, options, now).verdict is Verdict.SKIP


def selector_matches(selector: Mapping[str, object] | None, labels: Mapping[str, str]) -> bool:
    """Does a metav1.LabelSelector (matchLabels + matchExpressions) select ``labels``?

    As for PodDisruptionBudgets in policy/v1: an empty selector matches every pod, a missing one none.
    """
    if selector is None:
        return False
    match_labels = selector.get("matchLabels") or {}
    if not isinstance(match_labels, Mapping):
        return False
    for key, value in match_labels.items():
        if labels.get(str(key)) != value:
            return False
    expressions = selector.get("matchExpressions") or []
    if not isinstance(expressions, list):
        return False
    for expression in expressions:
        key = str(expression.get("key", ""))
        operator = expression.get("operator")
        values = [str(v) for v in expression.get("values") or []]
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and key in labels and labels[key] in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
        if operator not in ("In", "NotIn", "Exists", "DoesNotExist"):
            return False
    return True


_PDB_CAUSE = re.compile(r"^The disruption budget (\S+) ")


def pdb_from_429(status: Mapping[str, object]) -> str | None:
    """The PDB name the API server puts in a 429's causes ("The disruption budget web needs 2 healthy
    pods and has 2 currently"), or None (then the 429 may be API rate limiting)."""
    details = status.get("details")
    if not isinstance(details, Mapping):
        return None
    for cause in details.get("causes") or []:
        if isinstance(cause, Mapping):
            match = _PDB_CAUSE.match(str(cause.get("message", "")))
            if match:
                return match.group(1)
    return None


class EvictionAnswer(enum.Enum):
    """What the API server's answer to one eviction (or DELETE) means for the drain, as kubectl's
    evictPods loop reads it (k8s.io/kubectl/pkg/drain/drain.go, v1.23)."""

    EVICTED = "evicted"  # accepted: wait for the pod to go
    DELETING = "deleting"  # 403 NamespaceTerminating on a pod being deleted: the namespace removes it, wait
    GONE = "gone"  # 404: nothing left to evict
    RE_READ = "re-read"  # 409, a precondition failed: gone if its name now has a new pod, else retry
    BUDGET = "budget"  # 429: a PodDisruptionBudget (or API rate limiting) refuses now: retry after a wait
    RETRY = "retry"  # 403 NamespaceTerminating on a pod not yet deleting: retry after the delay
    FAILED = "failed"  # anything else: the pod is refused with the server's message


def eviction_answer(status: int, body: Mapping[str, Any], *, deleting: bool) -> EvictionAnswer:
    """The meaning of HTTP ``status`` with Status ``body`` for a pod (``deleting``: it has a
    deletionTimestamp)."""
    if status in (200, 201, 202):
        return EvictionAnswer.EVICTED
    if status == 404:
        return EvictionAnswer.GONE
    if status == 409:
        return EvictionAnswer.RE_READ
    if status == 429:
        return EvictionAnswer.BUDGET
    if status == 403 and _has_cause(body, "NamespaceTerminating"):
        # kubectl: a terminating namespace deletes the pod anyway; once it is being deleted, wait for it.
        return EvictionAnswer.DELETING if deleting else EvictionAnswer.RETRY
    return EvictionAnswer.FAILED


def eviction_failure(status: int, body: Mapping[str, Any]) -> str:
    """A refused eviction in words: the status and the server's message."""
    return f"HTTP {status}: {body.get('message', '')}".strip()


def _has_cause(body: Mapping[str, Any], reason: str) -> bool:
    details = body.get("details") or {}
    return any(cause.get("reason") == reason for cause in details.get("causes") or [])


@dataclass(frozen=True)
class RefusedPod:
    pod: str
    reason: str


@dataclass(frozen=True)
class BlockedPod:
    pod: str
    pdb: str | None  # None: a 429 without a budget named (API rate limiting)


# The codes of a drain's findings (docs/findings.md).
POD_REFUSED = "drain-pod-refused"
POD_BLOCKED = "drain-blocked-by-budget"
DRAIN_ERROR = "drain-error"
PODS_LEFT = "drain-pods-left"


def drain_problems(
    node: str,
    *,
    refused: Iterable[RefusedPod],
    blocked: Iterable[BlockedPod],
    errors: Iterable[str],
    pending: Sequence[str],
    drained: bool,
) -> list[Finding]:
    """Why a drain of ``node`` did not finish, pod by pod; empty when it drained."""
    subject = Subject.of_node(node)
    problems = [error(POD_REFUSED, f"{item.pod}: {item.reason}", subject=subject) for item in refused]
    problems += [
        error(POD_BLOCKED, f"{item.pod} blocked by PodDisruptionBudget {item.pdb}", subject=subject) for item in blocked
    ]
    problems += [error(DRAIN_ERROR, text, subject=subject) for text in errors]
    if not problems and not drained:
        problems.append(error(PODS_LEFT, "pods still on the node: " + ", ".join(pending), subject=subject))
    return problems
