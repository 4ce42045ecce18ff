"""Properties of rewrites and plans (hypothesis).

1. Unrelated content survives a rewrite byte for byte: every line but the edited assignment, and every
   unrelated word inside it, in order.
2. Applying a plan then its rollback restores the original bytes of every file.
3. Plans are idempotent: planning again on the result gives no change.
4. Any input either parses or is refused with a Refusal (never another exception).
5. A KubeletConfiguration edit changes exactly one line (or appends one) and nothing else.
6. The journal's record of a plan, and of its rollback, reads back as the same plan; a plan that changes
   nothing is exactly one with a reason to do nothing.
"""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shimshift.core.errors import Refusal
from shimshift.core.flagfile import parse_env_file, split_lines
from shimshift.core.node_files import CRI_DOCKERD_DROPIN, DEFAULT_KUBELET, KUBEADM_FLAGS_ENV, KUBELET_CONFIG
from shimshift.core.node_plan import NodePlan, apply_changes
from shimshift.core.node_plan_record import plan_from_record, plan_record
from shimshift.core.node_planner import plan_node

from .nodes import MINORS, dockershim_node, version

SAFE = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789./:_-", min_size=1, max_size=12)
UNRELATED_FLAG = st.builds(lambda n, v: f"--x-{n}={v}", SAFE, SAFE) | st.builds(lambda n: f"--y-{n}", SAFE)
DOCKERSHIM_FLAG = st.sampled_from(
    [
        "--network-plugin=cni",
        "--cni-bin-dir=/usr/lib/cni",
        "--cni-conf-dir /etc/cni/net.d",
        "--network-plugin-mtu=1450",
        "--docker-endpoint=unix:///var/run/docker.sock",
        "--image-pull-progress-deadline=2m",
        "--cni-cache-dir=/var/lib/cni/cache",
        "--non-masquerade-cidr=10.0.0.0/8",
    ]
)
GAP = st.sampled_from([" ", "  ", "\t", " \t "])
EOL = st.sampled_from(["\n", "\r\n"])
OTHER_LINE = st.one_of(
    st.builds(
        lambda t: "# " + t,
        st.text(
            # Control characters and line separators are refused before parsing (test_node_hygiene.py).
            alphabet=st.characters(blacklist_categories=["Cs", "Cc", "Zl", "Zp"]),
            max_size=30,
        ),
    ),
    st.just(""),
    st.builds(
        lambda k, v: (
            f'OTHER_{k.upper().replace(".", "_").replace("/", "_").replace(":", "_").replace("-", "_")}="{v}"'
        ),
        SAFE,
        SAFE,
    ),
    st.just("   "),
)


@st.composite
def flags_file(draw: st.DrawFn, key: str = "KUBELET_KUBEADM_ARGS") -> tuple[bytes, list[str]]:
    """An env file with unrelated lines around the ``key`` assignment and unrelated flags inside it."""
    words = draw(st.lists(st.one_of(UNRELATED_FLAG, DOCKERSHIM_FLAG), max_size=8))
    words = list({w.split("=")[0].split(" ")[0]: w for w in reversed(words)}.values())[::-1]  # no flag twice
    gaps = [draw(GAP) for _ in words]
    value = "".join(g + w if i else w for i, (g, w) in enumerate(zip(gaps, words, strict=True)))
    eol = draw(EOL)
    before = draw(st.lists(OTHER_LINE, max_size=3))
    after = draw(st.lists(OTHER_LINE, max_size=3))
    trail = draw(st.sampled_from(["", " ", "\t "]))
    last_eol = draw(st.sampled_from([eol, ""]))
    lines = [*before, f'{key}="{value}"{trail}', *after]
    text = eol.join(lines) + last_eol
    unrelated = [w for w in words if w.startswith(("--x-", "--y-"))]
    return text.encode(), unrelated


def journalled(plan: NodePlan) -> NodePlan:
    """The plan as a later step reads it: through the journal's JSON (sorted keys, default=str)."""
    return plan_from_record(json.loads(json.dumps(plan_record(plan), sort_keys=True, default=str)))


def plan_for(files: dict[str, bytes | None], minor: int):  # type: ignore[no-untyped-def]
    return plan_node(
        kubelet_version=version(minor),
        files=files,
        cri_dockerd_version="0.3.16",
        docker_cgroup_driver="systemd",
    )


