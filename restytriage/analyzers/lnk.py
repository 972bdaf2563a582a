"""Windows shortcuts (MS-SHLLINK): what a double-click runs, what it writes where, what rides inside.

Three layers:

1. Structure. The sections are walked here as Windows reads them (section sizes, the 260-character
   cap on the name, relative path and working directory, no cap on the arguments, the terminal
   block), which tells where the shortcut ends and which sizes lie. LnkParse3 decodes each section
   (header, shell items, LinkInfo, extra blocks); a section it cannot decode is reported as a
   problem and the others still are.
2. Command. The command line a double-click runs is rebuilt (target from the environment block,
   the IDList, LinkInfo or the relative path, in Windows' order, plus the full arguments), then
   unwrapped: `cmd /c` chains are split into steps (carets removed, `set` variables substituted,
   `for`/`if` bodies taken out), nested cmd and -EncodedCommand PowerShell are decoded, and every
   piece is read for files written, documents opened, downloads and URLs.
3. Payloads and detection. Bytes after the structure (and inside undocumented blocks) are carved
   into child objects; Sigma process_creation rules run on the process creation the double-click
   implies (and on the processes its cmd steps start).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import mmap
import re
import struct
import uuid
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import PureWindowsPath
from typing import Any

from restytriage.analysis import Analysis, Child, Context, Item
from restytriage.blob import Blob
from restytriage.carve import Buffer, Carved, carve_embedded, gaps
from restytriage.identify import DOCUMENT_EXTENSIONS, EXECUTABLE_EXTENSIONS

NAME = "lnk"
TYPES = frozenset({"lnk"})

HEADER_SIZE = 0x4C
HAS_ID_LIST, HAS_LINK_INFO, IS_UNICODE, FORCE_NO_LINK_INFO = 0x1, 0x2, 0x80, 0x100
HAS_EXP_STRING = 0x200
# StringData in file order: (key, flag, label, capped at 260 characters by Windows)
STRING_FIELDS = (
    ("description", 0x4, "name", True),
    ("relative_path", 0x8, "relative path", True),
    ("working_directory", 0x10, "working directory", True),
    ("arguments", 0x20, "arguments", False),
    ("icon_location", 0x40, "icon location", False),
)
WINDOWS_STRING_CAP = 260
EXPLORER_TARGET_FIELD = 260  # characters of target + arguments the Properties dialog shows

# Extra-data blocks: signature -> (name, size MS-SHLLINK fixes, or None when variable)
BLOCKS: dict[int, tuple[str, int | None]] = {
    0xA0000001: ("environment", 0x314),
    0xA0000002: ("console", 0xCC),
    0xA0000003: ("tracker", 0x60),
    0xA0000004: ("console_codepage", 0xC),
    0xA0000005: ("special_folder", 0x10),
    0xA0000006: ("darwin", 0x314),
    0xA0000007: ("icon_environment", 0x314),
    0xA0000008: ("shim", None),
    0xA0000009: ("property_store", None),
    0xA000000B: ("known_folder", 0x1C),
    0xA000000C: ("vista_id_list", None),
}
SHOW_COMMANDS = {1: "SW_SHOWNORMAL", 3: "SW_SHOWMAXIMIZED", 7: "SW_SHOWMINNOACTIVE"}

MY_COMPUTER = "20D04FE0-3AEA-1069-A2D8-08002B30309D"
ROOT_FOLDERS = {
    "59031A47-3F72-44A7-89C5-5595FE6B30EE": "%USERPROFILE%",
    "450D8FBA-AD25-11D0-98A8-0800361B1103": "%USERPROFILE%\\Documents",
    "208D2C60-3AEA-1069-A2D7-08002B30309D": "::Network",
    "F02C1A0D-BE21-4350-88B0-7367FC96EF3C": "::Network",
    "21EC2020-3AEA-1069-A2DD-08002B30309D": "::Control Panel",
    "26EE0668-A00A-44D7-9371-BEB064C98683": "::Control Panel",
    "645FF040-5081-101B-9F08-00AA002F954E": "::Recycle Bin",
    "031E4825-7B94-4DC3-B131-E946B44C8DD5": "::Libraries",
}
KNOWN_FOLDERS = {
    "1AC14E77-02E7-4E5D-B744-2EB1AE5198B7": "System",
    "D65231B0-B2F1-4857-A4CE-A8E7C6EA7D27": "SystemX86",
    "F38BF404-1D43-42F2-9305-67DE0B28FC23": "Windows",
    "905E63B6-C1BF-494E-B29C-65B732D3D21A": "ProgramFiles",
    "7C5A40EF-A0FB-4BFC-874A-C0F2E0B9FA8E": "ProgramFilesX86",
    "62AB5D82-FDC1-4DC3-A9DD-070D1D495D97": "ProgramData",
    "B4BFCC3A-DB2C-424C-B029-7FE99A87C641": "Desktop",
    "FDD39AD0-238F-46AF-ADB4-6C85480369C7": "Documents",
    "374DE290-123F-4565-9164-39C4925E467B": "Downloads",
    "3EB685DB-65F9-4CF6-A03A-E3EF65729F3D": "RoamingAppData",
    "F1B32785-6FBA-4FCF-9D55-7B8E7F157091": "LocalAppData",
    "B97D20BB-F46A-4C97-BA10-5E3608430854": "Startup",
    "82A5EA35-D9CD-47C5-9629-E15D2F714E6E": "CommonStartup",
    "A63293E8-664E-48DB-A079-DF759E0509F7": "Templates",
    "DFDF76A2-C82A-4D63-906A-5644AC457385": "Public",
    "5E6C858F-0E22-4760-9AFE-EA3317B67173": "Profile",
}
SPECIAL_FOLDERS = {
    0x05: "CSIDL_PERSONAL",
    0x07: "CSIDL_STARTUP",
    0x10: "CSIDL_DESKTOPDIRECTORY",
    0x15: "CSIDL_TEMPLATES",
    0x18: "CSIDL_COMMON_STARTUP",
    0x1A: "CSIDL_APPDATA",
    0x1C: "CSIDL_LOCAL_APPDATA",
    0x23: "CSIDL_COMMON_APPDATA",
    0x24: "CSIDL_WINDOWS",
    0x25: "CSIDL_SYSTEM",
    0x26: "CSIDL_PROGRAM_FILES",
    0x28: "CSIDL_PROFILE",
    0x29: "CSIDL_SYSTEMX86",
    0x2A: "CSIDL_PROGRAM_FILESX86",
}

# Default values of the variables a shortcut's paths use, for the process-creation event and for
# comparing sources; per-user values stay symbolic (the user is unknown).
_PROFILE = "C:\\Users\\%USERNAME%"
ENVIRONMENT_DEFAULTS = {
    "systemroot": "C:\\Windows",
    "windir": "C:\\Windows",
    "systemdrive": "C:",
    "homedrive": "C:",
    "programfiles": "C:\\Program Files",
    "programfiles(x86)": "C:\\Program Files (x86)",
    "programw6432": "C:\\Program Files",
    "commonprogramfiles": "C:\\Program Files\\Common Files",
    "commonprogramfiles(x86)": "C:\\Program Files (x86)\\Common Files",
    "programdata": "C:\\ProgramData",
    "allusersprofile": "C:\\ProgramData",
    "public": "C:\\Users\\Public",
    "comspec": "C:\\Windows\\System32\\cmd.exe",
    "userprofile": _PROFILE,
    "homepath": "\\Users\\%USERNAME%",
    "appdata": _PROFILE + "\\AppData\\Roaming",
    "localappdata": _PROFILE + "\\AppData\\Local",
    "temp": _PROFILE + "\\AppData\\Local\\Temp",
    "tmp": _PROFILE + "\\AppData\\Local\\Temp",
}

# Programs a shortcut may start, by what their presence as the target means (finding id).
TARGET_FINDINGS = {
    **dict.fromkeys(("cmd",), "lnk.target_cmd"),
    **dict.fromkeys(("powershell", "pwsh", "powershell_ise"), "lnk.target_powershell"),
    **dict.fromkeys(("wscript", "cscript"), "lnk.target_script_host"),
    **dict.fromkeys(("mshta",), "lnk.target_mshta"),
    **dict.fromkeys(("rundll32",), "lnk.target_rundll32"),
    **dict.fromkeys(("regsvr32",), "lnk.target_regsvr32"),
    **dict.fromkeys(("msiexec",), "lnk.target_msiexec"),
    **dict.fromkeys(("wmic",), "lnk.target_wmic"),
    **dict.fromkeys(
        (
            "certutil",
            "bitsadmin",
            "curl",
            "wget",
            "certreq",
            "finger",
            "ftp",
            "tftp",
            "esentutl",
            "expand",
            "extrac32",
        ),
        "lnk.target_downloader",
    ),
    **dict.fromkeys(
        (
            "forfiles",
            "conhost",
            "pcalua",
            "explorer",
            "scriptrunner",
            "wsl",
            "bash",
            "syncappvpublishingserver",
        ),
        "lnk.target_indirect",
    ),
    **dict.fromkeys(
        (
            "hh",
            "cmstp",
            "msbuild",
            "installutil",
            "regasm",
            "regsvcs",
            "odbcconf",
            "control",
            "msdt",
            "presentationhost",
            "ieexec",
            "infdefaultinstall",
            "mavinject",
            "xwizard",
            "msxsl",
            "csc",
            "jsc",
        ),
        "lnk.target_proxy",
    ),
}
# Where known Windows programs live, for the implied process's Image when a step names them bare.
_SYSTEM32 = "C:\\Windows\\System32\\"
PROGRAM_PATHS = {
    "powershell": _SYSTEM32 + "WindowsPowerShell\\v1.0\\powershell.exe",
    "pwsh": "C:\\Program Files\\PowerShell\\7\\pwsh.exe",
    "explorer": "C:\\Windows\\explorer.exe",
    "hh": "C:\\Windows\\hh.exe",
    **{
        name: f"C:\\Windows\\Microsoft.NET\\Framework64\\v4.0.30319\\{name}.exe"
        for name in ("msbuild", "installutil", "regasm", "regsvcs", "csc", "jsc")
    },
}
# How Windows opens a script or package: (host program, its command line)
SCRIPT_HOSTS = {
    **dict.fromkeys(
        ("bat", "cmd"), (_SYSTEM32 + "cmd.exe", 'C:\\Windows\\system32\\cmd.exe /c ""{path}"{args}"')
    ),
    **dict.fromkeys(
        ("vbs", "vbe", "js", "jse", "wsf", "wsh"),
        (_SYSTEM32 + "wscript.exe", '"' + _SYSTEM32 + 'WScript.exe" "{path}"{args}'),
    ),
    "hta": (_SYSTEM32 + "mshta.exe", '"' + _SYSTEM32 + 'mshta.exe" "{path}"{args}'),
    "msi": (_SYSTEM32 + "msiexec.exe", '"' + _SYSTEM32 + 'msiexec.exe" /i "{path}"{args}'),
    "cpl": (_SYSTEM32 + "control.exe", '"' + _SYSTEM32 + 'control.exe" "{path}"{args}'),
}
ORIGINAL_FILE_NAMES = {"pwsh": "pwsh.dll"}  # PE OriginalFileName where it differs from the file name
CMD_BUILTINS = frozenset(
    [
        "assoc",
        "break",
        "call",
        "cd",
        "chdir",
        "cls",
        "color",
        "copy",
        "date",
        "del",
        "dir",
        "echo",
        "endlocal",
        "erase",
        "exit",
        "for",
        "ftype",
        "goto",
        "if",
        "md",
        "mkdir",
        "mklink",
        "move",
        "path",
        "pause",
        "popd",
        "prompt",
        "pushd",
        "rd",
        "rem",
        "ren",
        "rename",
        "rmdir",
        "set",
        "setlocal",
        "shift",
        "start",
        "time",
        "title",
        "type",
        "ver",
        "verify",
        "vol",
    ]
)
SCRIPT_EXTENSIONS = frozenset(["bat", "cmd", "ps1", "vbs", "vbe", "js", "jse", "wsf", "wsh", "hta", "sct"])
TEMPLATE_EXTENSIONS = frozenset(
    [
        "dot",
        "dotm",
        "dotx",
        "wll",
        "doc",
        "docm",
        "xla",
        "xlam",
        "xls",
        "xlsm",
        "xlsb",
        "xlt",
        "xltm",
        "xltx",
        "xll",
        "ppa",
        "ppam",
    ]
)
ADDIN_EXTENSIONS = frozenset({"wll", "xll", "xla", "xlam", "ppa", "ppam"})
# What a carved object's type must be to be the file a command opens (decoy) or writes (payload)
EXTENSION_TYPES = {
    "pdf": {"pdf"},
    "doc": {"ole", "rtf"},
    "dot": {"ole"},
    "xls": {"ole"},
    "xla": {"ole"},
    "xlt": {"ole"},
    "ppt": {"ole"},
    "rtf": {"rtf"},
    "docx": {"ooxml", "zip"},
    "docm": {"ooxml", "zip"},
    "dotm": {"ooxml", "zip"},
    "dotx": {"ooxml", "zip"},
    "xlsx": {"ooxml", "zip"},
    "xlsm": {"ooxml", "zip"},
    "xlam": {"ooxml", "zip"},
    "xlsb": {"ooxml", "zip"},
    "pptx": {"ooxml", "zip"},
    "ppam": {"ooxml", "zip"},
    "wll": {"pe"},
    "xll": {"pe"},
    "exe": {"pe"},
    "dll": {"pe"},
    "zip": {"zip"},
    "cab": {"cab"},
    "rar": {"rar"},
    "7z": {"7z"},
}
# Icons that make a shortcut look like a document, a folder or a browser link
ICON_APPS = {
    "msedge.exe": "Edge (PDF/browser)",
    "chrome.exe": "Chrome",
    "firefox.exe": "Firefox",
    "iexplore.exe": "Internet Explorer",
    "acrord32.exe": "Adobe Reader",
    "acrobat.exe": "Adobe Acrobat",
    "foxitpdfreader.exe": "Foxit PDF Reader",
    "foxitreader.exe": "Foxit Reader",
    "winword.exe": "Word",
    "excel.exe": "Excel",
    "powerpnt.exe": "PowerPoint",
    "wordpad.exe": "WordPad",
    "notepad.exe": "Notepad",
    "explorer.exe": "folder (Explorer)",
}
SHELL32_DISGUISES = {0: "generic file", 1: "document", 3: "folder", 4: "open folder"}

# Start-up locations: (pattern on a lower-cased path with backslashes, kind)
STARTUP_LOCATIONS = (
    (
        re.compile(
            r"\\microsoft\\word\\startup(?:\\|$)|\\microsoft office\\(?:root\\)?office\d+\\startup(?:\\|$)"
        ),
        "Word STARTUP",
    ),
    (
        re.compile(
            r"\\microsoft\\excel\\xlstart(?:\\|$)|\\microsoft office\\(?:root\\)?office\d+\\xlstart(?:\\|$)"
        ),
        "Excel XLSTART",
    ),
    (re.compile(r"\\microsoft\\templates\\normal(?:email)?\.dotm$"), "Office global template"),
    (re.compile(r"\\microsoft\\addins(?:\\|$)"), "Office AddIns"),
    (
        re.compile(r"\\start menu\\programs\\startup(?:\\|$)|(?:^|[\s\"'=])shell:(?:common )?startup\b"),
        "Windows Startup folder",
    ),
    (re.compile(r"\\currentversion\\(?:run|runonce)(?:\\|$|\s)"), "Run key"),
)
OFFICE_STARTUP_KINDS = frozenset({"Word STARTUP", "Excel XLSTART", "Office global template"})

_URL = re.compile(r"(?i)\b(?:https?|hxxps?|ftp)(?:://|\[://\])[^\s\"'<>|^`)(,;]+")
_UNC = re.compile(r"\\\\([A-Za-z0-9][\w.-]*)(?:@(?:ssl|\d+)(?:@\d+)?)?\\")
_IP = re.compile(r"^(?:25[0-5]|2[0-4]\d|1?\d?\d)(?:\.(?:25[0-5]|2[0-4]\d|1?\d?\d)){3}$")
_SID = re.compile(r"\bS-1-5-21-\d+-\d+-\d+-\d+\b")
_ENV_VAR = re.compile(r"%([A-Za-z_][\w()]*)%")
_PADDING = re.compile(r"[ \t\u00a0\u3000]{20,}")
_CONTROL = re.compile(r"[\r\n\x0b\x0c\x11-\x13]")
_ELSE = re.compile(r"(?i)\)\s*else\s*\(")
_REDIRECT = re.compile(r"(?<![\d&<>])\d?>>?\s*(\"[^\"]*\"|[^\s&|<>]+)")
_CMD_CALL = re.compile(
    r"(?i)(?:^|[\s\"'(&|,;=@])(?:[^\s\"'&|]{0,260}\\)?cmd(?:\.exe)?\"?\s+(?:/[a-bd-jl-qs-z](?::\w+)?\s*)*/[ckr]\s*(.*)",
    re.S,
)
_ENCODED = re.compile(r"(?i)(?:^|\s)[-/\u2013\u2014\u2015](e[a-z]*)\s+[\"']?([A-Za-z0-9+/]{16,}={0,2})")
_FROM_BASE64 = re.compile(r"(?i)frombase64string\(\s*[\"']([A-Za-z0-9+/=\s]{16,})[\"']")
_DOWNLOAD = re.compile(
    r"(?i)\b(?:downloadstring|downloadfile|downloaddata|openread|net\.webclient|invoke-webrequest|invoke-restmethod"
    r"|iwr|irm|start-bitstransfer|msxml2\.(?:server)?xmlhttp|winhttp\.winhttprequest"
    r"|bitsadmin(?:\.exe)?\s[^&|\n]{0,300}?/(?:transfer|addfile)|certutil(?:\.exe)?\s[^&|\n]{0,300}?-urlcache"
    r"|curl(?:\.exe)?\s+\S|wget(?:\.exe)?\s+\S|certreq(?:\.exe)?\s[^&|\n]{0,300}?-post)"
)
_REMOTE_EXECUTION = re.compile(
    r"(?i)\b(?:mshta|regsvr32|msiexec|rundll32|wscript|cscript|hh|pubprn)(?:\.exe)?\b[^&|\n]{0,300}?(?:https?://|\\\\[\w.-]+@)"
)
_PS_HIDDEN = re.compile(
    r"(?i)(?:^|\s)[-/]w(?:i(?:n(?:d(?:o(?:w(?:s(?:t(?:y(?:le?)?)?)?)?)?)?)?)?)?\s+(?:h(?:i(?:d(?:d(?:en?)?)?)?)?|1)\b"
)
_CMD_HIDDEN = re.compile(
    r"(?i)\bstart\b[^&|\n]{0,200}?\s/(?:min|b)\b|\bconhost(?:\.exe)?\b[^&|\n]{0,200}?--headless|\.run\b[^&|\n]{0,300}?,\s*0\b"
)
POWERSHELL = frozenset({"powershell", "pwsh", "powershell_ise"})
_POWERSHELL_CALL = re.compile(r"(?i)\b(?:powershell|pwsh)(?:_ise)?(?:\.exe)?\b[\"']?")
_POWERSHELL_VALUED_SWITCHES = frozenset(
    {
        "w",
        "wi",
        "win",
        "window",
        "windowstyle",
        "ep",
        "ex",
        "exec",
        "executionpolicy",
        "v",
        "version",
        "inputformat",
        "if",
        "outputformat",
        "of",
        "configurationname",
        "psconsolefile",
        "workingdirectory",
        "wd",
        "settingsfile",
    }
)
_PS_WRITE_METHODS = re.compile(
    r"(?i)(?:downloadfile\([^,]{1,500},\s*|write(?:allbytes|alltext|alllines)\(\s*|copy\(\s*[^,]{1,500},\s*)([^,)]{1,300}(?:\)[^,)]{0,300})?)"
)
_PS_OPEN = re.compile(
    r"(?i)\b(?:start-process|saps|start|invoke-item|ii)\s+(?:-filepath\s+)?[\"']?([^\"';|]{1,260}?\.(\w{2,4}))\b"
)


@dataclass
class Block:
    signature: int
    offset: int
    size: int
    kind: str


@dataclass
class Layout:
    """Where each part of the shortcut is, as Windows reads it, and what does not add up."""

    file_size: int
    flags: int = 0
    sections: list[dict[str, Any]] = field(default_factory=list)
    id_items: list[tuple[int, int]] = field(default_factory=list)  # (offset, size) of each shell item
    link_info: tuple[int, int] | None = None
    strings: dict[str, str] = field(default_factory=dict)
    string_counts: dict[str, int] = field(default_factory=dict)
    blocks: list[Block] = field(default_factory=list)
    end: int = 0  # the first byte after the shortcut structure
    truncated: bool = False
    problems: list[str] = field(default_factory=list)  # malformed: sizes past the end, truncation
    notes: list[str] = field(default_factory=list)  # odd but harmless
    overflows: list[str] = field(default_factory=list)  # string counts above Windows' 260

    def section(self, name: str, offset: int, size: int) -> None:
        self.sections.append({"name": name, "offset": offset, "size": size})

    def cut(self, problem: str) -> int:
        """Record that a section runs past the end of the data; nothing after it can be read."""
        self.problems.append(problem)
        self.truncated = True
        return self.file_size


@dataclass(frozen=True)
class Write:
    destination: str
    source: str | None
    tool: str
    step: str


@dataclass
class CommandView:
    """The command line and what unwrapping it showed."""

    line: str
    program: str  # the target's file name, lower-case, without .exe
    arguments: str
    texts: list[tuple[str, str]] = field(default_factory=list)  # (where from, text) for pattern checks
    steps: list[str] = field(default_factory=list)  # cmd steps, top level and nested
    statements: list[str] = field(default_factory=list)  # PowerShell statements
    decoded: list[dict[str, str]] = field(default_factory=list)
    writes: list[Write] = field(default_factory=list)
    opens: list[str] = field(default_factory=list)
    # (program, its arguments) for each process the top-level steps start
    child_programs: list[tuple[str, str]] = field(default_factory=list)


@contextmanager
def _bytes_of(blob: Blob) -> Iterator[Buffer]:
    """The object's bytes: in memory, or memory-mapped when it lives in a file (tails can be large)."""
    if blob.data is not None:
        yield blob.data
        return
    with blob.open() as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
        yield mapped


