"""One self-contained HTML page (inline CSS, no scripts, no external assets) for one or more reports.

IOCs are shown defanged so the page never carries a live link to attacker infrastructure; the only
links are to ATT&CK technique pages. Readable when printed (details expanded, no colours needed).
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from restytriage import attack, verdict
from restytriage.model import Node, Report, walk
from restytriage.render.iocs import defang

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:2em auto;max-width:1200px;color:#1b1f24;padding:0 1em}
h1{font-size:1.5em;margin:.2em 0} h2{font-size:1.2em;border-bottom:1px solid #d0d7de;padding-bottom:.2em;margin-top:1.6em}
.badge{display:inline-block;padding:.15em .6em;border-radius:4px;font-weight:700;color:#fff;text-transform:uppercase}
.malicious{background:#c62828}.suspicious{background:#b7791f}.clean{background:#2e7d32}
.mono,code,td.h{font-family:ui-monospace,SFMono-Regular,Consolas,monospace;font-size:12.5px}
table{border-collapse:collapse;width:100%;margin:.5em 0} th,td{border:1px solid #d0d7de;padding:.3em .5em;text-align:left;vertical-align:top;word-break:break-word}
th{background:#f6f8fa} .sev-critical,.sev-high{color:#c62828;font-weight:700}.sev-medium{color:#9a6700;font-weight:700}.sev-low{color:#0969da}.sev-info{color:#57606a}
ul.tree{list-style:none;padding-left:1.2em;border-left:1px dotted #8c959f} ul.tree.root{border:0;padding:0}
.node{margin:.35em 0}.meta{color:#57606a}.fact{margin-left:1em}.fact b{color:#1a7f37}
pre{white-space:pre-wrap;background:#f6f8fa;padding:.5em;border-radius:4px;max-height:30em;overflow:auto}
section.report{page-break-after:always}
@media print{body{margin:0;max-width:none}pre{max-height:none}a{color:inherit;text-decoration:none}}
"""


def render_html(reports: Sequence[Report], title: str = "restytriage report") -> str:
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width,initial-scale=1'>",
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body>",
    ]
    if len(reports) > 1:
        parts.append(_overview(reports))
    parts += [_report(report, index) for index, report in enumerate(reports)]
    parts.append("</body></html>")
    return "\n".join(parts)


def _badge(label: str) -> str:
    return f"<span class='badge {label}'>{escape(label)}</span>"


def _overview(reports: Sequence[Report]) -> str:
    rows = "".join(
        f"<tr><td>{_badge(r.verdict)}</td><td>{r.score}</td><td><a href='#r{i}'>{escape(r.file.name)}</a></td>"
        f"<td>{escape(r.reasons[0] if r.reasons else '')}</td></tr>"
        for i, r in sorted(enumerate(reports), key=lambda pair: -pair[1].score)
    )
    return (
        f"<h1>{len(reports)} files</h1><table><tr><th>verdict</th><th>score</th><th>file</th>"
        f"<th>top reason</th></tr>{rows}</table>"
    )


def _report(report: Report, index: int) -> str:
    file = report.file
    reasons = "".join(f"<li>{escape(r)}</li>" for r in report.reasons) or "<li>no findings of note</li>"
    return (
        f"<section class='report' id='r{index}'>"
        f"<h1>{_badge(report.verdict)} score {report.score}/100 &mdash; {escape(file.name)}</h1>"
        f"<div class='meta mono'>{escape(file.type)}, {file.size:,} bytes<br>sha256 {file.sha256}<br>"
        f"sha1 {file.sha1}<br>md5 {file.md5}</div><ul>{reasons}</ul>"
        f"<h2>Unpacked tree</h2><ul class='tree root'>{_node(report.root)}</ul>"
        f"{_findings(report)}{_techniques(report)}{_iocs(report)}"
        f"<p class='meta'>{report.stats.nodes} object(s), {report.stats.bytes_unpacked:,} bytes unpacked, "
        f"{report.stats.duration_s:.2f}s &mdash; restytriage {escape(report.tool.version)}, "
        f"schema {escape(report.schema_version)}, generated {escape(report.generated)}</p></section>"
    )


