"""Batch output for people: a progress bar while scanning, a summary at the end.

Reads only scan outcomes and the reports' JSON; never analyses.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from rich import box
from rich.console import Console
from rich.control import strip_control_codes
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from restytriage.batch import VERDICT_RANK, Outcome, ScanResult
from restytriage.render.console import VERDICT_STYLE

TOP = 10
MAX_FLAGGED_ROWS = 50  # strongest first; the full list is in --json / --jsonl


class ScanProgress:
    """A rich progress bar on a terminal (files, MB, files/s, ETA); one plain line per file otherwise."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.live = console.is_terminal
        self.progress = Progress(
            TextColumn("[bold]scanning"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[megabytes]:.1f}/{task.fields[total_mb]:.1f} MB"),
            TextColumn("{task.fields[rate]:.1f} files/s"),
            TimeRemainingColumn(),
            console=console,
            disable=not self.live,
        )
        self.task: TaskID | None = None
        self.done_bytes = 0
        self.started = 0.0

    def __enter__(self) -> ScanProgress:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(*exc)

    def listed(self, files: int, total_bytes: int) -> None:
        import time

        self.started = time.monotonic()
        self.task = self.progress.add_task(
            "scan", total=files, megabytes=0.0, total_mb=total_bytes / 1e6, rate=0.0
        )

    def advance(self, outcome: Outcome) -> None:
        import time

        self.done_bytes += outcome.entry.size
        if self.task is not None:
            done = self.progress.tasks[0].completed + 1
            elapsed = max(1e-6, time.monotonic() - self.started)
            self.progress.update(self.task, advance=1, megabytes=self.done_bytes / 1e6, rate=done / elapsed)
        if not self.live:  # a log, not a terminal: one plain line per file, without rich's layout cost
            label = outcome.verdict or outcome.status
            path = strip_control_codes(outcome.entry.paths[0])
            self.console.file.write(f"{label:10} {outcome.score:3} {path}\n")


def visible(outcomes: Sequence[Outcome], min_verdict: str) -> list[Outcome]:
    """Outcomes at or above `min_verdict`; files without a report (timeouts, crashes) always show."""
    floor = VERDICT_RANK[min_verdict]
    return [o for o in outcomes if o.verdict is None or VERDICT_RANK[o.verdict] >= floor]


def render_summary(result: ScanResult, console: Console, min_verdict: str = "clean") -> None:
    outcomes = result.outcomes
    counts = Counter(o.verdict or o.status for o in outcomes)
    cached = sum(o.status == "cached" for o in outcomes)
    seconds = result.finished - result.started
    head = Text(f"{len(outcomes)} unique file(s) in {seconds:.1f}s ({cached} from cache)  ")
    for label in ("malicious", "suspicious", "clean", "timeout", "crash", "error"):
        if counts.get(label):
            head.append(f" {counts[label]} {label} ", style=VERDICT_STYLE.get(label, "bold red"))
            head.append(" ")
    if result.skipped:
        head.append(f" {len(result.skipped)} skipped")
    console.print(head)
    if result.interrupted:
        console.print(
            "interrupted: results so far are saved; run the same command again to resume", style="bold yellow"
        )
    flagged = sorted(
        (
            o
            for o in visible(outcomes, max(min_verdict, "suspicious", key=VERDICT_RANK.__getitem__))
            if o.verdict
        ),
        key=lambda o: -o.score,
    )
    if flagged:
        table = Table(title="Files that matter", box=box.SIMPLE_HEAVY, title_justify="left")
        for column in ("verdict", "score", "path", "top reasons"):
            table.add_column(column, overflow="fold")
        for o in flagged[:MAX_FLAGGED_ROWS]:
            gist = o.gist()
            reasons = "; ".join(gist.reasons[:3]) if gist else ""
            paths = o.entry.paths[0] + (
                f" (+{len(o.entry.paths) - 1} copies)" if len(o.entry.paths) > 1 else ""
            )
            table.add_row(
                Text(o.verdict or "", style=VERDICT_STYLE[o.verdict or "clean"]), str(o.score), paths, reasons
            )
        console.print(table)
        if len(flagged) > MAX_FLAGGED_ROWS:
            console.print(
                f"... and {len(flagged) - MAX_FLAGGED_ROWS} more flagged file(s): see --json or --jsonl"
            )
    failed = [o for o in outcomes if o.status in ("timeout", "crash", "error")]
    if failed:
        table = Table(title="Not analysed", box=box.SIMPLE_HEAVY, title_justify="left")
        for column in ("status", "path", "reason"):
            table.add_column(column, overflow="fold")
        for o in failed:
            table.add_row(o.status, o.entry.paths[0], o.reason)
        console.print(table)
    _top_table(console, "Top techniques", _techniques(outcomes))
    _top_table(console, "Top indicators", _iocs(outcomes))
    slowest = sorted((o for o in outcomes if o.status != "cached"), key=lambda o: -o.seconds)[:5]
    if slowest:
        _top_table(console, "Slowest files", [(f"{o.seconds:.2f}s", o.entry.paths[0]) for o in slowest])
    for skipped in result.skipped[:TOP]:
        console.print(f"skipped {skipped.path}: {skipped.reason}", style="dim", markup=False)
    if len(result.skipped) > TOP:
        console.print(f"... and {len(result.skipped) - TOP} more skipped", style="dim")
    for warning in result.warnings:
        console.print(f"warning: {warning}", style="yellow", markup=False)


def _techniques(outcomes: Sequence[Outcome]) -> list[tuple[str, str]]:
    counts: Counter[tuple[str, str]] = Counter()
    for o in outcomes:
        gist = o.gist()
        for t in gist.techniques if gist else ():
            counts[(t.id, t.name)] += 1
    return [(f"{n} file(s)", f"{tid} {name}") for (tid, name), n in counts.most_common(TOP)]


def _iocs(outcomes: Sequence[Outcome]) -> list[tuple[str, str]]:
    counts: Counter[tuple[str, str]] = Counter()
    for o in outcomes:
        gist = o.gist()
        for i in gist.iocs if gist else ():
            counts[(i.type, i.value)] += 1
    return [(f"{n} file(s)", f"{kind}: {value}") for (kind, value), n in counts.most_common(TOP)]


def _top_table(console: Console, title: str, rows: list[tuple[str, str]]) -> None:
    if not rows:
        return
    table = Table(title=title, box=box.SIMPLE_HEAVY, title_justify="left", show_header=False)
    table.add_column("count")
    table.add_column("what", overflow="fold")
    for row in rows:
        table.add_row(*row)
    console.print(table)
