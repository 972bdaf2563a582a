"""Compressed files (gzip, bzip2, xz): one child each, its concatenated streams decompressed under the limits.

Also home of the streaming decompression every container here shares (the ZIP analyzer decodes its
members with it): `pump()` feeds a decoder small slices of input and takes at most `OUT_CHUNK`
bytes of output per call, so memory stays bounded whatever the stream claims, and `Progress`
tells the extraction limits how much input the output really came from (a bomb stops after a few
MiB of output, not at the member-size limit).
"""

from __future__ import annotations

import bz2
import lzma
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import BinaryIO, Protocol

from restytriage import findings
from restytriage.analysis import Analysis, Child, Context, Item
from restytriage.blob import OutOfTime, Sink

NAME = "compressed"
TYPES = frozenset({"gzip", "bzip2", "xz"})

FEED_CHUNK = 64 << 10  # compressed bytes handed to a decoder at once
OUT_CHUNK = 1 << 20  # decompressed bytes taken from a decoder at once
DECODE_ERRORS = (zlib.error, lzma.LZMAError, OSError, EOFError, ValueError)


class Decoder(Protocol):
    """A streaming decompressor whose output per call is bounded (zlib, bz2 and lzma objects differ)."""

    @property
    def eof(self) -> bool: ...
    @property
    def needs_input(self) -> bool: ...
    @property
    def unused_data(self) -> bytes: ...
    @property
    def pending(self) -> int: ...  # input accepted but not consumed yet (zlib keeps it outside)
    def decompress(self, data: bytes, max_length: int) -> bytes: ...


class Inflate:
    """zlib's decompressobj behind the bz2/lzma interface: unconsumed input is fed back by us."""

    def __init__(self, wbits: int = -15) -> None:
        self._z = zlib.decompressobj(wbits)
        self._output_waiting = False

    def decompress(self, data: bytes, max_length: int) -> bytes:
        out = self._z.decompress(self._z.unconsumed_tail + data, max_length)
        self._output_waiting = len(out) == max_length  # zlib may hold more output for the same input
        return out

    @property
    def eof(self) -> bool:
        return self._z.eof

    @property
    def needs_input(self) -> bool:
        return not self._z.unconsumed_tail and not self._output_waiting

    @property
    def unused_data(self) -> bytes:
        return self._z.unused_data

    @property
    def pending(self) -> int:
        return len(self._z.unconsumed_tail)


class Native:
    """bz2 and lzma decompressors already bound their output and buffer their input themselves."""

    def __init__(self, inner: bz2.BZ2Decompressor | lzma.LZMADecompressor) -> None:
        self._inner = inner

    def decompress(self, data: bytes, max_length: int) -> bytes:
        return self._inner.decompress(data, max_length)

    @property
    def eof(self) -> bool:
        return self._inner.eof

    @property
    def needs_input(self) -> bool:
        return self._inner.needs_input

    @property
    def unused_data(self) -> bytes:
        return self._inner.unused_data

    @property
    def pending(self) -> int:
        return 0


class Stored:
    """No compression: input is output; the stream ends when the input does."""

    eof = False
    needs_input = True
    unused_data = b""
    pending = 0

    def decompress(self, data: bytes, max_length: int) -> bytes:
        return data


class ZipLzma:
    """ZIP method 14: a 4-byte version/size header and the LZMA properties, then raw LZMA1 data."""

    def __init__(self) -> None:
        self._header = b""
        self._inner: lzma.LZMADecompressor | None = None

    def decompress(self, data: bytes, max_length: int) -> bytes:
        if self._inner is None:
            self._header += data
            if len(self._header) < 4:
                return b""
            (props_size,) = struct.unpack_from("<H", self._header, 2)
            if len(self._header) < 4 + props_size:
                return b""
            self._inner = lzma.LZMADecompressor(
                lzma.FORMAT_RAW, filters=[_lzma1_filter(self._header[4 : 4 + props_size])]
            )
            data = self._header[4 + props_size :]
        return self._inner.decompress(data, max_length)

    @property
    def eof(self) -> bool:
        return self._inner is not None and self._inner.eof

    @property
    def needs_input(self) -> bool:
        return self._inner is None or self._inner.needs_input

    @property
    def unused_data(self) -> bytes:
        return self._inner.unused_data if self._inner is not None else b""

    @property
    def pending(self) -> int:
        return 0


def _lzma1_filter(props: bytes) -> dict[str, int]:
    if len(props) < 5:
        raise lzma.LZMAError(f"LZMA properties are {len(props)} bytes, 5 expected")
    lc_lp_pb = props[0]
    if lc_lp_pb >= 9 * 5 * 5:
        raise lzma.LZMAError(f"invalid LZMA properties byte 0x{lc_lp_pb:02x}")
    (dict_size,) = struct.unpack_from("<I", props, 1)
    return {
        "id": lzma.FILTER_LZMA1,
        "dict_size": dict_size,
        "lc": lc_lp_pb % 9,
        "lp": (lc_lp_pb // 9) % 5,
        "pb": lc_lp_pb // 45,
    }


@dataclass
class Progress:
    """What a decompression did so far: read by the ratio limit while it runs, and by the caller after."""

    fed: int = 0  # input bytes handed to decoders
    unread: int = 0  # input bytes handed over but not consumed (zlib's tail), refreshed each step
    produced: int = 0
    crc: int = 0  # CRC-32 of the output
    error: str = ""

    def consumed(self) -> int:
        return self.fed - self.unread


def pump(
    read: Callable[[int], bytes],
    decoder: Decoder,
    write: Callable[[bytes], object],
    ctx: Context,
    progress: Progress,
) -> None:
    """Run one decoder until its stream ends, the input ends, or the data is found corrupt.

    Decode errors are recorded in `progress.error` (the output so far is kept by the caller's sink);
    limit hits raise from `write` and reach `ctx.extract`.
    """
    while not decoder.eof:
        if decoder.needs_input:
            data = read(FEED_CHUNK)
            if not data:
                return
            progress.fed += len(data)
        else:
            data = b""
        try:
            out = decoder.decompress(data, OUT_CHUNK)
        except DECODE_ERRORS as err:
            progress.error = f"{type(err).__name__}: {err}"
            return
        progress.unread = decoder.pending
        if out:
            progress.crc = zlib.crc32(out, progress.crc)
            progress.produced += len(out)
            write(out)
        ctx.check_time()


def copy_range(source: BinaryIO, start: int, length: int, sink: Sink, ctx: Context) -> int:
    """Copy `length` bytes of `source` from `start` into a sink; returns how many existed."""
    source.seek(start)
    copied = 0
    while copied < length:
        chunk = source.read(min(OUT_CHUNK, length - copied))
        if not chunk:
            break
        sink.write(chunk)
        copied += len(chunk)
        ctx.check_time()
    return copied


def is_zero_padding(source: BinaryIO, start: int, length: int) -> bool:
    """True when the range holds only NUL bytes (sector or block padding, not a payload)."""
    source.seek(start)
    left = length
    while left > 0 and (chunk := source.read(min(OUT_CHUNK, left))):
        if chunk.strip(b"\x00"):
            return False
        left -= len(chunk)
    return True


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


# --- the analyzer for gzip / bzip2 / xz files ---------------------------------------------------


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
