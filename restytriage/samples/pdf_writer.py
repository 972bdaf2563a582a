"""A small deterministic PDF writer for the inert sample set.

`build_pdf()` writes a one-page PDF 1.7 file with a text body, an Info dictionary and, on request,
the parts that make a PDF risky: an /OpenAction JavaScript action, a /Launch action, /URI link
annotations and /EmbeddedFiles attachments. Objects are written uncompressed with exact xref
offsets, so viewers, pypdf and pdfid-style keyword scanners all read the same structure. The
output depends only on the arguments (fixed dates, an /ID derived from the content).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

# Fixed dates keep the bytes stable; 2022-04 is when RestyLink decoys were sent.
CREATION_DATE = "D:20220401093000+09'00'"
PRODUCER = "Microsoft® Word for Microsoft 365"  # Word writes the same text as /Creator and /Producer
PAGE_WIDTH, PAGE_HEIGHT = 595, 842  # A4 in points
FONT_SIZE, LEADING, MARGIN = 11, 14, 56


def build_pdf(
    text: str,
    title: str = "Document",
    author: str = "Administrator",
    open_action_js: str | None = None,
    launch: str | None = None,
    uris: Sequence[str] = (),
    embedded: Mapping[str, bytes] | None = None,
    launch_parameters: str = "",
) -> bytes:
    """A one-page PDF showing `text` (one line per newline).

    `open_action_js` becomes the document's /OpenAction JavaScript; `launch` (a program, with
    `launch_parameters` as its command line) becomes a /Launch action run on open, chained after
    the JavaScript when both are given; each of `uris` is a /URI link annotation on the page;
    `embedded` maps attachment names to their bytes (/EmbeddedFiles name tree).
    """
    objects: list[bytes] = []

    def add(body: bytes) -> int:
        objects.append(body)
        return len(objects)

    catalog = add(b"")  # filled in last: it refers to objects made below
    pages = add(b"")
    font = add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
    contents = add(_stream(b"", _page_content(text)))
    annotations = [add(_link_annotation(uri, index)) for index, uri in enumerate(uris)]
    annots = b" /Annots [" + b" ".join(_ref(a) for a in annotations) + b"]" if annotations else b""
    page = add(
        b"<< /Type /Page /Parent " + _ref(pages)
        + f" /MediaBox [0 0 {PAGE_WIDTH} {PAGE_HEIGHT}]".encode()
        + b" /Resources << /Font << /F1 " + _ref(font) + b" >> >> /Contents " + _ref(contents)
        + annots + b" >>"
    )
    objects[pages - 1] = b"<< /Type /Pages /Kids [" + _ref(page) + b"] /Count 1 >>"

    open_action = None
    if launch is not None:
        open_action = add(_launch_action(launch, launch_parameters))
    if open_action_js is not None:
        chained = b" /Next " + _ref(open_action) if open_action else b""
        script = add(_stream(b"", open_action_js.encode("utf-8")))
        open_action = add(b"<< /Type /Action /S /JavaScript /JS " + _ref(script) + chained + b" >>")

    names = b""
    if embedded:
        entries = []
        for name, data in sorted(embedded.items()):
            stream = add(_stream(b" /Type /EmbeddedFile /Params << /Size " + str(len(data)).encode() + b" >>", data))
            filespec = add(
                b"<< /Type /Filespec /F " + _string(name) + b" /UF " + _string(name)
                + b" /EF << /F " + _ref(stream) + b" >> >>"
            )
            entries.append(_string(name) + b" " + _ref(filespec))
        names = b" /Names << /EmbeddedFiles << /Names [" + b" ".join(entries) + b"] >> >>"

    objects[catalog - 1] = (
        b"<< /Type /Catalog /Pages " + _ref(pages)
        + (b" /OpenAction " + _ref(open_action) if open_action else b"")
        + names + b" >>"
    )
    info = add(
        b"<< /Title " + _string(title) + b" /Author " + _string(author)
        + b" /Creator " + _string(PRODUCER)
        + b" /Producer " + _string(PRODUCER)
        + b" /CreationDate " + _string(CREATION_DATE) + b" /ModDate " + _string(CREATION_DATE) + b" >>"
    )
    return _serialize(objects, catalog, info)


def _serialize(objects: list[bytes], catalog: int, info: int) -> bytes:
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref_at = len(out)
    out += f"xref\n0 {len(objects) + 1}\n".encode() + b"0000000000 65535 f \n"
    out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    file_id = hashlib.md5(bytes(out)).hexdigest().encode()
    out += (
        f"trailer\n<< /Size {len(objects) + 1} /Root {catalog} 0 R /Info {info} 0 R".encode()
        + b" /ID [<" + file_id + b"> <" + file_id + b">] >>\n"
        + f"startxref\n{xref_at}\n%%EOF\n".encode()
    )
    return bytes(out)


def _page_content(text: str) -> bytes:
    lines = text.splitlines() or [""]
    ops = [f"BT /F1 {FONT_SIZE} Tf {LEADING} TL {MARGIN} {PAGE_HEIGHT - MARGIN} Td".encode()]
    for number, line in enumerate(lines):
        ops.append((b"T* " if number else b"") + _literal(line.encode("cp1252", "replace")) + b" Tj")
    ops.append(b"ET")
    return b"\n".join(ops)


def _link_annotation(uri: str, index: int) -> bytes:
    top = PAGE_HEIGHT - MARGIN - 40 - index * 2 * LEADING
    rect = f"[{MARGIN} {top - LEADING} {PAGE_WIDTH - MARGIN} {top}]".encode()
    return (
        b"<< /Type /Annot /Subtype /Link /Rect " + rect + b" /Border [0 0 0]"
        + b" /A << /Type /Action /S /URI /URI " + _literal(uri.encode("utf-8")) + b" >> >>"
    )


def _launch_action(program: str, parameters: str) -> bytes:
    win = b"/F " + _string(program) + (b" /P " + _string(parameters) if parameters else b"") + b" /O (open)"
    return b"<< /Type /Action /S /Launch /F " + _string(program) + b" /Win << " + win + b" >> >>"


def _stream(extra: bytes, data: bytes) -> bytes:
    return b"<< /Length " + str(len(data)).encode() + extra + b" >>\nstream\n" + data + b"\nendstream"


def _ref(number: int) -> bytes:
    return f"{number} 0 R".encode()


def _string(text: str) -> bytes:
    """A text string: PDFDocEncoding-safe ASCII as a literal, anything else as UTF-16BE with BOM."""
    if text.isascii():
        return _literal(text.encode("ascii"))
    return b"<FEFF" + text.encode("utf-16-be").hex().upper().encode() + b">"


def _literal(raw: bytes) -> bytes:
    out = bytearray(b"(")
    for byte in raw:
        if byte in b"()\\":
            out += b"\\" + bytes([byte])
        elif 0x20 <= byte < 0x7F:
            out.append(byte)
        else:
            out += f"\\{byte:03o}".encode()
    return bytes(out + b")")
