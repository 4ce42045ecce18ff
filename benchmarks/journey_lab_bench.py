"""The journey on the lab once per `--skew`, each from a fresh 1.23.17 dockershim lab, like with like.

`shimshift upgrade --all --to TARGET` once per rule set, the same engine each time. `lockstep` is kubeadm's upgrade
guide (every node drained at every minor); `kubeadm` drains each node only when kubeadm's next apply
would refuse its kubelet (docs/journey.md).

    .venv/bin/python -m benchmarks.journey_lab_bench [--to 1.27.16] [--skew lockstep --skew kubeadm]

Before each run: `shimshift lab up --replace` (a fresh lab, a few minutes), then each release on the way
(1.24 to the target's minor) built if the cache is cold and its images loaded into every node
(`load_release_images`), its kubeadm, kubelet and kubectl in `--binaries DIR/v<release>`. Prints per run:
wall time, drains per node, the total time nodes spent cordoned and the `kubeadm upgrade apply` steps'
total time (both from the journal's step records), and the drains per node the schedule planned.

It takes the lab for the whole time (about half an hour per run to 1.27.16) and leaves it at the target:
run it only when no one else uses the lab, and `shimshift lab up --replace` afterwards.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shimshift.adapters.journal import Journal, StepPhase, StepRecord
from shimshift.core.journey.schedule import JourneyNode, plan_journey
from shimshift.core.journey.skew import SkewRules
from shimshift.core.versions import KubernetesVersion, parse_kubelet_version
from shimshift.lab import cluster
from shimshift.lab.model import LabInfo
from shimshift.lab.releases import known_releases, release
from shimshift.lab.upgrade_prep import load_release_images

DEFAULT_TARGET = "1.27.16"
DEFAULT_SKEWS = (SkewRules.LOCKSTEP, SkewRules.KUBEADM)
# The lab's 1.23 kubelets (shimshift/lab/releases.py's default release).
LAB_KUBELET = KubernetesVersion(23, 17)
DRAIN_FLAGS = ("--force", "--delete-emptydir-data")
# To 1.37 under lockstep: 14 applies, 28 `kubeadm upgrade node`, 42 drains on the default lab.
RUN_TIMEOUT = 3600 * 4

# Journal step names (core/journey/sequence.py): a drain's steps are `drain-<n>:v<release>:<node>#<attempt>/<step>`;
# kubeadm's run is the `kubeadm-upgrade` step, inside a drain or under `kubeadm-<mode>:v<release>:<node>`.
_DRAIN_STEP = re.compile(r"^(drain-\d+:v[0-9.]+:[^#]+#\d+)/drain$")
_CORDON = "cordon"
_UNCORDONS = ("uncordon", "rollback:uncordon")
_KUBEADM_UPGRADE = "/kubeadm-upgrade"


@dataclass(frozen=True)
class JourneyFigures:
    """What one journey's journal says about the nodes' time."""

    drains: dict[str, int]  # node -> drains begun (a drain rolled back and tried again counts twice)
    cordoned_seconds: dict[str, float]  # node -> seconds between each drain's cordon and its uncordon, summed
    applies: int  # `kubeadm upgrade apply` steps finished
    apply_seconds: float  # their seconds, summed

    def to_json(self) -> dict[str, Any]:
        return {
            "drains": self.drains,
            "cordoned_seconds": {node: round(seconds, 1) for node, seconds in self.cordoned_seconds.items()},
            "cordoned_seconds_total": round(sum(self.cordoned_seconds.values()), 1),
            "applies": self.applies,
            "apply_seconds": round(self.apply_seconds, 1),
        }


def journey_figures(records: Sequence[StepRecord]) -> JourneyFigures:
    """The figures from one run's step records in the order written (``Journal.timeline``). A drain that
    never uncordoned (the run stopped in it) adds no cordoned time: its end is unknown. An apply at a
    control-plane step of its own includes kubeadm's wait for the control plane to settle; one inside the
    first control-plane node's drain leaves that wait to the drain's verify step."""
    started: dict[tuple[str, str], StepRecord] = {}
    drains: Counter[str] = Counter()
    cordoned: dict[str, float] = {}
    applies, apply_seconds = 0, 0.0
    for record in records:
        key = (record.node, record.step)
        if record.phase is StepPhase.STARTED:
            started[key] = record
            if _DRAIN_STEP.match(record.step):
                drains[record.node] += 1
            continue
        if record.phase is not StepPhase.FINISHED:
            continue
        prefix, _, step = record.step.rpartition("/")
        if step in _UNCORDONS:
            cordon = started.get((record.node, f"{prefix}/{_CORDON}"))
            if cordon is not None:
                seconds = (record.at - cordon.at).total_seconds()
                cordoned[record.node] = cordoned.get(record.node, 0.0) + seconds
        elif record.step.endswith(_KUBEADM_UPGRADE) and " upgrade apply " in str(record.detail.get("ran", "")):
            began = started.get(key)
            if began is not None:
                applies += 1
                apply_seconds += (record.at - began.at).total_seconds()
    return JourneyFigures(dict(sorted(drains.items())), dict(sorted(cordoned.items())), applies, apply_seconds)


def journal_figures(path: Path) -> JourneyFigures:
    """The figures of the journal's newest run."""
    journal = Journal(path)
    try:
        runs = journal.runs()
        if not runs:
            raise SystemExit(f"{path}: no run in the journal (did `shimshift upgrade` start?)")
        return journey_figures(journal.timeline(runs[-1].id))
    finally:
        journal.close()


