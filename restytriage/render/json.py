"""The JSON report: the model as is (schema in docs/report.schema.json)."""

from __future__ import annotations

import sys
from pathlib import Path

from restytriage.model import Report, to_json


def write_json(report: Report, destination: str | Path) -> None:
    write_output(to_json(report) + b"\n", destination)


def write_output(data: bytes, destination: str | Path) -> None:
    """Write to a file, or to stdout when `destination` is "-" (every output option takes it)."""
    if str(destination) == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    else:
        Path(destination).write_bytes(data)