def _node(root: Node) -> str:
    # Iterative rendering: trees can be deep and recursion depth is attacker-controlled.
    out: list[str] = []
    stack: list[Node | str] = [root]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            out.append(item)
            continue
        out.append(_node_head(item))
        stack.append("</li>")
        if item.children:
            stack.append("</ul>")
            stack.extend(reversed(item.children))
            stack.append("<ul class='tree'>")
    return "".join(out)


def _node_head(node: Node) -> str:
    where = f" @0x{node.offset:x}" if node.offset is not None else ""
    labels = f" <em>({escape(', '.join(node.labels))})</em>" if node.labels else ""
    facts = "".join(
        f"<div class='fact'><b>{escape(k)}:</b> "
        + (f"<pre>{escape(v)}</pre>" if "\n" in v or len(v) > 160 else f"<code>{escape(v)}</code>")
        + "</div>"
        for k, v in node.facts.items()
    )
    found = "".join(
        f"<div class='fact sev-{f.severity}'>{escape(f.severity.upper())} {escape(f.title)}"
        f"{' [' + escape(', '.join(f.techniques)) + ']' if f.techniques else ''}"
        f"<span class='meta'> {escape(f.evidence[:300])}</span></div>"
        for f in verdict.strongest(node.findings)
    )
    errors = "".join(
        f"<div class='fact sev-high'>error in {escape(e.analyzer)}: {escape(e.message)}</div>"
        for e in node.errors
    )
    duplicate = (
        f"<div class='fact meta'>same content as node {escape(node.duplicate_of)}</div>"
        if node.duplicate_of
        else ""
    )
    return (
        f"<li class='node'><b>{escape(node.name or '(unnamed)')}</b> "
        f"<span class='meta'>[{escape(node.type)}] {node.size:,} B{where} {escape(node.description)}</span>{labels}"
        f"<div class='meta mono'>sha256 {node.sha256}</div>{facts}{found}{errors}{duplicate}"
    )


def _technique_links(ids: Sequence[str]) -> str:
    return ", ".join(f"<a href='{attack.url(t)}'>{escape(t)}</a>" for t in ids)


def _findings(report: Report) -> str:
    rows = sorted(
        ((n, f) for n in walk(report.root) for f in n.findings), key=lambda p: (-p[1].score, p[0].id)
    )
    if not rows:
        return ""
    body = "".join(
        f"<tr><td class='sev-{f.severity}'>{f.severity}</td><td>{f.score}</td><td>{escape(f.title)}</td>"
        f"<td>{_technique_links(f.techniques)}</td><td>{escape(n.id)} {escape(n.name[:60])}</td>"
        f"<td class='mono'>{escape(f.evidence[:500])}</td></tr>"
        for n, f in rows
    )
    return (
        "<h2>Findings</h2><table><tr><th>severity</th><th>score</th><th>finding</th><th>ATT&amp;CK</th>"
        f"<th>node</th><th>evidence</th></tr>{body}</table>"
    )


def _techniques(report: Report) -> str:
    if not report.techniques:
        return ""
    body = "".join(
        f"<tr><td>{_technique_links([t.id])}</td><td>{escape(t.name)}</td><td>{escape(', '.join(t.findings))}</td></tr>"
        for t in report.techniques
    )
    return f"<h2>ATT&amp;CK techniques</h2><table><tr><th>id</th><th>technique</th><th>from findings</th></tr>{body}</table>"


def _iocs(report: Report) -> str:
    if not report.iocs:
        return ""
    body = "".join(
        f"<tr><td>{escape(i.type)}</td><td class='mono'>{escape(defang(i.type, i.value))}</td>"
        f"<td>node {escape(i.node)}: {escape(i.context)}</td></tr>"
        for i in report.iocs
    )
    return f"<h2>Indicators (defanged)</h2><table><tr><th>type</th><th>value</th><th>seen in</th></tr>{body}</table>"
