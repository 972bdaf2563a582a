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
    font = add(_dict(Type=b"/Font", Subtype=b"/Type1", BaseFont=b"/Helvetica", Encoding=b"/WinAnsiEncoding"))
    contents = add(_stream(b"", _page_content(text)))
    annotations = [add(_link_annotation(uri, index)) for index, uri in enumerate(uris)]
    page = add(
        _dict(
            Type=b"/Page",
            Parent=_ref(pages),
            MediaBox=f"[0 0 {PAGE_WIDTH} {PAGE_HEIGHT}]".encode(),
            Resources=_dict(Font=_dict(F1=_ref(font))),
            Contents=_ref(contents),
            Annots=b"[" + b" ".join(_ref(a) for a in annotations) + b"]" if annotations else None,
        )
    )
    objects[pages - 1] = _dict(Type=b"/Pages", Kids=b"[" + _ref(page) + b"]", Count=b"1")

    open_action = None
    if launch is not None:
        open_action = add(_launch_action(launch, launch_parameters))
    if open_action_js is not None:
        script = add(_stream(b"", open_action_js.encode("utf-8")))
        chained = _ref(open_action) if open_action else None
        open_action = add(_dict(Type=b"/Action", S=b"/JavaScript", JS=_ref(script), Next=chained))

    names = None
    if embedded:
        entries = []
        for name, data in sorted(embedded.items()):
            params = b" /Type /EmbeddedFile /Params " + _dict(Size=str(len(data)).encode())
            stream = add(_stream(params, data))
            filespec = add(
                _dict(Type=b"/Filespec", F=_string(name), UF=_string(name), EF=_dict(F=_ref(stream)))
            )
            entries.append(_string(name) + b" " + _ref(filespec))
        names = _dict(EmbeddedFiles=_dict(Names=b"[" + b" ".join(entries) + b"]"))

    objects[catalog - 1] = _dict(
        Type=b"/Catalog",
        Pages=_ref(pages),
        OpenAction=_ref(open_action) if open_action else None,
        Names=names,
    )
    info = add(
        _dict(
            Title=_string(title),
            Author=_string(author),
            Creator=_string(PRODUCER),
            Producer=_string(PRODUCER),
            CreationDate=_string(CREATION_DATE),
            ModDate=_string(CREATION_DATE),
        )
    )
    return assemble(objects, catalog, info)


def assemble(objects: Sequence[bytes], catalog: int, info: int | None = None) -> bytes:
    """A PDF file from object bodies (object N is objects[N-1]) with a correct xref table.

    Lets tests and other builders write PDFs `build_pdf` does not cover (forms, remote actions,
    compressed streams); `catalog` and `info` are object numbers.
    """
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
        f"trailer\n<< /Size {len(objects) + 1} /Root {catalog} 0 R".encode()
        + (f" /Info {info} 0 R".encode() if info else b"")
        + b" /ID [<"
        + file_id
        + b"> <"
        + file_id
        + b">] >>\n"
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
    action = _dict(Type=b"/Action", S=b"/URI", URI=_literal(uri.encode("utf-8")))
    return _dict(Type=b"/Annot", Subtype=b"/Link", Rect=rect, Border=b"[0 0 0]", A=action)


def _launch_action(program: str, parameters: str) -> bytes:
    windows = _dict(F=_string(program), P=_string(parameters) if parameters else None, O=b"(open)")
    return _dict(Type=b"/Action", S=b"/Launch", F=_string(program), Win=windows)


def _dict(**entries: bytes | None) -> bytes:
    """A dictionary from key=value pairs in order; None values are left out."""
    body = b" ".join(
        b"/" + key.encode() + b" " + value for key, value in entries.items() if value is not None
    )
    return b"<< " + body + b" >>"


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