def analyze(item: Item, ctx: Context) -> Analysis:
    out = Analysis(NAME)
    with _bytes_of(item.blob) as data:
        layout = _walk(data)
        head = bytes(data[: layout.end])
        meta = _decode_sections(head, layout)
        target = _resolve_target(meta, layout)
        command = _analyse_command(target, layout.strings.get("arguments", ""))
        out.metadata.update(meta)
        out.metadata["target"] = target
        out.metadata["command"] = _command_metadata(command)
        _judge_structure(layout, out)
        _judge_target(meta, layout, target, command, out)
        _judge_command(command, layout, item, out)
        _tracker_iocs(meta, out)
        labels = _payload_labels(command)
        _carve(data, layout, ctx, labels, out)
        out.metadata["structure"] = _structure_metadata(layout)
    _run_sigma(target, command, layout, ctx, out)
    _facts(meta, layout, target, command, out)
    return out


# --- 1. Structure ---------------------------------------------------------------------------------


def _u16(data: Buffer, pos: int) -> int:
    return struct.unpack_from("<H", data, pos)[0]


def _u32(data: Buffer, pos: int) -> int:
    return struct.unpack_from("<I", data, pos)[0]


def _walk(data: Buffer) -> Layout:
    layout = Layout(file_size=len(data))
    if len(data) < HEADER_SIZE:
        layout.end = layout.cut(f"header truncated: {len(data)} of {HEADER_SIZE} bytes")
        return layout
    layout.section("header", 0, HEADER_SIZE)
    layout.flags = _u32(data, 20)
    pos = HEADER_SIZE
    if layout.flags & HAS_ID_LIST:
        pos = _walk_id_list(data, pos, layout)
    if layout.flags & HAS_LINK_INFO and not layout.flags & FORCE_NO_LINK_INFO and not layout.truncated:
        pos = _walk_link_info(data, pos, layout)
    if not layout.truncated:
        pos = _walk_strings(data, pos, layout)
    layout.end = pos if layout.truncated else _walk_extra(data, pos, layout)
    return layout


