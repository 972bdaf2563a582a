"""Compressed files (gzip, bzip2, xz): one child each, its concatenated streams decompressed under the limits.

The streams go through the bounded decoders of `restytriage.decoders`; what follows the last one is
either padding or carved out as a child of its own.
"""

from __future__ import annotations

import bz2
import lzma
import struct
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import BinaryIO

from restytriage import findings
from restytriage.analysis import Analysis, Child, Context, Item
from restytriage.blob import OutOfTime, Sink
from restytriage.decoders import Decoder, Inflate, Native, Progress, copy_range, is_zero_padding, pump

NAME = "compressed"
TYPES = frozenset({"gzip", "bzip2", "xz"})


@dataclass(frozen=True)
class _Format:
    magic: bytes  # how each (possibly concatenated) stream starts
    new_decoder: Callable[[], Decoder]
    suffixes: tuple[str, ...]  # what the decompressed file's name drops


_FORMATS = {
    "gzip": _Format(b"\x1f\x8b", lambda: Inflate(31), (".gz", ".gzip", ".z")),
    "bzip2": _Format(b"BZh", lambda: Native(bz2.BZ2Decompressor()), (".bz2", ".bz", ".bzip2")),
    "xz": _Format(b"\xfd7zXZ\x00", lambda: Native(lzma.LZMADecompressor(lzma.FORMAT_XZ)), (".xz",)),
}
_TAR_SUFFIXES = {".tgz": ".tar", ".taz": ".tar", ".tbz": ".tar", ".tbz2": ".tar", ".txz": ".tar"}
_GZIP_OS = {0: "FAT", 3: "Unix", 6: "HPFS", 7: "Macintosh", 10: "TOPS-20", 11: "NTFS", 255: "unknown"}


@dataclass
class _Streams:
    count: int = 0
    truncated: bool = False
    trailing_at: int | None = None  # offset of bytes after the last stream that start no new stream


class _PushbackReader:
    """A stream that can take back what a decoder read past the end of its own stream."""

    def __init__(self, source: BinaryIO) -> None:
        self._source = source
        self._back = b""
        self.position = 0  # bytes handed out and not pushed back

    def read(self, size: int) -> bytes:
        if self._back:
            data, self._back = self._back[:size], self._back[size:]
        else:
            data = self._source.read(size)
        self.position += len(data)
        return data

    def push_back(self, data: bytes) -> None:
        self._back = data + self._back
        self.position -= len(data)

    def peek(self, size: int) -> bytes:
        data = self.read(size)
        self.push_back(data)
        return data


def analyze(item: Item, ctx: Context) -> Analysis:
    out = Analysis(NAME)
    fmt = _FORMATS[item.type]
    if item.type == "gzip":
        header = _gzip_header(item.blob.head)
        out.metadata["gzip"] = header
        if header.get("name"):
            out.facts["original name"] = str(header["name"])
    progress = Progress()
    streams = _Streams()

    def decompress_all(sink: Sink) -> None:
        with item.blob.open() as source:
            reader = _PushbackReader(source)
            while True:
                decoder = fmt.new_decoder()
                streams.count += 1
                pump(reader.read, decoder, sink.write, ctx, progress)
                if progress.error:
                    return
                if not decoder.eof:
                    streams.truncated = True
                    return
                reader.push_back(decoder.unused_data)
                progress.fed, progress.unread = reader.position, 0
                following = reader.peek(len(fmt.magic))
                if not following:
                    return
                if not following.startswith(fmt.magic):
                    streams.trailing_at = reader.position
                    return

    try:
        blob = ctx.extract(decompress_all, f"{item.type} stream", consumed=progress.consumed)
    except OutOfTime as hit:  # report what is known, keep the tree going
        out.findings.append(findings.make(hit.finding_id, NAME, hit.evidence))
        return out
    out.metadata.update(
        streams=streams.count,
        compressed_size=item.blob.size,
        decompressed_size=progress.produced,
        crc32=f"{progress.crc:08x}",
    )
    if progress.error:
        out.flag("compressed.damaged", f"corrupt data after {progress.produced:,} bytes: {progress.error}")
    elif streams.truncated:
        out.flag("compressed.damaged", f"the stream ends early (truncated) after {progress.produced:,} bytes")
    if streams.trailing_at is not None:
        _trailing_data(item, streams.trailing_at, out, ctx)
    if blob is not None:
        name = _decompressed_name(item, fmt.suffixes)
        labels = ["partial"] if progress.error or streams.truncated else []
        out.children.append(Child(name, blob, path=name, labels=labels))
    return out


def _trailing_data(item: Item, offset: int, out: Analysis, ctx: Context) -> None:
    """Bytes after the compressed data: zero padding is normal (tar blocks, xz), anything else is carved."""
    size = item.blob.size - offset
    out.metadata["trailing_bytes"] = size
    with item.blob.open() as source:
        padding = is_zero_padding(source, offset, size)
    if padding:
        out.metadata["trailing_padding"] = True
        return
    out.flag("compressed.trailing_data", f"{size:,} bytes after the compressed data at offset 0x{offset:x}")

    def carve(sink: Sink) -> None:
        with item.blob.open() as source:
            copy_range(source, offset, size, sink, ctx)

    blob = ctx.extract(carve, "data after the compressed stream")
    if blob is not None:
        out.children.append(
            Child("trailing data", blob, path=f"trailing@0x{offset:x}", offset=offset, labels=["appended"])
        )


def _decompressed_name(item: Item, suffixes: tuple[str, ...]) -> str:
    """What `gunzip` and friends would call the output (the gzip header's own name is shown apart)."""
    lowered = item.name.lower()
    for suffix, replacement in _TAR_SUFFIXES.items():
        if lowered.endswith(suffix):
            return item.name[: -len(suffix)] + replacement
    for suffix in suffixes:
        if lowered.endswith(suffix) and len(item.name) > len(suffix):
            return item.name[: -len(suffix)]
    return item.name


def _gzip_header(head: bytes) -> dict[str, object]:
    """RFC 1952 member header: modification time, OS, original name and comment."""
    if len(head) < 10:
        return {"error": "header truncated"}
    flags, mtime, extra_flags, os_id = head[3], *struct.unpack_from("<IBB", head, 4)
    header: dict[str, object] = {"method": head[2], "flags": flags, "os": _GZIP_OS.get(os_id, str(os_id))}
    if mtime:
        header["modified"] = datetime.fromtimestamp(mtime, UTC).isoformat()
    if extra_flags in (2, 4):
        header["level"] = "best" if extra_flags == 2 else "fastest"
    at = 10
    if flags & 0x04 and at + 2 <= len(head):  # FEXTRA
        (extra_size,) = struct.unpack_from("<H", head, at)
        at += 2 + extra_size
    for flag, key in ((0x08, "name"), (0x10, "comment")):
        if flags & flag:
            end = head.find(b"\x00", at)
            if end < 0:
                header[key + "_truncated"] = True
                break
            header[key] = head[at:end].decode("latin-1")
            at = end + 1
    return header
