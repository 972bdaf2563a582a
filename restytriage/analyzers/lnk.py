"""Windows shortcuts (MS-SHLLINK): what a double-click runs, what it writes where, what rides inside.

The analyzer composes two libraries and judges what they read:

1. Structure (`restytriage.lnkformat`): the sections walked as Windows reads them, each decoded by
   LnkParse3, the target Windows starts and where the shortcut ends.
2. Command (`restytriage.commandline`): the command line a double-click runs (the target plus the
   full arguments) unwrapped into cmd steps, nested cmd and decoded PowerShell, with the files
   written, documents opened and downloads of every piece.
3. Here: findings, IOCs and facts; bytes after the structure (and inside undocumented blocks)
   carved into child objects; Sigma process_creation rules run on the process creation the
   double-click implies (and on the processes its cmd steps start).
"""

from __future__ import annotations

import io
import re
from pathlib import PureWindowsPath
from typing import Any

from restytriage.analysis import CARVED, Analysis, Child, Context, Item, excerpt
from restytriage.blob import slice_writer
from restytriage.carve import Buffer, Carved, carve_embedded, gaps, is_blank
from restytriage.commandline import (
    DOWNLOAD_CRADLE,
    HIDDEN_CMD_WINDOW,
    HIDDEN_POWERSHELL_WINDOW,
    REMOTE_EXECUTION,
    CommandView,
    analyse_command,
    command_metadata,
    expand_environment,
    extension_of,
    program_name,
    raw_tokens,
)
from restytriage.identify import DOCUMENT_EXTENSIONS, EXECUTABLE_EXTENSIONS, SCRIPT_EXTENSIONS
from restytriage.lnkformat import (
    HAS_EXP_STRING,
    SHOW_COMMANDS,
    STRING_FIELDS,
    Layout,
    decode_sections,
    resolve_target,
    structure_metadata,
    walk,
)

NAME = "lnk"
TYPES = frozenset({"lnk"})

EXPLORER_TARGET_FIELD = 260  # characters of target + arguments the Properties dialog shows

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
_PADDING = re.compile(r"[ \t\u00a0\u3000]{20,}")
_CONTROL = re.compile(r"[\r\n\x0b\x0c\x11-\x13]")


def analyze(item: Item, ctx: Context) -> Analysis:
    out = Analysis(NAME)
    with item.blob.mapped() as data:  # tails can be large
        layout = walk(data)
        head = bytes(data[: layout.end])
        meta = decode_sections(head, layout)
        target = resolve_target(meta, layout)
        command = analyse_command(target["path"], layout.strings.get("arguments", ""))
        out.metadata.update(meta)
        out.metadata["target"] = target
        out.metadata["command"] = command_metadata(command)
        _judge_structure(layout, out)
        _judge_target(meta, layout, target, command, out)
        _judge_command(command, layout, item, out)
        _tracker_iocs(meta, out)
        labels = _payload_labels(command)
        _carve(data, layout, ctx, labels, out)
        out.metadata["structure"] = structure_metadata(layout)
    _run_sigma(target, command, layout, ctx, out)
    _facts(meta, layout, target, command, out)
    return out


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
        extension_of(t) in EXECUTABLE_EXTENSIONS for t in raw_tokens(arguments)
    ):
        return None  # explorer opening a folder or document is not indirect execution
    return TARGET_FINDINGS[program]


def _describe_padding(text: str) -> str:
    longest = max((m.group() for m in _PADDING.finditer(text)), key=len, default="")
    controls = len(_CONTROL.findall(text))
    parts = [f"{controls} line break/control character(s)"] if controls else []
    if longest:
        parts.append(f"{len(longest)} blanks after {excerpt(text[: text.find(longest)], 60)!r}")
    after = excerpt(text[text.find(longest) + len(longest) :], 80) if longest else ""
    return ", ".join(parts) + (f", then {after!r}" if after else "")