def _walk_id_list(data: Buffer, pos: int, layout: Layout) -> int:
    size = len(data)
    if pos + 2 > size:
        return layout.cut("IDList size field missing")
    list_size = _u16(data, pos)
    end = pos + 2 + list_size
    layout.section("id_list", pos, 2 + list_size)
    at, limit = pos + 2, min(end, size)
    while at + 2 <= limit:
        item_size = _u16(data, at)
        if item_size == 0:
            break
        if item_size < 3 or at + item_size > limit:
            layout.problems.append(
                f"shell item at offset {at} claims {item_size} bytes, {limit - at} remain in the IDList"
            )
            break
        layout.id_items.append((at, item_size))
        at += item_size
    if end > size:
        return layout.cut(f"IDList claims {list_size} bytes, {size - pos - 2} remain")
    return end


def _walk_link_info(data: Buffer, pos: int, layout: Layout) -> int:
    size = len(data)
    if pos + 8 > size:
        return layout.cut("LinkInfo header missing")
    info_size, header_size = struct.unpack_from("<II", data, pos)
    layout.section("link_info", pos, info_size)
    if info_size < 0x1C or header_size < 0x1C or header_size > info_size:
        layout.problems.append(f"LinkInfo sizes do not fit (size {info_size}, header {header_size})")
    if pos + info_size > size:
        return layout.cut(f"LinkInfo claims {info_size} bytes, {size - pos} remain")
    if info_size >= 0x1C:
        names = ("VolumeID", "LocalBasePath", "CommonNetworkRelativeLink", "CommonPathSuffix")
        for name, offset in zip(names, struct.unpack_from("<IIII", data, pos + 12), strict=True):
            if offset >= info_size:
                layout.problems.append(f"LinkInfo {name} offset {offset} points past its {info_size} bytes")
    layout.link_info = (pos, info_size)
    return pos + max(info_size, 4)


def _walk_strings(data: Buffer, pos: int, layout: Layout) -> int:
    unicode = bool(layout.flags & IS_UNICODE)
    width = 2 if unicode else 1
    start = pos
    for key, flag, label, capped in STRING_FIELDS:
        if not layout.flags & flag:
            continue
        if pos + 2 > len(data):
            return layout.cut(f"string data ends before the {label}")
        count = _u16(data, pos)
        layout.string_counts[key] = count
        chars = min(count, WINDOWS_STRING_CAP) if capped else count
        if capped and count > WINDOWS_STRING_CAP:
            layout.overflows.append(
                f"{label}: {count} characters declared, Windows reads {WINDOWS_STRING_CAP}"
            )
        raw = bytes(data[pos + 2 : pos + 2 + chars * width])
        text, hidden = _decode_string(raw, unicode)
        layout.strings[key] = text
        if hidden:
            layout.notes.append(f"{label}: {hidden} character(s) after a NUL are not used")
        if len(raw) < chars * width:
            layout.section("string_data", start, len(data) - start)
            return layout.cut(
                f"{label} claims {count} characters ({chars * width} bytes), {len(raw)} bytes remain"
            )
        pos += 2 + chars * width
    if pos > start:
        layout.section("string_data", start, pos - start)
    return pos


def _decode_string(raw: bytes, unicode: bool) -> tuple[str, int]:
    """Text as Windows uses it (up to the first NUL) and how many characters the NUL hides."""
    if unicode:
        text = _escape_surrogates(raw[: len(raw) & ~1].decode("utf-16-le", "surrogatepass"))
    else:
        text = _decode_ansi(raw)
    used, _, rest = text.partition("\x00")
    return used, len(rest.strip("\x00"))


