"""kubectl drain's filters, pod by pod (pure).

Matrix: every TestDrain case of kubectl's pkg/cmd/drain/drain_test.go that the filters decide (at v0.23.17),
TestSkipDeletedFilter, TestFilterPods (extra filters and
short-circuit), the warning quirk, TestCheckEvictionSupport, the kubectl error aggregation text, the
PDB selector and 429 cause parsing, and option validation.
"""

from __future__ import annotations

import datetime as dt

import pytest

from shimshift.core.drain import (
    DAEMONSET_FATAL,
    DAEMONSET_WARNING,
    LOCAL_STORAGE_FATAL,
    UNMANAGED_FATAL,
    UNMANAGED_WARNING,
    ControllerRef,
    DrainOptions,
    EvictionAnswer,
    PodDecision,
    PodFacts,
    Verdict,
    decide,
    eviction_answer,
    eviction_failure,
    eviction_group_version,
    pdb_from_429,
    plan_pods,
    selector_matches,
    should_skip_wait,
)
from shimshift.core.errors import Refusal

NOW = dt.datetime(2026, 11, 26, 12, 0, 0, tzinfo=dt.UTC)
RC = ControllerRef("ReplicationController", "rc")
RS = ControllerRef("ReplicaSet", "rs")
DS = ControllerRef("DaemonSet", "ds")
JOB = ControllerRef("Job", "job")


def pod(**kwargs: object) -> PodFacts:
    base: dict[str, object] = {"namespace": "default", "name": "bar", "uid": "u1", "phase": "Running"}
    base.update(kwargs)
    return PodFacts(**base)  # type: ignore[arg-type]


def verdict(facts: PodFacts, **options: object) -> PodDecision:
    return decide(facts, DrainOptions(**options), now=NOW)  # type: ignore[arg-type]


# -- kubectl TestDrain cases ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "facts", "options", "expected", "reason"),
    [
        ("RC-managed pod", pod(controller=RC), {}, Verdict.DELETE, ""),
        ("DS-managed pod", pod(controller=DS), {}, Verdict.ERROR, DAEMONSET_FATAL),
        ("DS-managed terminated pod", pod(controller=DS, phase="Succeeded"), {}, Verdict.DELETE, ""),
        (
            "orphaned DS-managed pod",
            pod(
                controller=DS,
                daemonset_lookup_error='daemonsets.apps "ds" not found',
                daemonset_not_found=True,
            ),
            {},
            Verdict.ERROR,
            'daemonsets.apps "ds" not found',
        ),
        (
            "orphaned DS-managed pod with --force",
            pod(
                controller=DS,
                daemonset_lookup_error='daemonsets.apps "ds" not found',
                daemonset_not_found=True,
            ),
            # The DaemonSet warning is overwritten by the later filters' plain okay (filters.go).
            {"force": True},
            Verdict.DELETE,
            "",
        ),
        (
            "DS lookup failing otherwise is an error even with --force",
            pod(controller=DS, daemonset_lookup_error="forbidden", daemonset_not_found=False),
            {"force": True},
            Verdict.ERROR,
            "forbidden",
        ),
        (
            "DS-managed pod with --ignore-daemonsets",
            pod(controller=DS),
            {"ignore_daemonsets": True},
            Verdict.SKIP,
            DAEMONSET_WARNING,
        ),
        (
            "DS-managed pod with emptyDir with --ignore-daemonsets",
            pod(controller=DS, has_emptydir=True),
            {"ignore_daemonsets": True},
            Verdict.SKIP,
            DAEMONSET_WARNING,
        ),
        (
            "Job-managed pod with local storage",
            pod(controller=JOB, has_emptydir=True),
            {"force": True, "delete_emptydir_data": True},
            Verdict.DELETE,
            "",
        ),
        ("Job-managed terminated pod", pod(controller=JOB, phase="Succeeded"), {}, Verdict.DELETE, ""),
        ("RS-managed pod", pod(controller=RS), {}, Verdict.DELETE, ""),
        ("naked pod", pod(), {}, Verdict.ERROR, UNMANAGED_FATAL),
        ("naked pod with --force", pod(), {"force": True}, Verdict.DELETE, UNMANAGED_WARNING),
        ("pod with EmptyDir", pod(has_emptydir=True), {"force": True}, Verdict.ERROR, LOCAL_STORAGE_FATAL),
        ("terminated pod with emptyDir", pod(has_emptydir=True, phase="Failed"), {}, Verdict.DELETE, ""),
        (
            "pod with EmptyDir and --delete-emptydir-data",
            pod(controller=RS, has_emptydir=True),
            {"delete_emptydir_data": True},
            Verdict.DELETE,
            "",
        ),
        ("mirror pod", pod(annotations={"kubernetes.io/config.mirror": "abc"}), {}, Verdict.SKIP, ""),
    ],
)
def test_kubectl_drain_case(
    name: str, facts: PodFacts, options: dict[str, object], expected: Verdict, reason: str
) -> None:
    decision = verdict(facts, **options)
    assert (decision.verdict, decision.reason) == (expected, reason), name


