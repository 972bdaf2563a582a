"""The contract between the engine and an analyzer.

An analyzer is a module in `restytriage/analyzers/` with:

    NAME = "zip"                      # its key in node metadata and in finding ids
    TYPES = frozenset({"zip"})        # identified types it claims; "*" claims every node
    ORDER = 50                        # optional: lower runs first (name checks 10, YARA 90)
    def analyze(item: Item, ctx: Context) -> Analysis: ...

It reads the object through `item`, extracts children through `ctx` (which enforces the limits),
and returns data. It never prints, never touches the queue, and may raise: the engine turns an
exception into an error on the node and carries on with the rest of the tree.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from restytriage import findings
from restytriage.blob import Blob, Budget, LimitExceeded, OutOfTime, Sink
from restytriage.config import Config
from restytriage.model import IOC, Finding

# A child label one analyzer sets and another reads: the upx analyzer's unpacked image, which the pe
# analyzer does not judge again for the name and neighbours its packed parent already answered for.
UPX_UNPACKED = "upx-unpacked"
# Children carved out of another file, named by us after what the carver saw (`appended@0x521.zip`):
# the names analyzer does not judge a name the sample never claimed.
CARVED = "carved"


@dataclass(frozen=True)
class Sibling:
    name: str
    type: str


@dataclass
class Item:
    """What an analyzer sees of a node."""

    blob: Blob
    name: str
    type: str
    extension: str
    depth: int
    parent_type: str | None = None
    siblings: tuple[Sibling, ...] = ()
    labels: tuple[str, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)  # what earlier analyzers found on it


@dataclass
class Child:
    """Something found inside an object; it goes back through the engine like any file."""

    name: str  # as the container names it; shown, never used as a path on disk
    blob: Blob
    path: str = ""  # location inside the parent (member path, stream path, "overlay")
    offset: int | None = None
    labels: list[str] = field(default_factory=list)


def excerpt(text: str, limit: int = 160) -> str:
    """One line of at most `limit` characters, for facts and evidence."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


@dataclass
class Analysis:
    analyzer: str
    metadata: dict[str, Any] = field(default_factory=dict)  # everything it parsed (JSON report)
    facts: dict[str, str] = field(default_factory=dict)  # the few facts an analyst reads first (terminal)
    findings: list[Finding] = field(default_factory=list)
    children: list[Child] = field(default_factory=list)
    iocs: list[IOC] = field(default_factory=list)

    def flag(self, finding_id: str, evidence: str = "", **overrides: Any) -> Finding:
        """Raise a finding from the table (see `findings.make` for the overrides)."""
        found = findings.make(finding_id, self.analyzer, evidence, **overrides)
        self.findings.append(found)
        return found

    def ioc(self, type_: str, value: str, context: str = "") -> None:
        value = value.strip()
        if value and not any(i.type == type_ and i.value == value for i in self.iocs):
            self.iocs.append(IOC(type=type_, value=value, context=context))


class Context:
    """Per-run services for analyzers: limited extraction, the clock, identification, config."""

    def __init__(self, config: Config, temp_dir: Path | None, deadline: float) -> None:
        self.config = config
        self._temp_dir = temp_dir  # None: a private folder is made on first use
        self.deadline = deadline
        self.budget = Budget(
            total_max=config.limits.max_total_bytes,
            member_max=config.limits.max_member_bytes,
            ratio_max=config.limits.max_ratio,
        )
        self.limit_hits: list[Finding] = []  # limit findings raised during the current analyzer call

    @property
    def temp_dir(self) -> Path:
        """This run's private folder for spilled children. Made on first use: most files need none,
        and making and removing a folder for each file of a batch costs milliseconds on some disks."""
        if self._temp_dir is None:
            self._temp_dir = Path(tempfile.mkdtemp(prefix="restytriage-"))
        return self._temp_dir

    def check_time(self) -> None:
        if time.monotonic() > self.deadline:
            raise OutOfTime(f"wall-time limit of {self.config.limits.max_seconds:g}s reached")

    @property
    def exhausted(self) -> bool:
        """True once the tree has unpacked all the bytes it may: stop extracting."""
        return self.budget.total >= self.budget.total_max

    def sink(self, compressed_size: int | None = None) -> Sink:
        return Sink(self.budget, self.temp_dir, compressed_size)

    def extract(
        self,
        source: BinaryIO | Callable[[Sink], None],
        what: str,
        compressed_size: int | None = None,
        consumed: Callable[[], int] | None = None,
    ) -> Blob | None:
        """Copy a stream (or let a writer fill a sink) under the limits.

        Returns the bytes, or None when a limit stopped it: the limit is then recorded as a finding
        naming `what`, and the partial output is discarded.
        """
        sink = self.sink(compressed_size)
        sink.consumed = consumed
        try:
            if callable(source):
                source(sink)
            else:
                while chunk := source.read(1 << 20):
                    sink.write(chunk)
                    self.check_time()
        except OutOfTime:
            sink.discard()
            raise
        except LimitExceeded as hit:
            sink.discard()
            self.limit_hits.append(findings.make(hit.finding_id, "engine", f"{what}: {hit.evidence}"))
            return None
        return sink.blob()

    def identify(self, blob: Blob, name: str = "") -> str:
        from restytriage.identify import identify

        return identify(blob, name).name

    def cleanup(self) -> None:
        if self._temp_dir is not None:
            shutil.rmtree(self._temp_dir, ignore_errors=True)
