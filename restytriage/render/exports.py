"""The file exports shared by `triage` and `scan`: HTML, STIX 2.1 and IOC lists."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from restytriage.model import Report
from restytriage.render.json import write_output


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
        write_output(render_html(reports, title).encode("utf-8"), html)
    if stix is not None:
        from restytriage.render.stix import render_stix

        write_output(render_stix(reports).encode("utf-8"), stix)
    if iocs is not None:
        from restytriage.render.iocs import render_iocs

        unique = {(i.type, i.value): i for report in reports for i in report.iocs}
        write_output(render_iocs(unique.values(), ioc_format, live_iocs).encode("utf-8"), iocs)
