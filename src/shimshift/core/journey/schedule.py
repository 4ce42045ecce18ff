"""The journey's schedule: the control plane's steps, one minor per ``kubeadm upgrade apply``, and each
node's drains, as few as the skew rules allow. Pure: nodes and releases in, steps out.

Why it is minimal. The control plane's path is fixed (one minor per apply, skew.py). A node's kubelet
is bounded from above by kube-apiserver and from below by each coming apply; a newer kubelet is never
worse placed than an older one (the allowed skew only widens as the kubelet gets newer). So the fewest
drains for a node come from draining it only when the next apply would refuse it, and then taking it as
far as it can go: to the control plane's release at that moment. The nodes do not constrain each other,
so doing this for each node at once gives every node its own minimum (the tests compare it with a
search over every schedule on small cases).

Decisions where the issue was silent:

- The migration to cri-dockerd rides in each dockershim node's first drain, wherever the skew puts it;
  it costs no drain of its own. A 1.23 kubelet on dockershim may stay below a 1.24 or 1.25 control
  plane: the skew policy lets kubelets older than 1.25 trail by two minors, and kubeadm 1.24 keeps a
  kubelet older than 1.24 on its built-in dockershim (kubernetes/kubernetes#106973). Under kubeadm's
  checks the first drain comes at the 1.24 control plane anyway (kubeadm 1.25 wants kubelets at 1.24);
  under ``--skew kubernetes`` at 1.25, while kubeadm 1.24 and 1.25 have run on the node's dockershim
  socket: traps.py says so as a finding, to be proven on the lab. Under ``--skew lockstep`` (kubeadm's
  guide) it comes at the 1.24 control plane, as under kubeadm's checks.
- The control plane stops at the newest patch of each minor on the way (releases.py), and at ``--to``
  on the last one; a kubelet drained on the way goes to the control plane's release of that moment.
- Control-plane nodes drain before workers at each stop, by name; the first control-plane node by name
  runs ``kubeadm upgrade apply``, unless the caller names another.
- kubeadm runs on every node at every control-plane step (apply on the first control-plane node,
  ``upgrade node`` on the others, workers included), without a drain: sequence.py says why a worker
  whose kubelet trails still runs the kubeadm of every minor.
- An executor may wrap the first control-plane node's apply in that node's first drain when that drain
  comes right after it (as the one-minor `upgrade` does today): the drain count is the same.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from shimshift.core.errors import Refusal
from shimshift.core.journey.releases import FIRST_JOURNEY_MINOR, NEWEST_PATCH, stop_release
from shimshift.core.journey.skew import SkewRules, apply_needs_force, apply_problem, kubelet_problem
from shimshift.core.versions import KubernetesVersion

__all__ = ["ControlPlaneStep", "Drain", "Journey", "JourneyNode", "plan_journey", "release_key"]


def release_key(version: KubernetesVersion) -> tuple[int, int]:
    """Order of releases; a version given without its patch counts as ``.0``."""
    return (version.minor, version.patch or 0)


@dataclass(frozen=True)
class JourneyNode:
    """A node as the journey sees it: its role, its kubelet's release, and whether it is on dockershim."""

    name: str
    control_plane: bool
    kubelet: KubernetesVersion
    dockershim: bool = False


@dataclass(frozen=True)
class ControlPlaneStep:
    """``kubeadm upgrade apply <release>`` on ``apply_on``, then ``kubeadm upgrade node`` on each of
    ``upgrade_node_on`` (the other control-plane nodes), in order. No drain: kubeadm restarts the static
    pods itself. ``force``: kubeadm's kubelet check refuses it (``--skew kubernetes`` only)."""

    release: KubernetesVersion
    apply_on: str
    upgrade_node_on: tuple[str, ...]
    force: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": "control-plane",
            "release": f"v{self.release}",
            "apply_on": self.apply_on,
            "upgrade_node_on": list(self.upgrade_node_on),
            "force": self.force,
        }


@dataclass(frozen=True)
class Drain:
    """One drain of one node: its kubelet goes from ``from_release`` to ``to_release`` (the control
    plane's release at that moment); ``migrate``: it also moves from dockershim to cri-dockerd."""

    node: str
    control_plane: bool
    number: int  # this node's first drain is 1
    from_release: KubernetesVersion
    to_release: KubernetesVersion
    migrate: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": "drain",
            "node": self.node,
            "control_plane": self.control_plane,
            "number": self.number,
            "from": f"v{self.from_release}",
            "to": f"v{self.to_release}",
            "migrate": self.migrate,
        }


Step = ControlPlaneStep | Drain


@dataclass(frozen=True)
class JourneyState:
    """The cluster between two steps: the control plane's release and each kubelet's."""

    control_plane: KubernetesVersion
    kubelets: Mapping[str, KubernetesVersion]
    dockershim: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True)