def _decode_ansi(raw: bytes) -> str:
    # The ANSI code page is the creator's; cp1252 then UTF-8, as LnkParse3 does, keeps outputs aligned.
    for encoding in ("cp1252", "utf-8"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    return raw.decode("cp1252", "replace")


def _escape_surrogates(text: str) -> str:
    """Unpaired UTF-16 surrogates (legal in NTFS names, not in UTF-8) shown as [U+D800]."""
    return re.sub("[\ud800-\udfff]", lambda m: f"[U+{ord(m.group()):04X}]", text)


def _walk_extra(data: Buffer, pos: int, layout: Layout) -> int:
    size, start = len(data), pos
    while True:
        remaining = size - pos
        if remaining < 4:
            if remaining:
                layout.notes.append(f"{remaining} stray byte(s) where the terminal block belongs")
            end = size
            break
        block_size = _u32(data, pos)
        if block_size < 4:
            end = pos + 4
            break
        if remaining < 8:
            layout.notes.append(
                f"{remaining} byte(s) after the last block: too short for a block, no terminal block"
            )
            end = size
            break
        signature = _u32(data, pos + 4)
        if signature & 0xFFFFFF00 != 0xA0000000:
            layout.problems.append(
                f"no terminal block: the bytes at offset {pos} are not an extra-data block"
            )
            end = pos
            break
        kind, expected = BLOCKS.get(signature, ("unknown", None))
        if block_size < 8 or block_size > remaining:
            layout.blocks.append(Block(signature, pos, min(block_size, remaining), kind))
            layout.problems.append(
                f"{kind} block 0x{signature:08X} at offset {pos} claims {block_size} bytes, {remaining} remain"
            )
            layout.truncated = True
            end = size
            break
        if expected is not None and block_size != expected:
            layout.problems.append(
                f"{kind} block 0x{signature:08X} at offset {pos} is {block_size} bytes, MS-SHLLINK fixes {expected}"
            )
        layout.blocks.append(Block(signature, pos, block_size, kind))
        pos += block_size
    if end > start:
        layout.section("extra_data", start, end - start)
    return end


def _decode_sections(head: bytes, layout: Layout) -> dict[str, Any]:
    """Each section through LnkParse3; a section it cannot decode becomes a problem, not a failure."""
    meta: dict[str, Any] = {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if layout.file_size >= HEADER_SIZE:
            meta["header"] = _guard(layout, "header", lambda: _header(head))
        if layout.id_items:
            meta["id_list"] = [
                _guard(layout, f"shell item {n}", lambda o=o: _shell_item(head, o))
                for n, (o, _) in enumerate(layout.id_items)
            ]
            meta["id_list_path"] = _id_list_path(meta["id_list"])
        if layout.link_info is not None:
            offset, size = layout.link_info
            meta["link_info"] = _guard(layout, "LinkInfo", lambda: _link_info(head[offset : offset + size]))
        meta["strings"] = dict(layout.strings)
        extra: dict[str, Any] = {}
        for block in layout.blocks:
            decoded = _guard(layout, f"{block.kind} block", lambda b=block: _extra_block(head, b)) or {}
            decoded.update(offset=block.offset, size=block.size, signature=f"0x{block.signature:08X}")
            if block.kind == "unknown":
                extra.setdefault("unknown", []).append(decoded)
            else:
                extra[block.kind] = decoded
        meta["extra"] = extra
    parser_warnings = list(dict.fromkeys(str(w.message)[:300] for w in caught))
    if parser_warnings:
        meta["parser_warnings"] = parser_warnings[:20]
    return meta


def _guard(layout: Layout, what: str, decode: Callable[[], Any]) -> Any:
    try:
        return decode()
    except Exception as err:
        layout.problems.append(f"{what} could not be decoded: {type(err).__name__}: {err}"[:300])
        return None


def _header(head: bytes) -> dict[str, Any]:
    from LnkParse3.lnk_header import LnkHeader

    header = LnkHeader(indata=head[:HEADER_SIZE])
    show = _u32(head, 60)
    return {
        "link_flags": header.link_flags(),
        "file_attributes": header.file_flags(),
        "created": header.creation_time(),
        "accessed": header.access_time(),
        "modified": header.write_time(),
        "target_size": header.file_size(),
        "icon_index": header.icon_index(),
        "show_command": show,
        "show_command_name": SHOW_COMMANDS.get(show, f"SW_SHOWNORMAL (value {show} is treated as normal)"),
        "hotkey": header.hot_key(),
    }


def _shell_item(head: bytes, offset: int) -> dict[str, Any]:
    from LnkParse3.target_factory import TargetFactory

    target_class = TargetFactory(indata=head[offset:]).target_class()
    if target_class is None:
        return {"class": "terminal"}
    item = target_class(indata=head[offset:]).as_item()
    if item.get("class") == "File entry":
        long_name = _long_name(head[offset : offset + _u16(head, offset)])
        if long_name:
            item["long_name"] = long_name
    return item


def _long_name(item: bytes) -> str | None:
    """The Unicode long name from a file entry's BEEF0004 extension block (the primary name may be 8.3)."""
    signature = item.find(b"\x04\x00\xef\xbe")
    if signature < 4:
        return None
    block = signature - 4
    block_size, version = struct.unpack_from("<HH", item, block)
    if version < 3:
        return None
    name_at = block + (46 if version >= 9 else 42 if version == 8 else 38 if version == 7 else 20)
    raw = item[name_at : block + block_size]
    end = next((i for i in range(0, len(raw) - 1, 2) if raw[i : i + 2] == b"\x00\x00"), None)
    if not end:
        return None
    return _escape_surrogates(raw[:end].decode("utf-16-le", "surrogatepass"))


def _id_list_path(items: list[dict[str, Any] | None]) -> str:
    parts: list[str] = []
    for item in items:
        if not item:
            parts.append("<undecodable item>")
            continue
        kind = item.get("class", "")
        if kind == "Root Folder":
            guid = str(item.get("guid", "")).upper()
            if guid != MY_COMPUTER:
                parts = [ROOT_FOLDERS.get(guid, f"::{{{guid}}}")]
        elif kind == "Volume Item":
            name = item.get("volume_name")
            parts = [name.rstrip("\\")] if name else [f"::{{{item.get('volume_identifier')}}}"]
        elif kind == "File entry":
            parts.append(item.get("long_name") or item.get("primary_name") or "?")
        elif kind == "Network location" and item.get("location"):
            parts = [item["location"]]
        elif kind == "Control panel CPL file" and item.get("cpl_file_path"):
            parts = [item["cpl_file_path"]]
        elif isinstance(item.get("file_entry"), dict):
            parts.append(item["file_entry"].get("primary_name") or "?")
        elif kind != "terminal":
            parts.append(f"<{kind}>")
    return "\\".join(p for p in parts if p)


def _link_info(raw: bytes) -> dict[str, Any]:
    from LnkParse3.info_factory import InfoFactory
    from LnkParse3.lnk_info import LnkInfo

    info_class = InfoFactory(LnkInfo(indata=raw)).info_class()
    if info_class is None:
        return {"location": "none"}
    info = info_class(indata=raw)
    fields: dict[str, Any] = {"location": info.location(), "flags": info.flags()}

    def take(name: str, read: Callable[[], Any]) -> None:
        try:
            value = read()
        except Exception:
            return
        if value not in (None, ""):
            fields[name] = _escape_surrogates(value) if isinstance(value, str) else value

    take("local_base_path", info.local_base_path)
    take("local_base_path_unicode", info.local_base_path_unicode)
    take("common_path_suffix", info.common_path_suffix)
    take("common_path_suffix_unicode", info.common_path_suffix_unicode)
    if fields["location"] == "Local":
        take("drive_type", info.drive_type)
        take("drive_serial_number", info.drive_serial_number)
        take("volume_label", info.volume_label)
        take("volume_label_unicode", info.volume_label_unicode)
    else:
        take("net_name", info.net_name)
        take("net_name_unicode", info.net_name_unicode)
        take("network_provider_type", info.network_provider_type)
        if info.common_network_relative_link_flags() & 0x1:  # ValidDevice: only then is there a device name
            take("device_name", info.device_name)
            take("device_name_unicode", info.device_name_unicode)
    return fields


def _extra_block(head: bytes, block: Block) -> dict[str, Any]:
    from LnkParse3.extra_factory import ExtraFactory

    raw = head[block.offset : block.offset + block.size]
    decoded: dict[str, Any] = {}
    if block.kind == "unknown":
        decoded["sha256"] = hashlib.sha256(raw[8:]).hexdigest()
        return decoded
    extra_class = ExtraFactory(indata=raw).extra_class()
    if extra_class is not None:
        decoded = extra_class(indata=raw).as_dict()
    if block.kind == "tracker":
        decoded.update(_droid_facts(decoded))
    elif block.kind == "known_folder":
        decoded["known_folder_name"] = KNOWN_FOLDERS.get(
            str(decoded.get("known_folder_id", "")).upper(), "unknown"
        )
    elif block.kind == "special_folder":
        decoded["special_folder_name"] = SPECIAL_FOLDERS.get(decoded.get("special_folder_id", -1), "unknown")
    elif block.kind == "property_store":
        # Explorer records the creating account's SID there: another pivot across a campaign
        sids = sorted(set(_SID.findall(str(decoded.get("property_store", "")))))
        if sids:
            decoded["user_sids"] = sids
    return decoded


def _droid_facts(tracker: dict[str, Any]) -> dict[str, Any]:
    """MAC address and creation time carried by version-1 droid GUIDs: pivots across a campaign."""
    found: dict[str, Any] = {}
    for key, label in (("droid_file_identifier", "droid"), ("birth_droid_file_identifier", "birth_droid")):
        try:
            guid = uuid.UUID(str(tracker.get(key)))
        except ValueError:
            continue
        if guid.version != 1:
            continue
        node = guid.node
        found[f"{label}_mac"] = ":".join(f"{(node >> shift) & 0xFF:02x}" for shift in range(40, -8, -8))
        found[f"{label}_mac_is_random"] = bool(node & 0x010000000000)  # multicast bit: no real NIC
        with suppress(OverflowError):  # a forged timestamp past year 9999
            found[f"{label}_time"] = datetime(1582, 10, 15, tzinfo=UTC) + timedelta(
                microseconds=guid.time // 10
            )
    return found


# --- 2. Target and command --------------------------------------------------------------------------


def _resolve_target(meta: dict[str, Any], layout: Layout) -> dict[str, Any]:
    """Every target the shortcut names, and the one Windows starts: environment block, IDList, LinkInfo, relative path."""
    sources: dict[str, str] = {}
    environment = meta.get("extra", {}).get("environment") or {}
    env_path = environment.get("target_unicode") or environment.get("target_ansi")
    if env_path:
        sources["environment block"] = env_path
    id_path = meta.get("id_list_path")
    if id_path:
        sources["IDList"] = id_path
    info = meta.get("link_info") or {}
    suffix = info.get("common_path_suffix_unicode") or info.get("common_path_suffix") or ""
    if info.get("location") == "Local" and (
        info.get("local_base_path_unicode") or info.get("local_base_path")
    ):
        sources["LinkInfo"] = (info.get("local_base_path_unicode") or info["local_base_path"]) + suffix
    elif info.get("location") == "Network" and (info.get("net_name_unicode") or info.get("net_name")):
        share = info.get("net_name_unicode") or info["net_name"]
        sources["LinkInfo"] = share + ("\\" + suffix if suffix else "")
    if layout.strings.get("relative_path"):
        sources["relative path"] = layout.strings["relative_path"]
    order = ["IDList", "LinkInfo", "relative path", "environment block"]
    if layout.flags & HAS_EXP_STRING:
        order.insert(0, "environment block")
    filesystem = [
        s for s in order if s in sources and not sources[s].startswith("::") and "<" not in sources[s]
    ]
    chosen = (filesystem or [s for s in order if s in sources] or [""])[0]
    path = sources.get(chosen, "")
    return {"path": path, "source": chosen, "expanded": expand_environment(path), "sources": sources}


def expand_environment(text: str) -> str:
    """%VARIABLES% replaced by their default Windows values; unknown ones stay as written."""
    return _ENV_VAR.sub(lambda m: ENVIRONMENT_DEFAULTS.get(m.group(1).lower(), m.group(0)), text)


def _program(token: str) -> str:
    """A command's program name: file name, lower-case, without quotes or .exe."""
    name = PureWindowsPath(token.strip().strip("\"'")).name.lower()
    return name[:-4] if name.endswith(".exe") else name


def _extension(path: str) -> str:
    return PureWindowsPath(path.strip().strip("\"'")).suffix.lower().lstrip(".")


def _analyse_command(target: dict[str, Any], arguments: str) -> CommandView:
    path = target["path"]
    line = (f'"{path}"' if path else "") + (" " + arguments if arguments else "")
    view = CommandView(line=line.strip(), program=_program(target["expanded"]), arguments=arguments)
    view.texts.append(("command line", view.line))
    budget = [64]  # pieces of text at most: nested decoding must stay bounded on hostile input
    if view.program == "cmd":
        rest = _after_cmd_switch(arguments)
        if rest is not None:
            _add_cmd_chain(view, rest, 0, budget)
    elif view.program in POWERSHELL:
        _add_powershell(view, _powershell_script(arguments), "PowerShell arguments", 0, budget)
    else:
        _unwrap(view, arguments, 0, budget)
    return view


def _after_cmd_switch(arguments: str) -> str | None:
    """What cmd.exe runs: the text after /c, /k or /r (other switches may come first)."""
    match = re.match(r"(?is)\s*(?:/[a-bd-jl-qs-z](?::\w+)?\s*)*/[ckr]\s*(.*)", arguments)
    if match is None:
        return None
    rest = match.group(1).strip()
    if len(rest) >= 2 and rest[0] == '"' and rest[-1] == '"':
        rest = rest[1:-1]  # cmd strips the outer quotes around the whole command
    return rest


def _add_cmd_chain(view: CommandView, text: str, depth: int, budget: list[int]) -> None:
    for number, step in enumerate(_substitute_variables(_split_cmd(text)), 1):
        if budget[0] <= 0:
            return
        budget[0] -= 1
        step = _unwrap_control(step)
        if not step:
            continue
        label = f"step {number}" if depth == 0 else f"nested step {number}"
        view.steps.append(step)
        view.texts.append((label, step))
        view.writes.extend(_cmd_writes(step))
        view.opens.extend(_cmd_opens(step))
        started = _started_program(step)
        if started and depth == 0:
            view.child_programs.append(started)
        _unwrap(view, step, depth + 1, budget)


def _unwrap(view: CommandView, text: str, depth: int, budget: list[int]) -> None:
    """A cmd /c or PowerShell invocation inside a piece of command text, taken apart in turn."""
    if depth > 4 or budget[0] <= 0:
        return
    call = _CMD_CALL.search(text)
    if call:
        rest = call.group(1).strip()
        if rest.startswith('"') and rest.count('"') >= 2:
            rest = rest[1 : rest.rindex('"')]
        _add_cmd_chain(view, rest, depth + 1, budget)
    shell = _POWERSHELL_CALL.search(text)
    if shell and (call is None or shell.start() < call.start()):
        _add_powershell(view, _powershell_script(text[shell.end() :]), "nested PowerShell", depth + 1, budget)


def _split_cmd(text: str) -> list[str]:
    """cmd.exe's command separators (& && | ||) outside double quotes; ^ escapes the next character."""
    steps: list[str] = []
    current: list[str] = []
    quoted, index = False, 0
    while index < len(text):
        char = text[index]
        if char == '"':
            quoted = not quoted
            current.append(char)
        elif char == "^" and not quoted:
            if index + 1 < len(text):
                current.append(text[index + 1])
                index += 1
        elif char in "&|" and not quoted and not (char == "&" and current and current[-1] == ">"):
            steps.append("".join(current))
            current = []
            if index + 1 < len(text) and text[index + 1] == char:
                index += 1
        else:
            current.append(char)
        index += 1
    steps.append("".join(current))
    # `if ... (a) else (b)` runs a or b: both branches are steps
    return [part.strip() for s in steps for part in _ELSE.split(s) if part.strip()]


def _unwrap_control(step: str) -> str:
    """The command inside for/if/else/call wrappers and parentheses."""
    for _ in range(8):
        before = step
        step = step.strip().lstrip("(@").strip()
        while step.endswith(")") and step.count(")") > step.count("("):
            step = step[:-1].rstrip()
        lowered = step.lower()
        if lowered.startswith("for ") and " do " in lowered:
            step = step[lowered.index(" do ") + 4 :]
        elif lowered.startswith("if "):
            match = re.match(
                r'(?is)if\s+(?:/i\s+)?(?:not\s+)?(?:(?:exist|defined|errorlevel)\s+(?:"[^"]*"|\S+)|(?:"[^"]*"|\S+?)\s*(?:==|\s(?:equ|neq|lss|leq|gtr|geq)\s)\s*(?:"[^"]*"|\S+))\s*(.*)',
                step,
            )
            step = match.group(1) if match else step
        elif lowered.startswith(("else ", "else(")):
            step = step[4:]
        elif lowered.startswith("call "):
            step = step[5:]
        if step == before:
            break
    return step.strip()


def _substitute_variables(steps: list[str]) -> list[str]:
    """`set name=value` earlier in the chain substituted into later %name% / !name! references."""
    variables: dict[str, str] = {}
    result: list[str] = []
    for step in steps:
        if variables:
            step = re.sub(
                r"([%!])([^%!\s=]+)\1", lambda m: variables.get(m.group(2).lower(), m.group(0)), step
            )
        match = re.match(r'(?is)\s*set\s+(?!/[pa]\b)"?([^=\s"]+)=(.*?)"?\s*$', step)
        if match:
            variables[match.group(1).lower()] = match.group(2)
        result.append(step)
    return result


def _raw_tokens(text: str, quotes: str = '"') -> list[str]:
    """Whitespace-separated tokens, quoted spans kept whole (quotes left on)."""
    tokens: list[str] = []
    current: list[str] = []
    quote = ""
    for char in text:
        if quote:
            current.append(char)
            if char == quote:
                quote = ""
        elif char in quotes:
            quote = char
            current.append(char)
        elif char.isspace():
            if current:
                tokens.append("".join(current))
                current = []
        else:
            current.append(char)
    if current:
        tokens.append("".join(current))
    return tokens


def _unquote(token: str) -> str:
    return token.replace('"', "").strip("'")


def _cmd_writes(step: str) -> list[Write]:
    writes = [
        Write(_unquote(m.group(1)), None, "redirection", step)
        for m in _REDIRECT.finditer(step)
        if _unquote(m.group(1)).lower() not in ("nul", "con", "&1", "&2", "")
    ]
    tokens = [_unquote(t) for t in _raw_tokens(_REDIRECT.sub(" ", step))]
    if not tokens:
        return writes
    tool, args = _program(tokens[0]), tokens[1:]
    plain = [a for a in args if a and not a.startswith(("/", "-"))]
    lowered = [a.lower() for a in args]
    if tool in ("copy", "move", "xcopy", "expand", "replace", "extrac32", "makecab") and len(plain) >= 2:
        writes.append(Write(plain[-1], plain[0], tool, step))
    elif tool == "robocopy" and len(plain) >= 2:
        files = plain[2:]
        writes.append(Write(plain[1] + ("\\" + files[0] if files else ""), plain[0], tool, step))
    elif tool == "esentutl" and "/d" in lowered and lowered.index("/d") + 1 < len(args):
        source = (
            args[lowered.index("/y") + 1] if "/y" in lowered and lowered.index("/y") + 1 < len(args) else None
        )
        writes.append(Write(args[lowered.index("/d") + 1], source, tool, step))
    elif (
        tool in ("certutil", "bitsadmin")
        and len(plain) >= 2
        and any(a in ("-decode", "-decodehex", "-urlcache", "/transfer", "/addfile") for a in lowered)
    ):
        writes.append(Write(plain[-1], plain[-2], tool, step))
    elif tool in ("curl", "wget"):
        for flag in ("-o", "--output", "-O", "--output-document"):
            if flag in args and args.index(flag) + 1 < len(args):
                writes.append(Write(args[args.index(flag) + 1], None, tool, step))
    return writes


def _cmd_opens(step: str) -> list[str]:
    """Documents a step opens with their default application."""
    raw = _raw_tokens(step)
    if not raw:
        return []
    tool = _program(raw[0])
    if tool == "start":
        index = _start_operand(raw)
        opened = _unquote(raw[index]) if index is not None else ""
        return [opened] if _extension(opened) in DOCUMENT_EXTENSIONS else []
    if _extension(raw[0]) in DOCUMENT_EXTENSIONS and tool not in CMD_BUILTINS:
        return [_unquote(raw[0])]
    args = [_unquote(t) for t in raw[1:]]
    if tool == "explorer":
        return [a for a in args[:1] if _extension(a) in DOCUMENT_EXTENSIONS]
    if (
        tool == "rundll32"
        and args
        and args[0].lower().replace(" ", "")
        in ("url.dll,fileprotocolhandler", "shell32.dll,shellexec_rundll", "url.dll,openurl")
    ):
        return [a for a in args[1:2] if _extension(a) in DOCUMENT_EXTENSIONS]
    return []


def _start_operand(raw: list[str]) -> int | None:
    """Index of what `start` starts in its raw tokens: after the optional quoted title and switches."""
    index = 1
    if index < len(raw) and raw[index].startswith('"'):
        index += 1  # the first quoted string is the window title
    while index < len(raw) and raw[index].startswith("/"):
        index += 2 if raw[index].lower() in ("/d", "/affinity", "/node") else 1
    return index if index < len(raw) else None


def _started_program(step: str) -> tuple[str, str] | None:
    """(program, arguments) when a step starts a new process; cmd built-ins run inside cmd itself."""
    raw = _raw_tokens(step)
    if not raw:
        return None
    index = _start_operand(raw) if _program(raw[0]) == "start" else 0
    if index is None or (index == 0 and (_program(raw[0]) in CMD_BUILTINS or "=" in raw[0])):
        return None
    return _unquote(raw[index]), " ".join(raw[index + 1 :])


def _powershell_script(arguments: str) -> str:
    """The script in powershell.exe's arguments: what follows its own switches (or -Command)."""
    tokens = _raw_tokens(arguments, "\"'")
    index = 0
    while index < len(tokens) and tokens[index][:1] in ("-", "/", "\u2013", "\u2014"):
        switch = tokens[index][1:].lower()
        if switch and "command".startswith(switch) and switch != "co":
            index += 1
            break
        if switch in ("e", "ec") or (len(switch) > 1 and "encodedcommand".startswith(switch)):
            return arguments  # left whole: the encoded form is decoded from the full text
        index += 2 if switch in _POWERSHELL_VALUED_SWITCHES else 1
    script = " ".join(tokens[index:]).strip()
    if len(script) >= 2 and script[0] == script[-1] and script[0] in "\"'":
        script = script[1:-1]
    return script


def _add_powershell(view: CommandView, script: str, origin: str, depth: int, budget: list[int]) -> None:
    """Encoded commands and FromBase64String payloads decoded; statements read for writes and opens."""
    pending = [(origin, script)]
    while pending and budget[0] > 0:
        origin, body = pending.pop(0)
        budget[0] -= 1
        cleaned = body.replace("`", "").replace("'+'", "").replace('"+"', "")
        for match in _ENCODED.finditer(cleaned):
            word = match.group(1).lower()
            if word in ("e", "ec") or (len(word) >= 2 and "encodedcommand".startswith(word)):
                decoded = _base64_text(match.group(2))
                if decoded is not None:
                    view.decoded.append({"from": f"-{match.group(1)}", "text": decoded})
                    view.texts.append(("decoded -EncodedCommand", decoded))
                    pending.append(("decoded -EncodedCommand", decoded))
        for match in _FROM_BASE64.finditer(cleaned):
            decoded = _base64_text(re.sub(r"\s", "", match.group(1)))
            if decoded is not None:
                view.decoded.append({"from": "FromBase64String", "text": decoded})
                view.texts.append(("decoded FromBase64String", decoded))
                pending.append(("decoded FromBase64String", decoded))
        if origin.startswith("decoded"):
            call = _CMD_CALL.search(body)
            if call and depth < 4:
                _add_cmd_chain(view, call.group(1).strip().strip('"'), depth + 1, budget)
        else:
            view.texts.append((origin, cleaned))
        variables: dict[str, str] = {}
        for statement in re.split(r"[;\r\n|]", cleaned):
            statement = statement.strip()
            if statement:
                view.statements.append(statement)
                assignment = re.match(r"\$(\w+)\s*=\s*(.+)$", statement)
                if assignment:
                    variables[assignment.group(1).lower()] = _powershell_path(assignment.group(2))
                view.writes.extend(_resolve_variable(w, variables) for w in _powershell_writes(statement))
                view.opens.extend(
                    m.group(1).strip()
                    for m in _PS_OPEN.finditer(statement)
                    if m.group(2).lower() in DOCUMENT_EXTENSIONS
                )


def _resolve_variable(write: Write, variables: dict[str, str]) -> Write:
    """A write whose destination is a $variable assigned earlier in the same script."""
    name = re.fullmatch(r"\$(\w+)", write.destination)
    if name and name.group(1).lower() in variables:
        return Write(variables[name.group(1).lower()], write.source, write.tool, write.step)
    return write


def _base64_text(token: str) -> str | None:
    """Base64 decoded to text: UTF-16LE (what -EncodedCommand takes) or UTF-8."""
    try:
        raw = base64.b64decode(token + "=" * (-len(token) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None
    if not raw:
        return None
    wide = len(raw) % 2 == 0 and raw[1::2].count(0) * 2 >= len(raw) // 2
    try:
        text = raw.decode("utf-16-le" if wide else "utf-8")
    except UnicodeDecodeError:
        return None
    printable = sum(ch.isprintable() or ch in "\r\n\t" for ch in text)
    return text if printable >= 0.9 * len(text) else None


_PS_WRITE_CMDLETS = {
    "invoke-webrequest": ("-outfile",),
    "iwr": ("-outfile",),
    "invoke-restmethod": ("-outfile",),
    "irm": ("-outfile",),
    "wget": ("-outfile",),
    "curl": ("-outfile",),
    "start-bitstransfer": ("-destination",),
    "copy-item": ("-destination",),
    "cpi": ("-destination",),
    "copy": ("-destination",),
    "cp": ("-destination",),
    "move-item": ("-destination",),
    "mi": ("-destination",),
    "move": ("-destination",),
    "mv": ("-destination",),
    "set-content": ("-path", "-literalpath"),
    "sc": ("-path", "-literalpath"),
    "add-content": ("-path", "-literalpath"),
    "ac": ("-path", "-literalpath"),
    "out-file": ("-filepath", "-literalpath"),
    "new-item": ("-path",),
    "ni": ("-path",),
}


def _powershell_path(expression: str) -> str:
    """A path expression as written in PowerShell ($env:APPDATA + '\\x.dot') in cmd notation."""
    path = re.sub(r"(?i)\$env:(\w+)", r"%\1%", expression)
    path = re.sub(r"(?i)\[environment\]::getfolderpath\(\s*['\"]?(\w+)['\"]?\s*\)", r"%\1%", path)
    return re.sub(r"[\"'()+\s]+(?=[\\%]|$)|^[\"'(\s]+", "", path).strip()


_PS_DOWNLOADERS = frozenset({"iwr", "invoke-webrequest", "irm", "invoke-restmethod", "wget", "curl"})


def _powershell_writes(statement: str) -> list[Write]:
    writes = [
        Write(_powershell_path(m.group(1)), None, "PowerShell", statement)
        for m in _PS_WRITE_METHODS.finditer(statement)
    ]
    tokens = [t.strip("\"'") for t in _raw_tokens(statement, "\"'")]
    if not tokens:
        return writes
    cmdlet = tokens[0].lower()
    parameters = _PS_WRITE_CMDLETS.get(cmdlet)
    if parameters is None:
        return writes
    lowered = [t.lower() for t in tokens]
    named = [tokens[i + 1] for i, t in enumerate(lowered[:-1]) if t in parameters]
    positional = [
        t for i, t in enumerate(tokens[1:], 1) if not t.startswith("-") and not lowered[i - 1].startswith("-")
    ]
    source = positional[0] if positional else None
    if named:
        writes.append(Write(_powershell_path(named[0]), source, cmdlet, statement))
    elif parameters[0] == "-destination" and len(positional) >= 2:
        writes.append(Write(_powershell_path(positional[1]), positional[0], cmdlet, statement))
    elif parameters[0] != "-destination" and positional and cmdlet not in _PS_DOWNLOADERS:
        writes.append(Write(_powershell_path(positional[0]), None, cmdlet, statement))
    return writes


def _command_metadata(view: CommandView) -> dict[str, Any]:
    return {
        "line": view.line,
        "program": view.program,
        "arguments": view.arguments,
        "arguments_length": len(view.arguments),
        "steps": view.steps,
        "powershell_statements": view.statements[:64],
        "decoded": view.decoded,
        "writes": [{"destination": w.destination, "source": w.source, "tool": w.tool} for w in view.writes],
        "opens": list(dict.fromkeys(view.opens)),
        "environment_variables": sorted(
            {m.group(1).upper() for _, t in view.texts for m in _ENV_VAR.finditer(t)}
        ),
    }


# --- Judgement ------------------------------------------------------------------------------------


def _judge_structure(layout: Layout, out: Analysis) -> None:
    if layout.problems:
        out.flag("lnk.malformed", "; ".join(layout.problems[:5]), details={"problems": layout.problems})
    if layout.overflows:
        out.flag("lnk.string_overflow", "; ".join(layout.overflows))
    unknown = [b for b in layout.blocks if b.kind == "unknown"]
    if unknown:
        out.flag(
            "lnk.unknown_extra_block",
            ", ".join(f"0x{b.signature:08X} ({b.size} bytes at {b.offset:#x})" for b in unknown),
        )
    for key, _, label, _ in STRING_FIELDS:
        text = layout.strings.get(key, "")
        if key != "arguments" and (_PADDING.search(text) or _CONTROL.search(text)):
            out.flag(
                "lnk.whitespace_padding",
                f"{label}: {_describe_padding(text)}",
                details={"field": label, "text": text[:1000]},
            )


def _program_finding(program: str, arguments: str) -> str | None:
    """The finding for a program started with arguments; explorer counts only when it starts code."""
    if program not in TARGET_FINDINGS or not arguments.strip():
        return None
    if program == "explorer" and not any(
        _extension(t) in EXECUTABLE_EXTENSIONS for t in _raw_tokens(arguments)
    ):
        return None  # explorer opening a folder or document is not indirect execution
    return TARGET_FINDINGS[program]


def _describe_padding(text: str) -> str:
    longest = max((m.group() for m in _PADDING.finditer(text)), key=len, default="")
    controls = len(_CONTROL.findall(text))
    parts = [f"{controls} line break/control character(s)"] if controls else []
    if longest:
        parts.append(f"{len(longest)} blanks after {_shorten(text[: text.find(longest)], 60)!r}")
    after = _shorten(text[text.find(longest) + len(longest) :], 80) if longest else ""
    return ", ".join(parts) + (f", then {after!r}" if after else "")


def _judge_target(
    meta: dict[str, Any], layout: Layout, target: dict[str, Any], view: CommandView, out: Analysis
) -> None:
    path, program, extension = target["path"], view.program, _extension(target["path"])
    finding = _program_finding(program, view.arguments)
    if finding:
        out.flag(finding, f"{path} {_shorten(view.arguments, 200)}")
    elif extension in SCRIPT_EXTENSIONS:
        out.flag("lnk.target_script_file", path)
    for item in meta.get("id_list") or []:
        if item and item.get("class") == "Control panel CPL file" and item.get("cpl_file_path"):
            out.flag("lnk.cpl_target", str(item["cpl_file_path"]))
    runs_code = extension in EXECUTABLE_EXTENSIONS or program in TARGET_FINDINGS
    if runs_code and _is_remote(path):
        out.flag("lnk.remote_target", path)
    lowered = target["expanded"].lower()
    if (
        runs_code
        and program not in TARGET_FINDINGS
        and re.search(r"\\(?:appdata|temp|downloads|users\\public|programdata)\\", lowered)
        and not re.search(r"\\appdata\\local\\(?:programs|microsoft\\windowsapps)\\", lowered)
    ):
        out.flag("lnk.target_user_writable", path)
    names = {
        source: PureWindowsPath(expand_environment(value)).name.lower()
        for source, value in target["sources"].items()
        if source in ("IDList", "LinkInfo")
        or (source == "environment block" and layout.flags & HAS_EXP_STRING)
    }
    comparable = {
        s: _name_skeleton(n) for s, n in names.items() if n and "~" not in n and not n.startswith(("::", "<"))
    }
    if len(set(comparable.values())) > 1:
        out.flag(
            "lnk.target_mismatch",
            "; ".join(f"{s}: {target['sources'][s]}" for s in comparable),
            details={"sources": target["sources"]},
        )
    _judge_icon(meta, layout, target, view, runs_code, out)
    show = (meta.get("header") or {}).get("show_command")
    hidden_args = [t for _, t in view.texts if _PS_HIDDEN.search(t) or _CMD_HIDDEN.search(t)]
    minimised = show == 7 and (view.arguments.strip() or extension in SCRIPT_EXTENSIONS)
    if runs_code and (minimised or hidden_args):
        evidence = [f"ShowCommand {SHOW_COMMANDS.get(show, show)}"] if minimised else []
        evidence += [_shorten(t, 120) for t in hidden_args[:2]]
        out.flag("lnk.hidden_window", "; ".join(evidence))


def _name_skeleton(name: str) -> str:
    """A file name reduced to what every code page keeps: ANSI copies of Unicode names lose the rest."""
    if name.isascii() and "?" not in name and "[u+" not in name:
        return name
    return re.sub(r"\[u\+[0-9a-f]{4}\]|[^\x20-\x7e]|\?", "", name)


def _judge_icon(
    meta: dict[str, Any],
    layout: Layout,
    target: dict[str, Any],
    view: CommandView,
    runs_code: bool,
    out: Analysis,
) -> None:
    icon_env = meta.get("extra", {}).get("icon_environment") or {}
    locations = [
        loc
        for loc in (
            layout.strings.get("icon_location"),
            icon_env.get("target_unicode") or icon_env.get("target_ansi"),
        )
        if loc
    ]
    for location in locations:
        if _is_remote(location) or _URL.search(location):
            out.flag("lnk.remote_icon", location)
    if not runs_code or not locations:
        return
    index = (meta.get("header") or {}).get("icon_index", 0)
    target_name = PureWindowsPath(target["path"]).name.lower()
    for location in locations:
        icon_name = PureWindowsPath(expand_environment(location)).name.lower()
        looks = ICON_APPS.get(icon_name)
        if looks is None and _extension(location) in DOCUMENT_EXTENSIONS:
            looks = f"{_extension(location).upper()} document"
        if looks is None and icon_name == "shell32.dll":
            looks = SHELL32_DISGUISES.get(index)
        if looks and icon_name != target_name:
            out.flag(
                "lnk.icon_disguise", f"{looks} icon ({location},{index}) on {target['path'] or view.program}"
            )
            return


def _judge_command(view: CommandView, layout: Layout, item: Item, out: Analysis) -> None:
    arguments = view.arguments
    if _PADDING.search(arguments) or _CONTROL.search(arguments):
        out.flag(
            "lnk.whitespace_padding",
            f"arguments: {_describe_padding(arguments)}",
            details={"field": "arguments"},
        )
    if len(view.line) > EXPLORER_TARGET_FIELD:
        out.flag(
            "lnk.long_arguments",
            f"{len(view.line)} characters; Explorer shows the first {EXPLORER_TARGET_FIELD}",
            details={
                "shown": view.line[:EXPLORER_TARGET_FIELD],
                "hidden": view.line[EXPLORER_TARGET_FIELD:][:2000],
            },
        )
    if view.decoded:
        out.flag(
            "lnk.encoded_powershell",
            _shorten(view.decoded[0]["text"], 300),
            details={"decoded": [d["text"][:4000] for d in view.decoded]},
        )
    for program, started_arguments in view.child_programs:
        name = _program(expand_environment(program))
        finding = _program_finding(name, started_arguments)
        if finding and name != view.program:
            out.flag(finding, f"started by the command: {program} {_shorten(started_arguments, 200)}")
    everything = "\n".join(text for _, text in view.texts)
    downloads = [_around(everything, m) for m in _DOWNLOAD.finditer(everything)]
    downloads += [_around(everything, m) for m in _REMOTE_EXECUTION.finditer(everything)]
    if downloads:
        out.flag("lnk.download_cradle", "; ".join(list(dict.fromkeys(downloads))[:3]))
    own_name = PureWindowsPath(item.name).name.lower()
    if ".lnk" in everything.lower() or (own_name and own_name in everything.lower()):
        out.flag(
            "lnk.reads_itself",
            _shorten(next(t for _, t in view.texts if ".lnk" in t.lower() or own_name in t.lower()), 200),
        )
    _judge_writes(view, out)
    _judge_opens(view, item, out)
    _command_iocs(view, out)


def _location_kind(path: str) -> str | None:
    normalized = expand_environment(path).replace("/", "\\").lower()
    for pattern, kind in STARTUP_LOCATIONS:
        if pattern.search(normalized):
            return kind
    return None


def _judge_writes(view: CommandView, out: Analysis) -> None:
    written_kinds: set[str] = set()
    for write in view.writes:
        out.ioc("filepath", write.destination, f"written by the shortcut's command ({write.tool})")
        kind = _location_kind(write.destination)
        extension = _extension(write.destination) or (_extension(write.source) if write.source else "")
        if kind is None:
            continue
        written_kinds.add(kind)
        evidence = f"{write.tool}: {_shorten(write.step, 200)} -> {write.destination} ({kind})"
        details = {
            "destination": write.destination,
            "source": write.source,
            "location": kind,
            "tool": write.tool,
        }
        if kind in OFFICE_STARTUP_KINDS:
            out.flag("lnk.office_startup_write", evidence, details=details)
            if extension in TEMPLATE_EXTENSIONS:
                out.flag("lnk.office_template_drop", evidence, details=details)
        if kind == "Office AddIns" or (kind in OFFICE_STARTUP_KINDS and extension in ADDIN_EXTENSIONS):
            out.flag("lnk.office_addin_write", evidence, details=details)
        if kind in ("Windows Startup folder", "Run key"):
            out.flag("lnk.autostart_write", evidence, details=details)
    for source, text in view.texts:
        if source == "command line" and view.steps:
            continue  # its steps are checked one by one
        normalized = expand_environment(text).replace("/", "\\").lower()
        for pattern, kind in STARTUP_LOCATIONS:
            if kind not in written_kinds and pattern.search(normalized):
                written_kinds.add(kind)
                writes_run_key = kind == "Run key" and re.search(
                    r"(?i)\breg(?:\.exe)?\s+add\b|(?:set|new)-itemproperty", text
                )
                if writes_run_key:
                    out.flag("lnk.autostart_write", f"{source}: {_shorten(text, 200)} (Run key)")
                else:
                    out.flag("lnk.persistence_location", f"{kind} named in {source}: {_shorten(text, 200)}")


def _judge_opens(view: CommandView, item: Item, out: Analysis) -> None:
    opened = list(dict.fromkeys(view.opens))
    if not opened:
        return
    names = {PureWindowsPath(o).name.lower() for o in opened}
    siblings = [
        s.name for s in item.siblings if PureWindowsPath(s.name.replace("/", "\\")).name.lower() in names
    ]
    evidence = ", ".join(opened) + (
        f" (beside it in the container: {', '.join(siblings)})" if siblings else ""
    )
    out.flag("lnk.decoy_document", evidence, details={"documents": opened, "siblings": siblings})


def _command_iocs(view: CommandView, out: Analysis) -> None:
    for source, text in view.texts:
        for match in _URL.finditer(text):
            url = _refang(match.group().rstrip(".,'\""))
            out.ioc("url", url, f"shortcut {source}")
            host = re.sub(r"^[a-z]+://", "", url, flags=re.I).split("/")[0].split(":")[0].split("@")[-1]
            if host:
                out.ioc("ip" if _IP.match(host) else "domain", host.lower(), f"shortcut {source}")
        for match in _UNC.finditer(text):
            host = match.group(1)
            if (host not in (".", "?") and "." in host) or _IP.match(host):
                out.ioc("ip" if _IP.match(host) else "domain", host.lower(), f"UNC path in shortcut {source}")


def _refang(url: str) -> str:
    return re.sub(r"(?i)^hxxp", "http", url.replace("[://]", "://").replace("[.]", "."))


def _is_remote(path: str) -> bool:
    return path.startswith("\\\\") and not path.startswith(("\\\\?\\", "\\\\.\\"))


def _tracker_iocs(meta: dict[str, Any], out: Analysis) -> None:
    tracker = meta.get("extra", {}).get("tracker") or {}
    machine = tracker.get("machine_identifier")
    if machine:
        out.ioc("hostname", machine, "shortcut tracker block (machine that made the shortcut)")
    for key in ("droid_mac", "birth_droid_mac"):
        if tracker.get(key) and not tracker.get(f"{key}_is_random"):
            out.ioc("mac", tracker[key], "shortcut tracker block (version-1 droid GUID)")


def _around(text: str, match: re.Match[str], width: int = 60) -> str:
    """A match with some context on each side, on one line."""
    return _shorten(text[max(0, match.start() - width) : match.end() + width], 2 * width + 40)


def _shorten(text: str, limit: int = 160) -> str:
    flat = re.sub(r"\s+", " ", text).strip()
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


# --- 3. Appended and embedded payloads ------------------------------------------------------------


def _payload_labels(view: CommandView) -> list[tuple[set[str], str]]:
    """(carved types, label): what the command opens is a decoy, what it drops into start-up a payload."""
    wanted: list[tuple[set[str], str]] = []
    for opened in view.opens:
        types = EXTENSION_TYPES.get(_extension(opened))
        if types:
            wanted.append((types, "decoy"))
    for write in view.writes:
        if _location_kind(write.destination):
            extension = _extension(write.destination) or (_extension(write.source) if write.source else "")
            types = EXTENSION_TYPES.get(extension)
            if types:
                wanted.append((types, "payload"))
    return wanted


def _carve(
    data: Buffer, layout: Layout, ctx: Context, wanted: list[tuple[set[str], str]], out: Analysis
) -> None:
    """Children for what follows the structure and for files inside undocumented blocks.

    The tail is split into the files found by signature and the bytes between them; runs of one
    repeated byte (padding) and gaps of 16 bytes or less (alignment) are left out.
    """
    appended: dict[str, Any] = {}
    size = len(data)
    if layout.end < size and not _blank(data, layout.end, size):
        carved = carve_embedded(data, start=layout.end)
        leftovers = [
            (o, n) for o, n in gaps(carved, layout.end, size) if n > 16 and not _blank(data, o, o + n)
        ]
        appended = {
            "offset": layout.end,
            "size": size - layout.end,
            "carved": [_carved_metadata(c) for c in carved],
            "unexplained": [{"offset": o, "size": n} for o, n in leftovers],
        }
        summary = ", ".join(f"{c.description} at {c.offset:#x}" for c in carved) or "no known file signature"
        out.flag(
            "lnk.appended_data",
            f"{size - layout.end:,} bytes from offset {layout.end:#x}: {summary}",
            details={"carved": len(carved)},
        )
        _emit_children(data, carved, leftovers, "appended", ctx, wanted, out)
    elif layout.end < size:
        appended = {"offset": layout.end, "size": size - layout.end, "blank": True}
    if appended:
        out.metadata["appended"] = appended
    for block in layout.blocks:
        if block.kind == "unknown" and block.size > 8:
            carved = carve_embedded(data, start=block.offset + 8, stop=block.offset + block.size)
            if carved:
                out.metadata.setdefault("unknown_block_files", []).extend(_carved_metadata(c) for c in carved)
                _emit_children(data, carved, [], f"block 0x{block.signature:08X}", ctx, wanted, out)


def _blank(data: Buffer, start: int, stop: int) -> bool:
    """Only one repeated byte value (zero padding, sector slack)."""
    if stop <= start:
        return True
    first = data[start : start + 1]
    chunk = 1 << 20
    for at in range(start, stop, chunk):
        piece = bytes(data[at : min(stop, at + chunk)])
        if piece.strip(first):
            return False
    return True


def _carved_metadata(carved: Carved) -> dict[str, Any]:
    return {
        "offset": carved.offset,
        "size": carved.size,
        "type": carved.type,
        "description": carved.description,
        "complete": carved.complete,
    }


def _emit_children(
    data: Buffer,
    carved: list[Carved],
    leftovers: list[tuple[int, int]],
    where: str,
    ctx: Context,
    wanted: list[tuple[set[str], str]],
    out: Analysis,
) -> None:
    pieces = [(c.offset, c.size, c.extension, c.type, c.data) for c in carved]
    pieces += [(o, n, "bin", "", b"") for o, n in leftovers]
    for offset, size, extension, kind, content in sorted(pieces):
        if ctx.exhausted:
            return
        ctx.check_time()
        blob = ctx.extract(
            io.BytesIO(content or bytes(data[offset : offset + size])), f"{where} data at {offset:#x}"
        )
        if blob is None:
            continue
        labels = []
        for index, (types, label) in enumerate(wanted):
            if kind in types or ctx.identify(blob) in types:
                labels.append(label)
                wanted.pop(index)
                break
        out.children.append(
            Child(
                f"{where}@{offset:#x}.{extension}",
                blob,
                path=f"{where}@{offset:#x}",
                offset=offset,
                labels=labels,
            )
        )


def _structure_metadata(layout: Layout) -> dict[str, Any]:
    return {
        "file_size": layout.file_size,
        "lnk_size": layout.end,
        "link_flags_raw": f"0x{layout.flags:08X}",
        "sections": layout.sections,
        "blocks": [
            {"kind": b.kind, "signature": f"0x{b.signature:08X}", "offset": b.offset, "size": b.size}
            for b in layout.blocks
        ],
        "string_counts": layout.string_counts,
        "problems": layout.problems,
        "notes": layout.notes,
    }


# --- Sigma ---------------------------------------------------------------------------------------


def _run_sigma(
    target: dict[str, Any], view: CommandView, layout: Layout, ctx: Context, out: Analysis
) -> None:
    """Sigma process_creation rules on the process a double-click starts and the ones its steps start."""
    if not target["path"]:
        return
    from restytriage import sigma

    events = _implied_events(target, view, layout)
    out.metadata["sigma"] = {"events": events}
    directories = (sigma.default_rule_dirs() if ctx.config.builtin_rules else []) + list(
        ctx.config.sigma_dirs
    )
    if not directories:
        return
    rules = sigma.load_rules(directories)
    out.metadata["sigma"]["rules"] = len(rules.rules)
    seen: set[str] = set()
    matched: list[dict[str, Any]] = []
    for number, event in enumerate(events):
        for match in rules.match(event):
            key = match.rule_id or match.path
            if key in seen:
                continue
            seen.add(key)
            where = "the double-click" if number == 0 else f"step process {number}"
            matched.append(
                {"rule_id": match.rule_id, "title": match.title, "level": match.level, "event": number}
            )
            level = (
                match.level
                if match.level in ("informational", "low", "medium", "high", "critical")
                else "informational"
            )
            out.flag(
                f"lnk.sigma_{level}",
                f"{match.title} ({match.level}) on {where}: {_shorten(event['CommandLine'], 160)}",
                title=f"Sigma: {match.title}",
                techniques=list(match.techniques),
                details={
                    "rule_id": match.rule_id,
                    "level": match.level,
                    "tags": list(match.tags),
                    "rule": match.path,
                    "event": number,
                },
            )
    out.metadata["sigma"]["matches"] = matched


def _implied_events(target: dict[str, Any], view: CommandView, layout: Layout) -> list[dict[str, str]]:
    """Sysmon-style process creations: the double-click's, then one per program its cmd steps start."""
    directory = expand_environment(layout.strings.get("working_directory", "")).strip()
    started = _process(target["expanded"], view.arguments, directory)
    if started is None:
        return []  # a document or folder: its handler application runs, not the target itself
    image, command_line = started
    directory = directory or str(PureWindowsPath(image).parent)
    directory = directory.rstrip("\\") + "\\"
    first = {
        "Image": image,
        "CommandLine": command_line,
        "ParentImage": "C:\\Windows\\explorer.exe",
        "ParentCommandLine": "C:\\Windows\\Explorer.EXE",
        "CurrentDirectory": directory,
    }
    events = [first]
    for program, arguments in view.child_programs[:16]:
        child = _process(expand_environment(program), arguments, directory)
        if child is not None:
            events.append(
                {
                    "Image": child[0],
                    "CommandLine": child[1],
                    "ParentImage": image,
                    "ParentCommandLine": command_line,
                    "CurrentDirectory": directory,
                }
            )
    for event in events:
        original = _original_file_name(event["Image"])
        if original:
            event["OriginalFileName"] = original
    return events


def _process(path: str, arguments: str, directory: str) -> tuple[str, str] | None:
    """(Image, CommandLine) of the process Windows creates to open `path`; None for documents and folders.

    Bare names resolve only when they are Windows programs this module knows (PATH is unknown);
    relative paths resolve against the working directory; scripts run under their host program.
    """
    path = path.strip().strip('"')
    if not PureWindowsPath(path).drive and not path.startswith("\\\\"):
        if "\\" not in path and "/" not in path and _program(path) in TARGET_FINDINGS:
            path = _image_path(path)
        elif not directory or not _extension(path):
            return None
        elif path.startswith("\\"):  # rooted on the working directory's drive
            path = (PureWindowsPath(directory).drive or "C:") + path
        else:
            path = str(PureWindowsPath(directory) / path)
    name = _program(path)
    extension = _extension(path)
    tail = f" {arguments}" if arguments else ""
    if extension in ("exe", "com", "scr", "pif") or (not extension and name in TARGET_FINDINGS):
        return path, f'"{path}"{tail}'
    host = SCRIPT_HOSTS.get(extension)
    if host is None:
        return None
    image, template = host
    return image, template.format(path=path, args=tail)


def _image_path(name: str) -> str:
    """Where a Windows program named bare (cmd, powershell.exe) lives."""
    program = _program(name)
    return PROGRAM_PATHS.get(program, f"{_SYSTEM32}{program}.exe")


def _original_file_name(image: str) -> str | None:
    """The PE OriginalFileName, known only for the Windows programs named in the tables."""
    name = _program(image)
    windows_program = image.lower().startswith(("c:\\windows\\", "c:\\program files\\powershell\\"))
    if windows_program and name in TARGET_FINDINGS:
        return ORIGINAL_FILE_NAMES.get(name, f"{name}.exe")
    return None


# --- Facts ---------------------------------------------------------------------------------------


def _facts(
    meta: dict[str, Any], layout: Layout, target: dict[str, Any], view: CommandView, out: Analysis
) -> None:
    facts = out.facts
    if target["path"]:
        facts["target"] = target["path"] + (
            f" (from the {target['source']})" if target["source"] != "IDList" else ""
        )
    if view.line:
        facts["command line"] = view.line if len(view.line) <= 4000 else view.line[:4000] + "…"
    if len(view.steps) > 1:
        facts["steps"] = " ⏎ ".join(_shorten(s, 200) for s in view.steps[:12])
    if view.decoded:
        facts["decoded PowerShell"] = _shorten(view.decoded[0]["text"], 500)
    if view.writes:
        facts["writes"] = "; ".join(dict.fromkeys(w.destination for w in view.writes))
    if view.opens:
        facts["opens"] = "; ".join(dict.fromkeys(view.opens))
    if layout.strings.get("working_directory"):
        facts["working directory"] = _shorten(layout.strings["working_directory"], 200)
    show = (meta.get("header") or {}).get("show_command")
    if show not in (None, 1):
        facts["window"] = SHOW_COMMANDS.get(show, f"value {show} (shown normally)")
    icon = layout.strings.get("icon_location") or (
        (meta.get("extra", {}).get("icon_environment") or {}).get("target_unicode")
    )
    if icon:
        facts["icon"] = f"{icon},{(meta.get('header') or {}).get('icon_index', 0)}"
    tracker = meta.get("extra", {}).get("tracker") or {}
    if tracker.get("machine_identifier"):
        facts["machine"] = tracker["machine_identifier"]
    sids = (meta.get("extra", {}).get("property_store") or {}).get("user_sids")
    if sids:
        facts["user SID"] = ", ".join(sids)
    if tracker.get("droid_mac"):
        facts["MAC"] = tracker["droid_mac"] + (" (random)" if tracker.get("droid_mac_is_random") else "")
    appended = out.metadata.get("appended")
    if appended and not appended.get("blank"):
        kinds = (
            ", ".join(f"{c['type']} at {c['offset']:#x}" for c in appended["carved"]) or "unidentified data"
        )
        facts["appended"] = f"{appended['size']:,} bytes at {appended['offset']:#x}: {kinds}"
