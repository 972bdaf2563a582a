"""Names: what the claimed name says against what the content is (every node, parent and child)."""

from __future__ import annotations

import re
import unicodedata
from pathlib import PureWindowsPath

from restytriage.analysis import CARVED, Analysis, Context, Item
from restytriage.identify import DOCUMENT_EXTENSIONS, EXECUTABLE_TYPES, EXTENSIONS, RISKY_OUTER

NAME = "names"
TYPES = frozenset({"*"})
ORDER = 10

BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f")
RESERVED = frozenset(
    {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(1, 10)), *(f"lpt{i}" for i in range(1, 10))}
)
PADDING = re.compile(r"[\s\u00a0\u2000-\u200b\u3000_]{8,}\.\w{1,5}$")


def analyze(item: Item, ctx: Context) -> Analysis:
    out = Analysis(NAME)
    name = item.name
    if not name or CARVED in item.labels:
        return out
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    suffixes = [s.lower() for s in base.split(".")[1:]]
    if any(ch in BIDI_CONTROLS for ch in name):
        shown = "".join(f"<U+{ord(c):04X}>" if c in BIDI_CONTROLS else c for c in name)
        out.flag("names.bidi_override", f"{shown!r} (displays as {_as_displayed(base)!r})")
    if len(suffixes) >= 2 and suffixes[-2] in DOCUMENT_EXTENSIONS and suffixes[-1] in RISKY_OUTER:
        out.flag("names.double_extension", f"{base!r}: .{suffixes[-2]} shown, .{suffixes[-1]} real")
    if PADDING.search(base):
        out.flag("names.padded_extension", f"{base!r}: the real extension is pushed out of view")
    _check_type(item, out)
    _check_path(name, base, out)
    return out


def _check_type(item: Item, out: Analysis) -> None:
    ext = item.extension
    if not ext or item.type in ("data", "empty", "text") or ext in EXTENSIONS.get(item.type, ()):
        return
    claimed = [t for t, exts in EXTENSIONS.items() if ext in exts]
    if not claimed:
        return
    evidence = f".{ext} claims {'/'.join(claimed)}, content is {item.type}"
    if item.type in EXECUTABLE_TYPES and ext in DOCUMENT_EXTENSIONS:
        out.flag("names.executable_as_document", evidence)
    else:
        out.flag("names.type_mismatch", evidence)


def _check_path(name: str, base: str, out: Analysis) -> None:
    if item_is_traversal(name):
        out.flag("names.path_traversal", f"{name!r} would escape an extraction folder")
    stem = base.split(".")[0].rstrip(" ").lower()
    if stem in RESERVED:
        out.flag("names.reserved_device", f"{base!r} is a reserved Windows device name")
    if (
        "\x00" in name
        or any(0xDC80 <= ord(ch) <= 0xDCFF for ch in name)
        or any(unicodedata.category(ch) == "Cc" for ch in name)
    ):
        out.flag("names.invalid_characters", f"{name!r} holds NUL, control or undecodable bytes")
    if len(name) > 255:
        out.flag("names.very_long", f"{len(name)} characters")


def item_is_traversal(name: str) -> bool:
    unified = name.replace("\\", "/")
    parts = unified.split("/")
    return (
        ".." in parts
        or unified.startswith("/")
        or unified.startswith("//")
        or bool(PureWindowsPath(name).drive)
        or bool(re.match(r"^[A-Za-z]:", name))
    )


def _as_displayed(name: str) -> str:
    """Roughly what Explorer shows for a name with a right-to-left override."""
    if "\u202e" not in name:
        return name
    before, _, after = name.partition("\u202e")
    return before + after[::-1]
