"""The file exports shared by `triage` and `scan`: HTML, STIX 2.1 and IOC lists."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from restytriage.model import Report


def write_exports(
    reports: Sequence[Report],
    html: Path | None = None,
    stix: Path | None = None,
    iocs: Path | None = None,
    ioc_format: str = "csv",
    live_iocs: bool = False,
) -> None:
    if html is not None:
        from restytriage.render.html import render_html

        title = reports[0].file.name if len(reports) == 1 else f"restytriage: {len(reports)} files"
        html.write_text(render_html(reports, title), "utf-8")
    if stix is not None:
        from restytriage.render.stix import render_stix

        stix.write_text(render_stix(reports), "utf-8")
    if iocs is not None:
        from restytriage.render.iocs import render_iocs

        unique = {(i.type, i.value): i for report in reports for i in report.iocs}
        iocs.write_text(render_iocs(unique.values(), ioc_format, live_iocs), "utf-8")