class Journey:
    rules: SkewRules
    target: KubernetesVersion
    start: JourneyState
    nodes: tuple[JourneyNode, ...]
    steps: tuple[Step, ...]

    def drains(self, node: str | None = None) -> tuple[Drain, ...]:
        return tuple(s for s in self.steps if isinstance(s, Drain) and (node is None or s.node == node))

    def control_plane_steps(self) -> tuple[ControlPlaneStep, ...]:
        return tuple(s for s in self.steps if isinstance(s, ControlPlaneStep))

    def drain_counts(self) -> dict[str, int]:
        return {node.name: len(self.drains(node.name)) for node in self.nodes}

    def states(self) -> Iterator[JourneyState]:
        """The state before the first step, then after each step, in order."""
        state = self.start
        yield state
        for step in self.steps:
            if isinstance(step, ControlPlaneStep):
                state = JourneyState(step.release, state.kubelets, state.dockershim)
            else:
                kubelets = {**state.kubelets, step.node: step.to_release}
                state = JourneyState(state.control_plane, kubelets, state.dockershim - {step.node})
            yield state

    def to_json(self) -> dict[str, Any]:
        return {
            "rules": str(self.rules),
            "target": f"v{self.target}",
            "control_plane": f"v{self.start.control_plane}",
            "drains": self.drain_counts(),
            "steps": [step.to_json() for step in self.steps],
        }


def plan_journey(
    nodes: Sequence[JourneyNode],
    *,
    control_plane: KubernetesVersion,
    target: KubernetesVersion,
    rules: SkewRules = SkewRules.KUBEADM,
    first_control_plane: str | None = None,
) -> Journey:
    """The schedule from ``control_plane`` (the kube-apiservers' release) to ``target`` for ``nodes``.

    Refused, naming the node where there is one: no control-plane node; a target older than the control
    plane or outside 1.21-1.37; a kubelet newer than the control plane or than the target, or already
    outside the skew policy (the cluster must be within the rules before the journey starts).
    """
    _check(nodes, control_plane=control_plane, target=target)
    ordered = sorted(nodes, key=lambda node: (not node.control_plane, node.name))
    control_planes = [node.name for node in ordered if node.control_plane]
    first = first_control_plane or control_planes[0]
    if first not in control_planes:
        raise Refusal(
            f"{first} is not a control-plane node of this cluster",
            hint="name a control-plane node",
            code="node-not-control-plane",
        )
    others = tuple(name for name in control_planes if name != first)

    kubelets = {node.name: node.kubelet for node in nodes}
    dockershim = {node.name for node in nodes if node.dockershim}
    counts = dict.fromkeys(kubelets, 0)
    steps: list[Step] = []

    def drain(node: JourneyNode, to: KubernetesVersion) -> None:
        counts[node.name] += 1
        steps.append(
            Drain(node.name, node.control_plane, counts[node.name], kubelets[node.name], to, node.name in dockershim)
        )
        kubelets[node.name] = to
        dockershim.discard(node.name)

    current = control_plane
    minors = list(range(control_plane.minor + 1, target.minor + 1))
    if not minors and release_key(control_plane) < release_key(target):
        minors = [target.minor]  # a patch upgrade of the control plane
    for minor in minors:
        for node in ordered:
            if apply_problem(kubelet_minor=kubelets[node.name].minor, target_minor=minor, rules=rules) is not None:
                # As late as possible and as far as possible: to the control plane's release now.
                drain(node, current)
        current = stop_release(minor, target=target)
        force = apply_needs_force({name: version.minor for name, version in kubelets.items()}, target_minor=minor)
        steps.append(ControlPlaneStep(current, first, others, force))
    for node in ordered:
        if release_key(kubelets[node.name]) < release_key(target):
            drain(node, target)
    start = JourneyState(
        control_plane, {node.name: node.kubelet for node in nodes}, frozenset(n.name for n in nodes if n.dockershim)
    )
    return Journey(rules, target, start, tuple(ordered), tuple(steps))


def _check(nodes: Sequence[JourneyNode], *, control_plane: KubernetesVersion, target: KubernetesVersion) -> None:
    if not any(node.control_plane for node in nodes):
        raise Refusal(
            "no control-plane node among the nodes",
            hint="the journey needs the whole cluster",
            code="no-control-plane",
        )
    last = max(NEWEST_PATCH)
    if not FIRST_JOURNEY_MINOR <= control_plane.minor <= last:
        raise Refusal(
            f"the control plane runs {control_plane}; the journey starts from 1.{FIRST_JOURNEY_MINOR} to 1.{last}",
            hint="upgrade it to a release in that range by kubeadm's guide first",
            code="journey-start-unsupported",
        )
    if release_key(target) < release_key(control_plane):
        raise Refusal(
            f"--to {target} is older than the control plane ({control_plane})",
            hint="shimshift upgrades only; kubeadm does not downgrade",
            code="skew-refused",
        )
    if target.minor > last:
        raise Refusal(
            f"--to {target} is newer than the releases shimshift knows (1.{last})",
            hint=f"give 1.{last}.x",
            code="version-unsupported",
        )
    for node in sorted(nodes, key=lambda item: item.name):
        if release_key(node.kubelet) > release_key(control_plane):
            raise Refusal(
                f"its kubelet ({node.kubelet}) is newer than the control plane ({control_plane})",
                hint="the cluster is outside the version skew policy; upgrade the control plane first",
                node=node.name,
                code="skew-refused",
            )
        problem = kubelet_problem(kubelet_minor=node.kubelet.minor, apiserver_minor=control_plane.minor)
        if problem is not None:
            raise Refusal(
                problem,
                hint="bring this kubelet within the policy first (kubeadm's guide)",
                node=node.name,
                code="skew-refused",
            )