def _judge_target(
    meta: dict[str, Any], layout: Layout, target: dict[str, Any], view: CommandView, out: Analysis
) -> None:
    path, program, extension = target["path"], view.program, extension_of(target["path"])
    finding = _program_finding(program, view.arguments)
    if finding:
        out.flag(finding, f"{path} {excerpt(view.arguments, 200)}")
    elif extension in SCRIPT_EXTENSIONS:
        out.flag("lnk.target_script_file", path)
    blank = [part for part in PureWindowsPath(path).parts[1:] if not PureWindowsPath(part).stem.strip()]
    if blank and (extension in EXECUTABLE_EXTENSIONS or program in TARGET_FINDINGS):
        shown = "".join(f"<U+{ord(c):04X}>" if c.isspace() and c != " " else c for c in path)
        out.flag("lnk.blank_name_target", f"{shown}: {len(blank)} blank name(s) in the path")
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
    hidden_args = [
        t for _, t in view.texts if HIDDEN_POWERSHELL_WINDOW.search(t) or HIDDEN_CMD_WINDOW.search(t)
    ]
    minimised = show == 7 and (view.arguments.strip() or extension in SCRIPT_EXTENSIONS)
    if runs_code and (minimised or hidden_args):
        evidence = [f"ShowCommand {SHOW_COMMANDS.get(show, show)}"] if minimised else []
        evidence += [excerpt(t, 120) for t in hidden_args[:2]]
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
        if looks is None and extension_of(location) in DOCUMENT_EXTENSIONS:
            looks = f"{extension_of(location).upper()} document"
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
            excerpt(view.decoded[0]["text"], 300),
            details={"decoded": [d["text"][:4000] for d in view.decoded]},
        )
    for program, started_arguments in view.child_programs:
        name = program_name(expand_environment(program))
        finding = _program_finding(name, started_arguments)
        if finding and name != view.program:
            out.flag(finding, f"started by the command: {program} {excerpt(started_arguments, 200)}")
    everything = "\n".join(text for _, text in view.texts)
    downloads = [_around(everything, m) for m in DOWNLOAD_CRADLE.finditer(everything)]
    downloads += [_around(everything, m) for m in REMOTE_EXECUTION.finditer(everything)]
    if downloads:
        out.flag("lnk.download_cradle", "; ".join(list(dict.fromkeys(downloads))[:3]))
    own_name = PureWindowsPath(item.name).name.lower()
    if ".lnk" in everything.lower() or (own_name and own_name in everything.lower()):
        out.flag(
            "lnk.reads_itself",
            excerpt(next(t for _, t in view.texts if ".lnk" in t.lower() or own_name in t.lower()), 200),
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
        extension = extension_of(write.destination) or (extension_of(write.source) if write.source else "")
        if kind is None:
            continue
        written_kinds.add(kind)
        evidence = f"{write.tool}: {excerpt(write.step, 200)} -> {write.destination} ({kind})"
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
                    out.flag("lnk.autostart_write", f"{source}: {excerpt(text, 200)} (Run key)")
                else:
                    out.flag("lnk.persistence_location", f"{kind} named in {source}: {excerpt(text, 200)}")


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
    return excerpt(text[max(0, match.start() - width) : match.end() + width], 2 * width + 40)


# --- Appended and embedded payloads ---------------------------------------------------------------


def _payload_labels(view: CommandView) -> list[tuple[set[str], str]]:
    """(carved types, label): what the command opens is a decoy, what it drops into start-up a payload."""
    wanted: list[tuple[set[str], str]] = []
    for opened in view.opens:
        types = EXTENSION_TYPES.get(extension_of(opened))
        if types:
            wanted.append((types, "decoy"))
    for write in view.writes:
        if _location_kind(write.destination):
            extension = extension_of(write.destination) or (
                extension_of(write.source) if write.source else ""
            )
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
    if layout.end < size and not is_blank(data, layout.end, size):
        carved = carve_embedded(data, start=layout.end)
        leftovers = [
            (o, n) for o, n in gaps(carved, layout.end, size) if n > 16 and not is_blank(data, o, o + n)
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
        source = io.BytesIO(content) if content else slice_writer(data, offset, offset + size)
        blob = ctx.extract(source, f"{where} data at {offset:#x}")
        if blob is None:
            continue
        labels = []
        for index, (types, label) in enumerate(wanted):
            if kind in types or ctx.identify(blob) in types:
                labels.append(label)
                wanted.pop(index)
                break
        labels.append(CARVED)
        out.children.append(
            Child(
                f"{where}@{offset:#x}.{extension}",
                blob,
                path=f"{where}@{offset:#x}",
                offset=offset,
                labels=labels,
            )
        )


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
    directories = sigma.rule_dirs_for(ctx.config)
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
                f"{match.title} ({match.level}) on {where}: {excerpt(event['CommandLine'], 160)}",
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
        if "\\" not in path and "/" not in path and program_name(path) in TARGET_FINDINGS:
            path = _image_path(path)
        elif not directory or not extension_of(path):
            return None
        elif path.startswith("\\"):  # rooted on the working directory's drive
            path = (PureWindowsPath(directory).drive or "C:") + path
        else:
            path = str(PureWindowsPath(directory) / path)
    name = program_name(path)
    extension = extension_of(path)
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
    program = program_name(name)
    return PROGRAM_PATHS.get(program, f"{_SYSTEM32}{program}.exe")


def _original_file_name(image: str) -> str | None:
    """The PE OriginalFileName, known only for the Windows programs named in the tables."""
    name = program_name(image)
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
        facts["steps"] = " ⏎ ".join(excerpt(s, 200) for s in view.steps[:12])
    if view.decoded:
        facts["decoded PowerShell"] = excerpt(view.decoded[0]["text"], 500)
    if view.writes:
        facts["writes"] = "; ".join(dict.fromkeys(w.destination for w in view.writes))
    if view.opens:
        facts["opens"] = "; ".join(dict.fromkeys(view.opens))
    if layout.strings.get("working_directory"):
        facts["working directory"] = excerpt(layout.strings["working_directory"], 200)
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
