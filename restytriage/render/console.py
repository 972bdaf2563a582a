"""The terminal report: verdict first, then the unpacked tree, findings, techniques and IOCs.

Reads only the report model. Rich drops colour by itself with NO_COLOR or when the output is not a
terminal, so the same code gives a plain, readable report in logs and tickets.
"""

from __future__ import annotations

from rich import box
from rich.console import Console, Group
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from restytriage import verdict as verdicts
from restytriage.model import Finding, Node, Report, walk
from restytriage.render import shown

VERDICT_STYLE = {
    "malicious": "bold white on red",
    "suspicious": "bold black on yellow",
    "clean": "bold white on green",
}
SEVERITY_STYLE = {"critical": "bold red", "high": "red", "medium": "yellow", "low": "cyan", "info": "dim"}
FACT_WIDTH = 160
MAX_TREE_FINDINGS = 6


def render(report: Report, console: Console) -> None:
    console.print(_headline(report))
    console.print(_tree(report.root))
    findings = [(node, f) for node in walk(report.root) for f in node.findings]
    if findings:
        console.print(_findings_table(findings, with_evidence=console.width >= 140))
    if report.techniques:
        console.print(_techniques_table(report))
    if report.iocs:
        console.print(_iocs_table(report))
    stats = report.stats
    console.print(
        Text(
            f"{stats.nodes} object(s), {stats.bytes_unpacked:,} bytes unpacked, {stats.duration_s:.2f}s"
            f" - restytriage {report.tool.version}, report schema {report.schema_version}",
            style="dim",
        )
    )


def _headline(report: Report) -> Panel:
    title = Text(f" {report.verdict.upper()} ", style=VERDICT_STYLE[report.verdict])
    title.append(f"  score {report.score}/100", style="bold")
    lines = [
        title,
        Text(f"{_short(report.file.name, 200)}  ({report.file.type}, {report.file.size:,} bytes)"),
        Text(f"sha256 {report.file.sha256}", style="dim"),
    ]
    lines += [Text(f"  - {_short(reason, 110)}") for reason in report.reasons]
    return Panel(Group(*lines), box=box.HEAVY, expand=False)


def _label(node: Node) -> Text:
    text = Text()
    text.append(_short(node.name or "(unnamed)", 100), style="bold")  # a Text: no markup to escape
    text.append(f"  [{node.type}] {node.size:,} B", style="cyan")
    if node.description and node.description != node.type:
        text.append(f"  {node.description}", style="dim")
    if node.offset is not None:
        text.append(f"  @0x{node.offset:x}", style="dim")
    if node.labels:
        text.append(f"  ({', '.join(node.labels)})", style="magenta")
    text.append(f"\nsha256 {node.sha256}", style="dim")
    if node.duplicate_of:
        text.append(f"\nsame content as node {node.duplicate_of}: analysed there", style="dim")
    return text


def _tree(root: Node) -> Tree:
    tree = Tree(_label(root), guide_style="dim")
    stack: list[tuple[Node, Tree]] = [(root, tree)]
    while stack:
        node, branch = stack.pop()
        for key, value in node.facts.items():
            branch.add(Text(f"{key}: ", style="green").append(_short(value, FACT_WIDTH), style="default"))
        strongest = verdicts.strongest(node.findings)
        for found in strongest[:MAX_TREE_FINDINGS]:
            branch.add(_finding_line(found))
        if len(strongest) > MAX_TREE_FINDINGS:
            branch.add(Text(f"... {len(strongest) - MAX_TREE_FINDINGS} more finding(s) below", style="dim"))
        for error in node.errors:
            branch.add(Text(f"error in {error.analyzer}: {_short(error.message, FACT_WIDTH)}", style="red"))
        branches = [(child, branch.add(_label(child))) for child in node.children]
        stack.extend(reversed(branches))
    return tree


def _finding_line(found: Finding) -> Text:
    line = Text(f"{found.severity.upper():8}", style=SEVERITY_STYLE[found.severity])
    line.append(f" {found.title}")
    if found.techniques:
        line.append(f" [{', '.join(found.techniques)}]", style="magenta")
    if found.evidence:
        line.append(f" - {_short(found.evidence, 120)}", style="dim")
    return line


def _findings_table(rows: list[tuple[Node, Finding]], with_evidence: bool) -> Table:
    """All findings, strongest first; evidence only on wide terminals (the tree shows it anyway)."""
    table = Table(title="Findings", box=box.SIMPLE_HEAVY, show_lines=False, title_justify="left")
    columns = ("sev", "score", "finding", "ATT&CK", "node") + (("evidence",) if with_evidence else ())
    for column in columns:
        table.add_column(column, overflow="fold")
    rows = sorted(rows, key=lambda row: (-row[1].score, row[0].id))
    for node, found in rows:
        table.add_row(
            Text(found.severity, style=SEVERITY_STYLE[found.severity]),
            str(found.score),
            escape(shown(found.title)),
            ", ".join(found.techniques),
            escape(f"{node.id} {_short(node.name, 40)}"),
            *((escape(_short(found.evidence, 200)),) if with_evidence else ()),
        )
    return table


def _techniques_table(report: Report) -> Table:
    table = Table(title="ATT&CK techniques", box=box.SIMPLE_HEAVY, title_justify="left")
    table.add_column("id")
    table.add_column("technique")
    table.add_column("from findings", overflow="fold")
    for technique in report.techniques:
        table.add_row(technique.id, technique.name, ", ".join(technique.findings))
    return table


def _iocs_table(report: Report) -> Table:
    table = Table(title="Indicators", box=box.SIMPLE_HEAVY, title_justify="left")
    table.add_column("type")
    table.add_column("value", overflow="fold")
    table.add_column("seen in", overflow="fold")
    for ioc in report.iocs:
        table.add_row(ioc.type, escape(shown(ioc.value)), escape(shown(f"node {ioc.node}: {ioc.context}")))
    return table


def _short(text: str, width: int) -> str:
    """One line, at most `width` characters; control characters shown escaped."""
    flat = shown(text)
    return flat if len(flat) <= width else flat[: width - 3] + "..."