TARGETS = [(KUBEADM_FLAGS_ENV, "KUBELET_KUBEADM_ARGS"), (DEFAULT_KUBELET, "KUBELET_EXTRA_ARGS")]


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    st.sampled_from(TARGETS).flatmap(lambda t: st.tuples(st.just(t), flags_file(t[1]))),
    st.sampled_from(MINORS),
)
def test_unrelated_content_survives_and_plans_roundtrip(
    data: tuple[tuple[str, str], tuple[bytes, list[str]]], minor: int
) -> None:
    (path, key), (content, unrelated) = data
    files = dockershim_node(minor)
    files[path] = content
    try:
        p = plan_for(files, minor)
    except Refusal as exc:
        # 1.27+ with no endpoint and nothing from dockershim: the kubelet runs containerd (docs/runtime-facts.md).
        original = parse_env_file("/f", content, unique=()).get(key)
        assert original is not None
        assert path == KUBEADM_FLAGS_ENV
        assert minor >= 27 and all(w.text.startswith(("--x-", "--y-")) for w in original.words)
        assert "containerd" in exc.what
        return
    after = apply_changes(files, p.changes)
    new = after[path]
    assert new is not None

    # 1. Every other line is identical, in order; inside the value the unrelated words keep their order.
    old_lines = [(c, e) for _o, c, e in split_lines(content.decode())]
    new_lines = [(c, e) for _o, c, e in split_lines(new.decode())]
    assert len(old_lines) == len(new_lines)
    for (oc, oe), (nc, ne) in zip(old_lines, new_lines, strict=True):
        assert oe == ne
        if not oc.startswith(f"{key}="):
            assert oc == nc
    assignment = parse_env_file(path, new, unique=()).get(key)
    assert assignment is not None
    kept = [w.raw for w in assignment.words if w.text.startswith(("--x-", "--y-"))]
    assert kept == unrelated
    # Files the plan has no business with are untouched.
    allowed = {path, KUBEADM_FLAGS_ENV, CRI_DOCKERD_DROPIN} | ({KUBELET_CONFIG} if minor >= 27 else set())
    assert {c.path for c in p.changes} <= allowed

    # 2. Rollback restores every byte.
    assert apply_changes(after, p.rollback_changes) == files
    # 3. Idempotent.
    again = plan_for(after, minor)
    assert again.changes == ()
    # 6. Recorded and read back, both plans are the same plans.
    assert journalled(p) == p and journalled(p.rollback()) == p.rollback() and journalled(again) == again
    assert not p.is_noop and again.is_noop


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_parse_or_are_refused(data: bytes) -> None:
    try:
        parse_env_file("/f", data)
    except Refusal as exc:
        assert exc.file == "/f"


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet="KUBELET_EXTRA_ARGS=\" '\\#;\r\n-abc=/", max_size=60))
def test_any_extra_args_file_plans_or_is_refused(text: str) -> None:
    files = dockershim_node(23, extra=text.encode())
    try:
        p = plan_for(files, 23)
    except Refusal as exc:
        assert exc.file is not None
        return
    after = apply_changes(files, p.changes)
    assert apply_changes(after, p.rollback_changes) == files
    assert plan_for(after, 23).changes == ()
    assert journalled(p) == p


YAML_VALUE = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789./_", min_size=1, max_size=12)
# Keys the tests write themselves are left out: a generated "kind: 0" after "kind: KubeletConfiguration" is a
# second kind (YAML keeps the last), which the parser rightly refuses; that is not what these tests are about.
YAML_KEY = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=10).filter(
    lambda k: k not in {"containerRuntimeEndpoint", "kind"}
)
YAML_LINE = st.one_of(
    st.builds(lambda k, v: f"{k}: {v}", YAML_KEY, YAML_VALUE),
    st.builds(lambda t: "# " + t, SAFE),
    st.just(""),
)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(YAML_LINE, max_size=6),
    st.lists(YAML_LINE, max_size=6),
    st.one_of(st.none(), YAML_VALUE.map(lambda v: f"unix:///{v}")),
    EOL,
)
def test_config_edit_changes_one_line(
    head: list[str], tail: list[str], current: str | None, eol: str
) -> None:
    from shimshift.core.kubelet_config import parse_kubelet_config, set_endpoint

    keys = [line.split(":")[0] for line in head + tail if line and not line.startswith("#")]
    if len(keys) != len(set(keys)):
        return  # duplicate YAML keys are another test's business
    middle = [] if current is None else [f"containerRuntimeEndpoint: {current}"]
    text = eol.join(["kind: KubeletConfiguration", *head, *middle, *tail]) + eol
    out = set_endpoint(parse_kubelet_config("/c", text.encode()), "unix:///var/run/cri-dockerd.sock").decode()
    old, new = text.split(eol), out.split(eol)
    if current is None:
        assert (
            new[:-2] == old[:-1] and new[-2] == "containerRuntimeEndpoint: unix:///var/run/cri-dockerd.sock"
        )
    else:
        changed = [i for i, (a, b) in enumerate(zip(old, new, strict=True)) if a != b]
        assert changed == [1 + len(head)]
