"""PDF objects and streams, read through pypdf the way the pdf analyzer needs them.

pypdf does the parsing (lenient mode: it repairs broken xref tables and offsets, reads object
streams, decodes filters); this module is the layer the analyzer reads the document through:
- `open_reader`, and `collect_warnings` for the repairs pypdf reports through logging;
- `ObjectWalk`: every object reachable from the trailer, trigger-giving keys first so each dictionary
  knows what sets it off (/OpenAction, an /AA event, the /Names JavaScript tree, a click), then the
  objects the xref table lists but nothing references; bounded by MAX_OBJECTS and the caller's clock;
- values that never raise: references resolved, and names, strings and file specifications read as
  text (a dangling or damaged object reads as nothing);
- streams: by reference, as text, or decoded into a Sink in bounded steps so the limits stop a bomb;
- the string syntax itself (literal and hex strings), for scripts recovered from the raw bytes.

Pure reading: no findings, no Context, no children (the `pdf` analyzer judges what is read here).
pypdf is imported on first use, as analyzers import their heavy libraries.
"""

from __future__ import annotations

import io
import logging
import re
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, NamedTuple

from restytriage.blob import Sink

MAX_OBJECTS = 100_000  # indirect objects visited in one document (pypdf reads ~10k a second)
MAX_TEXT_BYTES = 512 * 1024  # a string or stream read as text stops here (256 Ki UTF-16 characters)
MAX_WARNINGS = 100


# --- opening -----------------------------------------------------------------------------------


def open_reader(stream: io.BufferedIOBase) -> Any:
    """A pypdf reader in lenient mode. Raises whatever pypdf raises on hostile input (many types)."""
    from pypdf import PdfReader

    return PdfReader(stream, strict=False)


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if len(self.messages) < MAX_WARNINGS:
            self.messages.append(record.getMessage()[:300])


@contextmanager
def collect_warnings() -> Iterator[list[str]]:
    """pypdf reports what it repaired through logging: collect it, off the terminal."""
    logger = logging.getLogger("pypdf")
    handler = _Collect()
    propagate = logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield handler.messages
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


# --- the object walk ---------------------------------------------------------------------------


class Visit(NamedTuple):
    """A dictionary the walk reached, and how."""

    dictionary: Any
    trigger: str  # "/OpenAction", "/AA", "/AA /O" (an event), "/Names /JavaScript", "/A" (a click), ""
    owner: str  # "12 0": the indirect object holding it ("trailer" for the trailer itself)
    ref: tuple[int, int] | None  # its own reference, when it is an indirect object


@dataclass
class ObjectWalk:
    """One walk over a document's objects. Iterate `dictionaries()`; the counts fill in as it goes."""

    visited: int = 0
    unreferenced: int = 0  # of those visited, the ones reached only through the xref table
    unreadable: int = 0
    truncated: bool = False  # stopped at MAX_OBJECTS

    def dictionaries(self, reader: Any, check_time: Callable[[], None]) -> Iterator[Visit]:
        """Every object reachable from the trailer (trigger-giving keys first), then the unreferenced ones."""
        from pypdf.generic import IndirectObject

        seen: set[tuple[int, int]] = set()
        stack: list[tuple[Any, str, str, str]] = [(reader.trailer, "", "", "trailer")]
        yield from self._drain(stack, seen, check_time)
        referenced = len(seen)
        for generation, numbers in list(reader.xref.items()):
            if generation == 65535:  # the free-list head
                continue
            stack.extend((IndirectObject(number, generation, reader), "", "", "") for number in numbers)
        stack.extend((IndirectObject(number, 0, reader), "", "", "") for number in reader.xref_objStm)
        yield from self._drain(stack, seen, check_time)
        self.visited = len(seen)
        self.unreferenced = len(seen) - referenced

    def _drain(
        self,
        stack: list[tuple[Any, str, str, str]],
        seen: set[tuple[int, int]],
        check_time: Callable[[], None],
    ) -> Iterator[Visit]:
        from pypdf.generic import ArrayObject, DictionaryObject, IndirectObject

        steps = 0
        while stack:
            obj, trigger, via, owner = stack.pop()
            steps += 1
            if steps % 4096 == 0:
                check_time()
            ref: tuple[int, int] | None = None
            if isinstance(obj, IndirectObject):
                ref = (obj.idnum, obj.generation)
                if ref in seen:
                    continue
                if len(seen) >= MAX_OBJECTS:
                    self.truncated = True
                    return
                seen.add(ref)
                owner = f"{ref[0]} {ref[1]}"
                try:
                    obj = obj.get_object()
                except Exception:  # a damaged object: count it and go on
                    self.unreadable += 1
                    continue
            if isinstance(obj, DictionaryObject):
                yield Visit(obj, trigger, owner, ref)
                later, first = [], []
                for key, value in obj.items():
                    child = _child_trigger(key, trigger, via)
                    (first if child and child != trigger else later).append((value, child, key, owner))
                # Trigger keys are popped first, so an action reached both from its trigger and from
                # elsewhere (an outline, a back-reference) is attributed to the trigger.
                stack.extend(later)
                stack.extend(first)
            elif isinstance(obj, ArrayObject):
                stack.extend((value, trigger, via, owner) for value in obj)


def _child_trigger(key: str, trigger: str, via: str) -> str:
    if key == "/OpenAction":
        return "/OpenAction"
    if key == "/AA":
        return "/AA"
    if trigger == "/AA" and via == "/AA":
        return f"/AA {key}"
    if key == "/JavaScript" and via == "/Names":
        return "/Names /JavaScript"
    if key == "/A":
        return "/A"
    if key in ("/Next", "/JS", "/Names", "/Kids"):
        return trigger
    return ""


