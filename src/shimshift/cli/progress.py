"""Live progress for a fleet run: one bar overall and a line per active node on a terminal, plain
timestamped lines anywhere else (CI logs, pipes). The orchestrator only emits events; this renders."""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

if TYPE_CHECKING:
    from shimshift.orchestrator.node_migration import NodeOutcome
    from shimshift.orchestrator.ports import StepEvent


class FleetProgress:
    def __init__(self, *, total: int, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self.live = self.console.is_terminal
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=self.console,
            disable=not self.live,
        )
        self.overall = self.progress.add_task("nodes", total=total)
        self.node_tasks: dict[str, TaskID] = {}

    def __enter__(self) -> FleetProgress:
        self.progress.__enter__()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.progress.__exit__(kind, error, trace)

    def on_event(self, event: StepEvent) -> None:
        text = f"{event.node}: {event.step} {event.phase}" + (f": {event.message}" if event.message else "")
        if not self.live:
            stamp = event.at.strftime("%H:%M:%S") if event.at else ""
            self.console.print(f"{stamp} {text}", markup=False, highlight=False, soft_wrap=True)
            return
        task = self.node_tasks.get(event.node)
        if task is None:
            task = self.progress.add_task(event.node, total=None)
            self.node_tasks[event.node] = task
        self.progress.update(task, description=text[:100])

    def on_outcome(self, outcome: NodeOutcome) -> None:
        task = self.node_tasks.pop(outcome.node, None)
        if task is not None:
            self.progress.remove_task(task)
        self.progress.advance(self.overall)
        line = f"{outcome.node}: {outcome.status}" + (f" ({outcome.message})" if outcome.message else "")
        self.console.print(line, markup=False, highlight=False, soft_wrap=True)
