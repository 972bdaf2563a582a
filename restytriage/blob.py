"""Bytes of one object under analysis: in memory when small, in a private temp file when large.

Analyzers never see where a blob lives: they `open()` it as a stream, or `read()` it whole when the
format needs it. Large children spill to files in the run's private temp folder with names chosen
here, never names taken from the sample.
"""

from __future__ import annotations

import hashlib
import io
import mmap
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

CHUNK = 1 << 20
HEAD_SIZE = 64 * 1024
IN_MEMORY_MAX = 8 << 20  # children larger than this are spilled to a temp file
MEMORY_POOL = 64 << 20  # all extracted children held in memory at once; past it, new ones spill


@dataclass
class Hashes:
    md5: str
    sha1: str
    sha256: str


@dataclass
class Blob:
    """Read-only bytes: either `data` in memory or a file at `path` (the sample or a private temp file)."""

    data: bytes | None = None
    path: Path | None = None
    _head: bytes | None = field(default=None, repr=False)

    @classmethod
    def of(cls, data: bytes) -> Blob:
        return cls(data=bytes(data))

    @property
    def size(self) -> int:
        if self.data is not None:
            return len(self.data)
        assert self.path is not None
        return self.path.stat().st_size

    def open(self) -> BinaryIO:
        if self.data is not None:
            return io.BytesIO(self.data)
        assert self.path is not None
        return open(self.path, "rb")

    def read(self, limit: int | None = None) -> bytes:
        """The whole content (or its first `limit` bytes)."""
        if self.data is not None:
            return self.data if limit is None else self.data[:limit]
        with self.open() as fh:
            # read(n) allocates n bytes before reading: a generous cap must not cost its size
            return fh.read() if limit is None else fh.read(min(limit, self.size))

    @contextmanager
    def mapped(self) -> Iterator[bytes | mmap.mmap]:
        """The whole content for random access without reading it: the bytes, or the file mapped
        read-only (pages are read on touch and stay reclaimable page cache, not process memory)."""
        if self.data is not None or self.size == 0:  # an empty file cannot be mapped
            yield self.data if self.data is not None else b""
            return
        with self.open() as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as view:
            yield view

    def read_at(self, offset: int, size: int) -> bytes:
        if self.data is not None:
            return self.data[offset : offset + size]
        with self.open() as fh:
            fh.seek(offset)
            return fh.read(size)

    @property
    def head(self) -> bytes:
        if self._head is None:
            self._head = self.read(HEAD_SIZE)
        return self._head

    def tail(self, size: int) -> bytes:
        return self.read_at(max(0, self.size - size), size)

    def hashes(self) -> Hashes:
        md5, sha1, sha256 = hashlib.md5(), hashlib.sha1(), hashlib.sha256()
        with self.open() as fh:
            while chunk := fh.read(CHUNK):
                md5.update(chunk)
                sha1.update(chunk)
                sha256.update(chunk)
        return Hashes(md5.hexdigest(), sha1.hexdigest(), sha256.hexdigest())


def slice_writer(data: bytes | mmap.mmap, start: int, stop: int) -> Callable[[Sink], None]:
    """A writer for `Context.extract`: data[start:stop] in CHUNK pieces, never copied whole."""

    def write(sink: Sink) -> None:
        for at in range(start, stop, CHUNK):
            sink.write(data[at : min(stop, at + CHUNK)])

    return write


class OutOfTime(BaseException):
    """The file's wall-time limit passed. A BaseException, so that no `except Exception` in an
    analyzer or a library can swallow it: it reaches the analyzer's own partial-report handler, if
    it has one, and the engine, which records `limit.time` and analyses nothing more."""

    finding_id = "limit.time"

    def __init__(self, evidence: str) -> None:
        super().__init__(evidence)
        self.evidence = evidence


class LimitExceeded(Exception):
    """A configured limit stopped an extraction; `finding_id` names the limit finding to raise."""

    def __init__(self, finding_id: str, evidence: str) -> None:
        super().__init__(evidence)
        self.finding_id = finding_id
        self.evidence = evidence


class Sink(io.RawIOBase):
    """A writable target for extracted bytes that enforces the extraction limits as bytes arrive.

    Counts the bytes actually written (never sizes an archive declares). `compressed_size`, when
    known, lets it stop a decompression bomb early; `consumed` may be a callable that tells how many
    compressed bytes were read so far, for an accurate running ratio.
    """

    def __init__(self, budget: Budget, temp_dir: Path, compressed_size: int | None = None) -> None:
        super().__init__()
        self._budget = budget
        self._temp_dir = temp_dir
        self._compressed = compressed_size
        self._buffer: io.BytesIO | None = io.BytesIO()
        self._file: BinaryIO | None = None
        self._path: Path | None = None
        self.written = 0
        self.consumed: object = None  # optional callable returning compressed bytes read so far

    def writable(self) -> bool:
        return True

    def write(self, chunk: bytes) -> int:  # type: ignore[override]
        size = len(chunk)
        self._budget.charge(self.written, size, self._ratio_base())
        self.written += size
        if self._buffer is not None and (
            self.written > IN_MEMORY_MAX or self._budget.in_memory + self.written > MEMORY_POOL
        ):
            self._path = self._budget.new_temp_path(self._temp_dir)
            self._file = open(self._path, "wb")  # noqa: SIM115 - closed in blob() or discard()
            self._file.write(self._buffer.getvalue())
            self._buffer = None
        (self._buffer or self._file).write(chunk)  # type: ignore[union-attr]
        return size

    def _ratio_base(self) -> int | None:
        if callable(self.consumed):
            return max(1, int(self.consumed()))
        return self._compressed

    def blob(self) -> Blob:
        """Finish writing and hand over the bytes."""
        if self._buffer is not None:
            self._budget.in_memory += self.written
            return Blob(data=self._buffer.getvalue())
        assert self._file is not None and self._path is not None
        self._file.close()
        return Blob(path=self._path)

    def discard(self) -> None:
        if self._file is not None:
            self._file.close()
        if self._path is not None:
            self._path.unlink(missing_ok=True)
        self._buffer = None


@dataclass
class Budget:
    """The byte limits of one triage run, shared by every extraction in its tree."""

    total_max: int
    member_max: int
    ratio_max: float
    ratio_floor: int = 1 << 20  # ratios are only judged past this many output bytes
    total: int = 0
    in_memory: int = 0  # bytes of extracted children currently held in memory
    _temp_counter: int = 0

    def charge(self, already: int, size: int, compressed: int | None) -> None:
        after = already + size
        if after > self.member_max:
            raise LimitExceeded("limit.member_size", f"member grew past {self.member_max:,} bytes")
        if self.total + size > self.total_max:
            raise LimitExceeded("limit.total_bytes", f"tree unpacked more than {self.total_max:,} bytes")
        if compressed and after > self.ratio_floor and after / compressed > self.ratio_max:
            raise LimitExceeded(
                "limit.compression_ratio",
                f"{after:,} bytes out of {compressed:,} compressed (ratio > {self.ratio_max:g})",
            )
        self.total += size

    def release(self, blob: Blob) -> None:
        """Free a processed child's bytes (temp files go at once, not at the end of the run)."""
        if blob.data is not None:
            self.in_memory = max(0, self.in_memory - len(blob.data))
            blob.data = None
        elif blob.path is not None:
            blob.path.unlink(missing_ok=True)

    def new_temp_path(self, temp_dir: Path) -> Path:
        self._temp_counter += 1
        path = temp_dir / f"blob-{self._temp_counter:06d}.bin"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)
        return path
