"""The report files of a run: HTML, Markdown and JSON, rendered from the journal into the reports directory."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import click

from shimshift.adapters.journal import Journal
from shimshift.cli.report import run_reports, summaries_from, timeline_entries
from shimshift.cli.report_html import render_html

if TYPE_CHECKING:
    from shimshift.orchestrator.fleet import FleetResult


@dataclass(frozen=True)
class ReportFiles:
    html: Path
    markdown: Path
    json: Path


def run_report_html(journal: Journal, run_id: str, cluster: str, result: FleetResult | None = None) -> str:
    entries = timeline_entries(journal, run_id)
    return render_html(run_id=run_id, cluster=cluster, summaries=summaries_from(entries, result), entries=entries)


def write_reports(
    journal: Journal, run_id: str, cluster: str, report_dir: Path, result: FleetResult | None = None
) -> ReportFiles:
    json_text, markdown_text = run_reports(journal, run_id, cluster, result)
    html_text = run_report_html(journal, run_id, cluster, result)
    # Private like the journal beside it: reports name the cluster's nodes, pods and files.
    report_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    files = ReportFiles(
        html=report_dir / f"shimshift-{run_id}.html",
        markdown=report_dir / f"shimshift-{run_id}.md",
        json=report_dir / f"shimshift-{run_id}.json",
    )
    files.json.write_text(json_text)
    files.markdown.write_text(markdown_text)
    files.html.write_text(html_text, encoding="utf-8")
    return files


def reports_after_run(
    journal_file: Path | None, run_id: str, cluster: str, report_dir: Path, result: FleetResult | None = None
) -> ReportFiles | None:
    """The run's reports, written once its nodes are done; None (said in one line) when the directory
    refuses them: the journal has every step, and `shimshift report` renders them later."""
    journal = Journal(journal_file)
    try:
        return write_reports(journal, run_id, cluster, report_dir, result)
    except OSError as error:
        click.echo(f"shimshift: cannot write the reports in {report_dir}: {error.strerror}", err=True)
        return None
    finally:
        journal.close()


def announce_reports(files: ReportFiles | None, run_id: str) -> None:
    if files is not None:
        click.echo(f"report: {files.html}")
        click.echo(f"  (also {files.markdown.name} and {files.json.name} in {files.html.parent})")
    else:
        click.echo(f"report: not written; the journal has it: shimshift report --run {run_id} -o html")
