"""What `shimshift plan` prints for one node's upgrade (the migration's diffs are its own renderer's)."""

from __future__ import annotations

from shimshift.core.actions import Run, Upload
from shimshift.core.upgrade.plan import NodeUpgradePlan

__all__ = ["render_plan"]


def render_plan(plan: NodeUpgradePlan) -> str:
    """The upgrade part of `shimshift plan` for one node (the migration's diffs are printed by its own
    renderer at the migration steps)."""
    lines = [f"== {plan.node} ({plan.role}): {plan.from_version} -> {plan.to_version}"]
    for number, actions in enumerate(plan.steps, start=1):
        lines.append(f"{number}. {actions.step}")
        lines += [f"   {_shown(action)}" for action in actions.actions]
        if actions.note:
            lines.append(f"   ({actions.note})")
    if plan.no_rollback_after is not None:
        lines.append(
            f"once {plan.no_rollback_after} has succeeded this node is not rolled back: "
            "a later failure stops the run and reports where it stands"
        )
    # The widest rollback there can be: every step started, or every step before the point of no return.
    started = plan.step_names()
    if plan.no_rollback_after is not None:
        started = started[: started.index(str(plan.no_rollback_after))]
    rollback = plan.rollback_steps(started)
    lines.append("rollback:" if plan.no_rollback_after is None else f"rollback (before {plan.no_rollback_after}):")
    for actions in rollback:
        lines.append(f"   {actions.step}" + (f" ({actions.note})" if actions.note else ""))
        lines += [f"     {_shown(action)}" for action in actions.actions]
    return "\n".join(lines)


def _shown(action: Run | Upload) -> str:
    if isinstance(action, Upload):
        return f"upload {action.source} -> {action.target} (sha256 {action.sha256}, mode {action.mode:o})"
    return f"$ {action.shown()}"
