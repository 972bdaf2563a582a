"""`restytriage demo`: build the inert sample set, triage each sample, show what the tool sees."""

from __future__ import annotations

from pathlib import Path

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from restytriage.engine import triage
from restytriage.model import to_json
from restytriage.render.console import VERDICT_STYLE, render
from restytriage.samples import build_all


def run_demo(directory: Path, show: str, console: Console) -> None:
    samples = build_all(directory / "samples")
    reports_dir = directory / "reports"
    reports_dir.mkdir(parents=True, exist_ok=True)
    table = Table(
        title=f"{len(samples)} inert samples in {directory / 'samples'}",
        box=box.SIMPLE_HEAVY,
        title_justify="left",
    )
    wide = console.width >= 160  # what each sample imitates is long: only on wide terminals
    for column in ("sample", *(("imitates",) if wide else ()), "verdict", "score", "expected", "top reason"):
        table.add_column(column, overflow="fold")
    reports = {}
    for sample, path in samples:
        report = triage(path)
        reports[sample.name] = report
        (reports_dir / f"{path.name}.json").write_bytes(to_json(report))
        agrees = report.verdict == sample.verdict
        table.add_row(
            sample.name,
            *((sample.imitates,) if wide else ()),
            Text(report.verdict, style=VERDICT_STYLE[report.verdict]),
            str(report.score),
            Text(sample.verdict, style="" if agrees else "bold red"),
            (report.reasons[0] if report.reasons else "")[:70],
        )
    console.print(table)
    console.print(f"JSON reports: {reports_dir}")
    if not reports:
        return
    chosen = reports.get(show) or max(reports.values(), key=lambda r: r.score)
    console.rule(f"full report: {chosen.file.name}")
    render(chosen, console)
