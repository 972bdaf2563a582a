"""The JSON report: the model as is (schema in docs/report.schema.json)."""

from __future__ import annotations

import sys
from pathlib import Path

from restytriage.model import Report, to_json


def write_json(report: Report, destination: str) -> None:
    """Write to a file, or to stdout when `destination` is "-"."""
    data = to_json(report) + b"\n"
    if destination == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    else:
        Path(destination).write_bytes(data)