def planned_drains(info: LabInfo, *, to: KubernetesVersion, rules: SkewRules) -> dict[str, int]:
    """The drains per node the schedule plans for the fresh lab (every kubelet 1.23.17, on dockershim)."""
    nodes = [
        JourneyNode(node.name, node.name == info.control_plane.name, LAB_KUBELET, dockershim=True)
        for node in info.nodes
    ]
    return plan_journey(nodes, control_plane=LAB_KUBELET, target=to, rules=rules).drain_counts()


def same_drains(to: KubernetesVersion, skews: Sequence[SkewRules]) -> int | None:
    """The drains per node when every rule set asked for plans the same ones to ``to`` (None: they differ).
    To 1.27.16 lockstep and kubeadm do (kubeadm before 1.29 accepts kubelets one minor behind, the guide's
    bound): the runs then compare the same schedule twice."""
    fleet = [JourneyNode("control-plane", True, LAB_KUBELET, dockershim=True)]
    counts = {plan_journey(fleet, control_plane=LAB_KUBELET, target=to, rules=rules).drain_counts()["control-plane"]
              for rules in skews}  # fmt: skip
    return counts.pop() if len(counts) == 1 and len(skews) > 1 else None


def opt_ins(to: KubernetesVersion) -> tuple[str, ...]:
    """The operator's opt-ins the lab's road needs, as tests/e2e/journey/test_journey_lab.py gives them:
    this machine's cgroup v1 for kubelets 1.35+, and exec through cri-dockerd on kubelets 1.36+."""
    return (
        *(("--allow-cgroup-v1",) if to.minor >= 35 else ()),
        *(("--kubelet-websockets-off",) if to.minor >= 36 else ()),
    )


def say(text: str) -> None:
    print(f"[journey-bench] {text}", file=sys.stderr, flush=True)


def fresh_lab() -> LabInfo:
    say("waiting for `shimshift lab up --replace`: a fresh 1.23.17 dockershim lab (a few minutes)")
    subprocess.run([sys.executable, "-m", "shimshift.cli.main", "lab", "up", "--replace"], check=True, timeout=3600)
    info = cluster.load()
    if info is None:
        raise SystemExit("`shimshift lab up --replace` ended but no lab is up: see its output above")
    return info


