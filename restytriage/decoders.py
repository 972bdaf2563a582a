"""Bounded streaming decompression, and bounded copies of byte ranges, shared by the container analyzers.

`pump()` feeds a decoder small slices of input and takes at most `OUT_CHUNK` bytes of output per
call, so memory stays bounded whatever the stream claims, and `Progress` tells the extraction limits
how much input the output really came from (a bomb stops after a few MiB of output, not at the
member-size limit). The decoders put zlib, bz2 and lzma (and the LZMA framing of ZIP method 14)
behind one interface; each analyzer picks the one its stream needs. `copy_range()` and
`is_zero_padding()` read a range of an open file a chunk at a time: disc image files, bytes before
or after an archive or a compressed stream.
"""

from __future__ import annotations

import bz2
import lzma
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO, Protocol

from restytriage.analysis import Context
from restytriage.blob import Sink

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