# --- values ------------------------------------------------------------------------------------


def resolve(value: Any) -> Any:
    """What a reference points to (a direct value is itself)."""
    try:
        return value.get_object() if hasattr(value, "get_object") else value
    except Exception:  # a dangling or damaged reference reads as nothing
        return None


def is_dict(value: Any) -> bool:
    return isinstance(value, dict)


def name_value(obj: Any, key: str) -> str:
    """A dictionary's name-valued entry ("/S" -> "/Launch"), or ""."""
    if key not in obj:
        return ""
    value = resolve(obj.raw_get(key))
    return str(value) if isinstance(value, str) else ""


def string_value(value: Any) -> str:
    """A string object (text or bytes) as text; anything else reads as ""."""
    value = resolve(value)
    if isinstance(value, bytes):
        return decode_text(value)
    if isinstance(value, str):
        return str(value)
    return ""


def decode_text(raw: bytes) -> str:
    if raw.startswith((b"\xfe\xff", b"\xff\xfe")):
        return raw.decode("utf-16", "replace")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def text_content(value: Any) -> str:
    """A string, or a stream's decoded contents, as text, read to MAX_TEXT_BYTES."""
    value = resolve(value)
    if hasattr(value, "get_data"):
        try:
            raw = value.get_data()[:MAX_TEXT_BYTES]
        except Exception:  # an undecodable filter chain: keep what is readable
            raw = stored_bytes(value)[:MAX_TEXT_BYTES]
        return decode_text(raw)
    return string_value(value)[:MAX_TEXT_BYTES]


def file_name(value: Any) -> str:
    """A file specification: a string, or a dictionary naming the file for each platform."""
    value = resolve(value)
    if is_dict(value):
        for key in ("/UF", "/F", "/DOS", "/Unix", "/Mac"):
            if key in value:
                return string_value(value.raw_get(key))
        return ""
    return string_value(value)


# --- streams -----------------------------------------------------------------------------------


def stream_at(reader: Any, ref: tuple[int, int]) -> Any:
    """The stream object `ref` names, or None."""
    from pypdf.generic import IndirectObject

    value = resolve(IndirectObject(ref[0], ref[1], reader))
    return value if hasattr(value, "get_data") else None


def stored_bytes(stream: Any) -> bytes:
    """A stream's bytes as stored in the file, before its filters."""
    return getattr(stream, "_data", b"")


def stream_writer(stream: Any) -> Callable[[Sink], None]:
    """Decode a stream into the sink. Plain /FlateDecode is inflated here in bounded steps, so the
    limits stop a bomb as it grows; other filter chains go through pypdf (which caps its output)."""
    filters = resolve(stream.raw_get("/Filter")) if "/Filter" in stream else None
    filters = [str(f) for f in filters] if isinstance(filters, list) else [str(filters)] if filters else []
    raw = stored_bytes(stream)

    def write(sink: Sink) -> None:
        if not filters:
            sink.write(raw)
        elif filters in (["/FlateDecode"], ["/Fl"]) and "/DecodeParms" not in stream:
            _inflate(raw, sink)
        else:
            try:
                decoded = stream.get_data()
            except Exception:  # an undecodable chain yields the bytes as stored
                decoded = raw
            sink.write(decoded)  # outside the try: a limit hit must reach ctx.extract

    return write


def _inflate(raw: bytes, sink: Sink) -> None:
    inflater = zlib.decompressobj()
    pending = raw
    try:
        while True:
            output = inflater.decompress(pending, 1 << 20)
            if output:
                sink.write(output)
            pending = inflater.unconsumed_tail
            if inflater.eof or (not pending and not output):
                break
    except zlib.error:
        pass  # a truncated or corrupt stream: keep what inflated


# --- string syntax -----------------------------------------------------------------------------

_ESCAPES = {ord("n"): b"\n", ord("r"): b"\r", ord("t"): b"\t", ord("b"): b"\b", ord("f"): b"\f"}


def literal_string(data: bytes, start: int) -> bytes:
    """A PDF (literal string) beginning at data[start] == '(' with nesting and escapes."""
    out = bytearray()
    depth, index, end = 0, start, min(len(data), start + MAX_TEXT_BYTES)
    while index < end:
        byte = data[index]
        if byte == 0x5C and index + 1 < end:  # backslash
            following = data[index + 1]
            if following in _ESCAPES:
                out += _ESCAPES[following]
                index += 2
            elif 0x30 <= following <= 0x37:
                digits = re.match(rb"[0-7]{1,3}", data[index + 1 : index + 4])
                assert digits is not None
                out.append(int(digits.group(), 8) & 0xFF)
                index += 1 + len(digits.group())
            elif following in b"\r\n":  # line continuation
                index += 3 if data[index + 1 : index + 3] == b"\r\n" else 2
            else:
                out.append(following)
                index += 2
            continue
        if byte == 0x28:
            depth += 1
            if depth == 1:
                index += 1
                continue
        elif byte == 0x29:
            depth -= 1
            if depth == 0:
                break
        out.append(byte)
        index += 1
    return bytes(out)


def hex_string(data: bytes, start: int) -> bytes:
    """A PDF <hex string> beginning at data[start] == '<' (an odd last digit is padded with 0)."""
    end = data.find(b">", start, start + 2 * MAX_TEXT_BYTES)
    digits = re.sub(rb"[^0-9A-Fa-f]", b"", data[start + 1 : end if end > 0 else start + 1])
    return bytes.fromhex((digits + b"0" * (len(digits) % 2)).decode())