def prepare_road(road: Sequence[str], binaries: Path) -> None:
    for on_the_road in road:
        say(f"waiting for release {on_the_road}: built if the cache is cold (long), its images loaded into every node")
        prepared = load_release_images(on_the_road, progress=say)
        link = binaries / f"v{on_the_road}"
        link.unlink(missing_ok=True)
        link.symlink_to(prepared.binaries_dir)


def one_run(rules: SkewRules, *, to: str, road: Sequence[str], work: Path) -> dict[str, Any]:
    info = fresh_lab()
    binaries = work / f"binaries-{rules}"
    binaries.mkdir(exist_ok=True)
    prepare_road(road, binaries)
    target = parse_kubelet_version(to, what="--to")
    planned = planned_drains(info, to=target, rules=rules)
    journal = work / f"journey-{rules}.sqlite"
    argv = [
        sys.executable, "-m", "shimshift.cli.main", "upgrade", "--all", "--to", to, "--skew", str(rules),
        "--binaries", str(binaries), *opt_ins(target), *DRAIN_FLAGS,
        "--kubeconfig", str(info.kubeconfig), "--ssh-config", str(info.ssh_config), "--journal", str(journal),
    ]  # fmt: skip
    say(
        f"waiting for `shimshift upgrade --all --to {to} --skew {rules}`: {max(planned.values())} drain(s) per "
        f"node planned, {len(planned)} nodes (up to {RUN_TIMEOUT // 3600} hours; its progress follows)"
    )
    started = time.monotonic()
    result = subprocess.run(argv, cwd=work, timeout=RUN_TIMEOUT, check=False)
    seconds = time.monotonic() - started
    figures = journal_figures(journal) if journal.exists() else None
    return {
        "skew": str(rules),
        "to": to,
        "exit_code": result.returncode,
        "seconds": round(seconds, 1),
        "planned_drains": planned,
        **(figures.to_json() if figures is not None else {}),
    }


def summary(run: dict[str, Any]) -> str:
    drains = sorted(set(run.get("drains", {}).values()))
    per_node = "-".join(str(count) for count in drains) or "no"
    ended = "" if run["exit_code"] == 0 else f" (exit {run['exit_code']}: see its output)"
    return (
        f"--skew {run['skew']} to {run['to']}{ended}: {run['seconds']} s wall, {per_node} drains per node, "
        f"cordoned {run.get('cordoned_seconds_total', 0.0)} s in all, {run.get('applies', 0)} applies in "
        f"{run.get('apply_seconds', 0.0)} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--to", default=DEFAULT_TARGET, help=f"the journey's target (default {DEFAULT_TARGET})")
    parser.add_argument(
        "--skew",
        action="append",
        choices=[rules.value for rules in SkewRules],
        help="a rule set to run, repeatable, in the order given (default: lockstep, then kubeadm)",
    )
    args = parser.parse_args()
    to = str(args.to).removeprefix("v")
    target_minor = release(to).minor  # refuses a release the lab does not know
    road = tuple(r.version.removeprefix("v") for r in known_releases() if 24 <= r.minor <= target_minor)
    skews = [SkewRules(value) for value in args.skew] if args.skew else list(DEFAULT_SKEWS)
    same = same_drains(parse_kubelet_version(to, what="--to"), skews)
    if same is not None:
        say(f"note: to {to} every --skew given plans {same} drains per node, the same schedule; they differ from 1.29")
    runs = []
    with tempfile.TemporaryDirectory(prefix="journey-bench-") as scratch:
        for rules in skews:
            runs.append(one_run(rules, to=to, road=road, work=Path(scratch)))
            say(summary(runs[-1]))
    print(json.dumps(runs, indent=2))
    for run in runs:
        print(summary(run))
    if any(run["exit_code"] != 0 for run in runs):
        sys.exit(1)


if __name__ == "__main__":
    main()