def test_a_later_filter_overwrites_an_earlier_warning_like_kubectl() -> None:
    """The emptyDir warning is lost when the unreplicated filter then says plain okay (filters.go TODO)."""
    decision = verdict(pod(controller=RS, has_emptydir=True), delete_emptydir_data=True)
    assert decision == PodDecision(Verdict.DELETE)
    naked = verdict(pod(has_emptydir=True), delete_emptydir_data=True, force=True)
    assert naked.reason == UNMANAGED_WARNING


def test_daemonset_filter_runs_before_the_mirror_filter() -> None:
    static_ds = pod(controller=DS, annotations={"kubernetes.io/config.mirror": "x"})
    assert verdict(static_ds).reason == DAEMONSET_FATAL


# -- TestSkipDeletedFilter ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("age", "expected"),
    [(0, Verdict.DELETE), (1, Verdict.DELETE), (20, Verdict.DELETE), (21, Verdict.SKIP), (100, Verdict.SKIP)],
)
def test_skip_deleted_filter(age: int, expected: Verdict) -> None:
    facts = pod(controller=RS, deletion_timestamp=NOW - dt.timedelta(seconds=age, milliseconds=500))
    assert verdict(facts, skip_wait_for_delete_timeout=20).verdict is expected
    assert should_skip_wait(facts, DrainOptions(skip_wait_for_delete_timeout=20), now=NOW) is (
        expected is Verdict.SKIP
    )


def test_skip_deleted_filter_is_off_at_zero() -> None:
    facts = pod(controller=RS, deletion_timestamp=NOW - dt.timedelta(days=3))
    assert verdict(facts).verdict is Verdict.DELETE


# -- TestFilterPods (additional filters) ----------------------------------------------------------------
def _skip_all(facts: PodFacts, options: DrainOptions, now: dt.datetime) -> PodDecision:
    return PodDecision(Verdict.SKIP, "extra skip")


def _okay_all(facts: PodFacts, options: DrainOptions, now: dt.datetime) -> PodDecision:
    return PodDecision(Verdict.DELETE)


@pytest.mark.parametrize(
    ("extra", "deleted", "skipped"),
    [((_skip_all,), 0, 2), ((_okay_all,), 2, 0), ((_okay_all, _skip_all), 0, 2), ((), 2, 0)],
    ids=[
        "AdditionalFilter skip all",
        "AdditionalFilter okay all",
        "Skip after Okay all skip",
        "No additionalFilters okay all",
    ],
)
def test_additional_filters(extra: tuple[object, ...], deleted: int, skipped: int) -> None:
    pods = [pod(name="a", uid="a", controller=RS), pod(name="b", uid="b", controller=RS)]
    plan = plan_pods(pods, DrainOptions(), now=NOW, extra_filters=extra)  # type: ignore[arg-type]
    assert (len(plan.delete), len(plan.skip)) == (deleted, skipped)


def test_an_error_short_circuits_before_additional_filters() -> None:
    calls: list[str] = []

    def record(facts: PodFacts, options: DrainOptions, now: dt.datetime) -> PodDecision:
        calls.append(facts.name)
        return PodDecision(Verdict.DELETE)

    plan = plan_pods(
        [pod(name="naked"), pod(name="owned", uid="2", controller=RS)],
        DrainOptions(),
        now=NOW,
        extra_filters=(record,),
    )
    assert calls == ["owned"]
    assert plan.refused


