"""Reports are deterministic: the same input gives the same report (apart from when and how long),
whatever the interpreter's hash seed. Other tools diff, hash and cache these reports."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from conftest import CORPUS

PROBE = """
import json, sys
from pathlib import Path
from restytriage.engine import triage, triage_bytes
from restytriage.model import to_json
from restytriage.samples import all_samples

VOLATILE = {"generated", "duration_s", "load_seconds", "from_cache"}

def steady(value):
    if isinstance(value, dict):
        return {k: steady(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [steady(v) for v in value]
    return value

reports = {s.name: triage_bytes(s.build(), s.name) for s in all_samples()}
reports.update({p: triage(Path(p)) for p in sys.argv[1:]})
print(json.dumps({name: steady(json.loads(to_json(r))) for name, r in reports.items()}))
"""


def _reports(seed: str, extra: list[str]) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *extra],
        env={**os.environ, "PYTHONHASHSEED": seed},
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout)


def test_reports_do_not_depend_on_the_hash_seed() -> None:
    # With the corpus: an OLE Package with a source and a temp path, whose IOCs once came in set order.
    package = CORPUS / "oletools/oleobj/embedded-unicode.doc"
    extra = [str(package)] if package.is_file() else []
    first, second = _reports("1", extra), _reports("2", extra)
    assert first.keys() == second.keys() and len(first) >= 69
    assert [name for name in first if first[name] != second[name]] == []