def test_plan_aggregates_errors_and_warnings_like_kubectl() -> None:
    pods = [
        pod(name="a", uid="1"),
        pod(name="b", uid="2"),
        pod(name="d", uid="3", controller=DS),
        pod(name="e", uid="4", controller=RS, has_emptydir=True),
        pod(name="m", uid="5", annotations={"kubernetes.io/config.mirror": "x"}),
    ]
    plan = plan_pods(pods, DrainOptions(), now=NOW)
    assert plan.error_messages() == [
        f"cannot delete {UNMANAGED_FATAL}: default/a, default/b",
        f"cannot delete {DAEMONSET_FATAL}: default/d",
        f"cannot delete {LOCAL_STORAGE_FATAL}: default/e",
    ]
    assert [p.key for p, _ in plan.skip] == ["default/m"]
    assert plan.delete == ()
    ok = plan_pods(pods[2:], DrainOptions(ignore_daemonsets=True, delete_emptydir_data=True), now=NOW)
    assert ok.warning_messages() == [f"{DAEMONSET_WARNING}: default/d"]
    assert [p.key for p in ok.delete] == ["default/e"]
    assert not ok.refused


def test_empty_node() -> None:
    plan = plan_pods([], DrainOptions(), now=NOW)
    assert (plan.delete, plan.skip, plan.errors, plan.refused) == ((), (), (), False)


# -- TestCheckEvictionSupport ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("version", "expected"), [("", "policy/v1beta1"), ("v1", "policy/v1"), ("v1beta1", "policy/v1beta1")]
)
def test_eviction_version_from_discovery(version: str, expected: str) -> None:
    resources = [
        {"name": "pods", "kind": "Pod"},
        {"name": "pods/eviction", "kind": "Eviction", "group": "policy", "version": version},
    ]
    assert eviction_group_version(resources) == expected


def test_no_eviction_subresource_means_delete() -> None:
    assert eviction_group_version([{"name": "pods", "kind": "Pod"}]) is None


# -- PDB helpers ----------------------------------------------------------------------------------------
def test_selector_matching() -> None:
    labels = {"app": "web", "tier": "front"}
    assert selector_matches({"matchLabels": {"app": "web"}}, labels)
    assert not selector_matches({"matchLabels": {"app": "db"}}, labels)
    assert selector_matches({}, labels)  # policy/v1: empty selector selects all
    assert not selector_matches(None, labels)
    assert selector_matches(
        {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["front"]}]}, labels
    )
    assert not selector_matches(
        {"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["front"]}]}, labels
    )
    assert selector_matches({"matchExpressions": [{"key": "x", "operator": "DoesNotExist"}]}, labels)
    assert not selector_matches({"matchExpressions": [{"key": "x", "operator": "Exists"}]}, labels)


def test_pdb_name_from_a_429() -> None:
    status = {
        "code": 429,
        "details": {
            "causes": [
                {
                    "type": "DisruptionBudget",
                    "message": "The disruption budget web needs 2 healthy pods and has 2 currently",
                }
            ]
        },
    }
    assert pdb_from_429(status) == "web"
    assert pdb_from_429({"code": 429, "message": "rate limited"}) is None


TERMINATING = {"message": "namespace x is terminating", "details": {"causes": [{"reason": "NamespaceTerminating"}]}}


@pytest.mark.parametrize(
    ("status", "body", "deleting", "answer"),
    [
        (201, {}, False, EvictionAnswer.EVICTED),
        (200, {}, True, EvictionAnswer.EVICTED),
        (404, {}, False, EvictionAnswer.GONE),
        (409, {}, False, EvictionAnswer.RE_READ),
        (429, {"message": "Cannot evict pod"}, False, EvictionAnswer.BUDGET),
        (403, TERMINATING, True, EvictionAnswer.DELETING),
        (403, TERMINATING, False, EvictionAnswer.RETRY),
        (403, {"message": "forbidden"}, False, EvictionAnswer.FAILED),
        (500, {"message": "This pod has more than one PodDisruptionBudget"}, False, EvictionAnswer.FAILED),
    ],
)
def test_eviction_answers_as_kubectl_reads_them(
    status: int, body: dict[str, object], deleting: bool, answer: EvictionAnswer
) -> None:
    assert eviction_answer(status, body, deleting=deleting) is answer


def test_a_refused_eviction_says_the_status_and_the_server_s_words() -> None:
    assert eviction_failure(500, {"message": "two budgets"}) == "HTTP 500: two budgets"
    assert eviction_failure(403, {}) == "HTTP 403:"


@pytest.mark.parametrize(
    "bad", [{"grace_period": -2}, {"timeout": -1.0}, {"skip_wait_for_delete_timeout": -1}, {"chunk_size": -5}]
)
def test_bad_options_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(Refusal):
        DrainOptions(**bad)  # type: ignore[arg-type]
