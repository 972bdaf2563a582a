"""VBA and Excel 4.0 (XLM) macros, the way oletools reads them: olevba extracts every module's source,
scans it (auto-exec triggers, suspicious keywords, IOCs, decoded Chr/StrReverse/Base64/hex strings),
pcodedmp's p-code is compared with the source (VBA stomping), and MacroRaptor classifies the code
(A: auto-exec, W: writes, X: executes).

This module is the macro half of the `ole` analyzer and claims no type itself. `analyze_macros()`
works on any file olevba opens (OLE documents, vbaProject.bin, OOXML packages) and writes findings,
IOCs, facts and metadata into the caller's Analysis.
"""

from __future__ import annotations

import hashlib
import logging
import re
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from restytriage.analysis import Analysis, Context

EXCERPT_CHARS = 700  # macro source shown in the terminal; the JSON report has all of it
MAX_FOLDING_PASSES = 64  # each pass halves a concatenation chain: 2**64 terms is beyond any file
_OLETOOLS_LOGGERS = (
    "olevba",
    "crypto",
    "ppt_parser",
    "oleobj",
    "ftguess",
    "oleid",
    "mraptor",
    "msodde",
    "olefile",
)

# olevba describes each suspicious keyword; the descriptions group them into what the macro does.
_CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("download", ("download files",)),
    ("injection", ("inject code", "shellcode")),
    ("powershell", ("powershell",)),
    ("registry", ("registry",)),
    (
        "execute",
        (
            "run an executable",
            "system command",
            "run a dll",
            "through wmi",
            "run an application",
            "excel 4 macro (aka",
            "call a dll using excel 4",
        ),
    ),
    (
        "file_write",
        (
            "write to a file",
            "binary file",
            "copy a file",
            "move a file",
            "delete a file",
            "create a text file",
            "create a directory",
        ),
    ),
    (
        "obfuscation",
        ("obfuscate", "-encoded strings", "string expressions", "special characters", "document variables"),
    ),
    ("sandbox_evasion", ("detect virtualization", "sandbox")),
    ("security_tamper", ("disable vba macro security",)),
    ("self_modification", ("self-modification",)),
    ("hidden_window", ("hide the application",)),
)
_CATEGORY_FINDINGS = {
    "download": "ole.vba_download",
    "injection": "ole.vba_injection",
    "powershell": "ole.vba_powershell",
    "registry": "ole.vba_registry",
    "execute": "ole.vba_execute",
    "obfuscation": "ole.vba_obfuscation",
    "sandbox_evasion": "ole.vba_sandbox_evasion",
    "security_tamper": "ole.vba_security_tamper",
    "self_modification": "ole.vba_self_modification",
    "hidden_window": "ole.vba_hidden_window",
}
# When each auto-exec trigger fires, in words an analyst reads at a glance.
_TRIGGER_WHEN = {
    "autoexec": "Word start (AutoExec, from a global template)",
    "autoopen": "document open (AutoOpen)",
    "document_open": "document open (Document_Open)",
    "documentopen": "document open (DocumentOpen)",
    "autonew": "new document from the template (AutoNew)",
    "document_new": "new document from the template (Document_New)",
    "autoclose": "document close (AutoClose)",
    "autoexit": "Word exit (AutoExit)",
    "document_close": "document close (Document_Close)",
    "workbook_open": "workbook open (Workbook_Open)",
    "auto_open": "workbook open (Auto_Open)",
}
_PROCEDURE = re.compile(
    r"^[ \t]*(?:(?:Public|Private|Friend)[ \t]+)?(?:Static[ \t]+)?(?:Sub|Function|Property[ \t]+(?:Get|Let|Set))"
    r"[ \t]+(\w+)",
    re.IGNORECASE | re.MULTILINE,
)
_DECLARE = re.compile(
    r'\bDeclare[ \t]+(?:PtrSafe[ \t]+)?(?:Function|Sub)[ \t]+(\w+)[ \t]+Lib[ \t]+"([^"]+)"'
    r'(?:[ \t]+Alias[ \t]+"([^"]+)")?',
    re.IGNORECASE,
)
_ATTRIBUTE = re.compile(r"^Attribute[ \t]+(VB_\w+)[ \t]*=[ \t]*(.*?)\s*$", re.IGNORECASE | re.MULTILINE)
_RUN_KEY = re.compile(
    r"CurrentVersion\\(?:Run|RunOnce|RunServices|Policies\\Explorer\\Run)\b|\\Winlogon\\", re.I
)
_WINDOWS_PATH = re.compile(r"(?:\b[A-Za-z]:|%\w+%)\\[^\"\r\n*?<>|]{2,200}")
_REGISTRY_KEY = re.compile(r"\b(?:HKEY_[A-Z_]+|HK(?:CU|LM|CR|U))\\[^\"\r\n]{2,200}")
_XLM_EXECUTE = re.compile(r"\b(?:EXEC|CALL|REGISTER)\(", re.IGNORECASE)
_XLM_SHEET = re.compile(r"Excel 4\.0 macro sheet.*?-\s*(.+)$", re.MULTILINE)
_ENCODED_MARKERS = {  # olevba's keyword for "this encoding is used" -> the kind of its decoded results
    "Hex Strings": "Hex String",
    "Base64 Strings": "Base64 String",
    "Dridex Strings": "Dridex string",
    "VBA obfuscated Strings": "VBA string",
}
_STRING = r'"(?:[^"\r\n]|"")*"'
_LITERAL = re.compile(_STRING)
_CHR = re.compile(r"\bChr[WB]?\$?\(\s*(&H[0-9A-Fa-f]{1,6}|\d{1,7})\s*\)", re.IGNORECASE)
_STRREVERSE = re.compile(rf"\bStrReverse\$?\(\s*({_STRING})\s*\)", re.IGNORECASE)
_ENVIRON = re.compile(rf"\bEnviron\$?\(\s*({_STRING})\s*\)", re.IGNORECASE)
_PARENTHESISED = re.compile(rf"(?<![\w$)\]])\(\s*({_STRING})\s*\)")  # ("a"), not f("a")
_CONCATENATION = re.compile(rf"({_STRING})\s*[&+]\s*({_STRING})")
_DECODED_KINDS = {
    "Hex String": "hex",
    "Base64 String": "base64",
    "Dridex string": "dridex",
    "VBA string": "vba",
}


@dataclass
class MacroSummary:
    """What the container analysis needs to judge templates and encrypted wrappers."""

    modules: int = 0
    autoexec: list[str] = field(default_factory=list)
    writes: bool = False
    executes: bool = False
    downloads: bool = False
    project_names: list[str] = field(default_factory=list)

    @property
    def has_payload(self) -> bool:
        return self.writes or self.executes or self.downloads


@dataclass
class _Module:
    name: str
    stream: str
    code: str

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "stream": self.stream,
            "size": len(self.code),
            "sha256": hashlib.sha256(self.code.encode("utf-8", "surrogatepass")).hexdigest(),
            "attributes": {k: v.strip('"') for k, v in _ATTRIBUTE.findall(self.code)},
            "procedures": list(dict.fromkeys(_PROCEDURE.findall(self.code))),
            "source": self.code,
        }


@contextmanager
def quiet_oletools() -> Iterator[None]:
    """Keep oletools' log messages and its pyparsing deprecation warnings off the terminal."""
    # pcodedmp switches olevba's logger on halfway through an analysis and ppt_record_parser logs
    # to the root logger, so logging is off while oletools runs, and olevba's is reset after.
    previous = logging.root.manager.disable
    logging.disable(logging.CRITICAL)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(previous)
        for name in _OLETOOLS_LOGGERS:
            if name in logging.Logger.manager.loggerDict:  # never create one before oletools does
                logging.getLogger(name).setLevel(logging.CRITICAL + 1)


def analyze_macros(
    path: Path, out: Analysis, ctx: Context, exclude: Sequence[str] = (), xlm_sheets: Sequence[str] = ()
) -> MacroSummary:
    """Extract and judge the VBA and XLM macros of the file at `path` (a real file: pcodedmp and
    XLM extraction read from disk). Streams under `exclude` storages are left to child objects;
    `xlm_sheets` names the macro sheets when the caller read them from the workbook itself."""
    summary = MacroSummary()
    with quiet_oletools():
        from oletools.olevba import VBA_Parser

        parser = VBA_Parser(str(path), relaxed=True)
        try:
            vba_found = bool(parser.detect_vba_macros())
            xlm_found = bool(parser.detect_xlm_macros())
            if vba_found or xlm_found:
                _analyze(parser, out, ctx, summary, exclude, xlm_sheets, vba_found)
        finally:
            parser.close()
    return summary


@dataclass
class _Scan:
    """olevba's scanner results over the VBA code and, separately, over the XLM listing."""

    autoexec: list[tuple[str, str]]
    suspicious: list[tuple[str, str]]
    results: list[tuple[str, str, str]]  # (kind, value, description or encoded form)


def _extract(parser: Any, ctx: Context, exclude: Sequence[str]) -> tuple[list[_Module], str]:
    modules: list[_Module] = []
    xlm_listing = ""
    for _, stream, filename, code in parser.extract_all_macros():  # cached: olevba reuses it
        ctx.check_time()
        if stream == "xlm_macro":
            xlm_listing = code if parser.contains_xlm_macros else ""
        elif stream != "VBA P-code" and not any(stream.startswith(prefix + "/") for prefix in exclude):
            modules.append(_Module(filename.rsplit(".", 1)[0], stream, code))
    return modules, xlm_listing


def _scan(vba_text: str, xlm_listing: str, expressions: Sequence[tuple[str, str]]) -> _Scan:
    """olevba's scanner over the code, the decoded expressions (as olevba's --deobf layer) and XLM."""
    from oletools.olevba import VBA_Scanner

    scanner = VBA_Scanner(vba_text)
    results = list(scanner.scan(include_decoded_strings=False))
    autoexec, suspicious = list(scanner.autoexec_keywords), list(scanner.suspicious_keywords)
    if expressions:
        layer = VBA_Scanner("\n".join(value for value, _ in expressions))
        layer_results = layer.scan(include_decoded_strings=False)
        results += [(t, v, f"{d} (obfuscation: VBA expression)") for t, v, d in layer_results if t == "IOC"]
        results += [("VBA string", value, expression) for value, expression in expressions]
        suspicious += [k for k in layer.suspicious_keywords if k[0] not in _ENCODED_MARKERS]
        suspicious.append(
            (
                "VBA obfuscated Strings",
                "VBA string expressions were detected, may be used to obfuscate strings",
            )
        )
    if xlm_listing:  # plugin_biff's listing is full of record hex: only its keywords and IOCs count
        xlm = VBA_Scanner(xlm_listing)
        results += [r for r in xlm.scan(include_decoded_strings=False) if r[0] == "IOC"]
        autoexec += xlm.autoexec_keywords
        suspicious += [k for k in xlm.suspicious_keywords if k[0] not in _ENCODED_MARKERS]
    decoded_kinds = {r[0] for r in results}
    # olevba names an encoding as soon as something matches its pattern; keep it if a value decoded.
    suspicious = [k for k in suspicious if _ENCODED_MARKERS.get(k[0], k[0]) in decoded_kinds | {k[0]}]
    results = list(dict.fromkeys(results))
    return _Scan(list(dict.fromkeys(autoexec)), list(dict.fromkeys(suspicious)), results)


def fold_expressions(code: str) -> tuple[str, list[tuple[str, str]]]:
    """Evaluate the string-building tricks of obfuscated VBA, line by line: Chr/ChrW/ChrB codes,
    StrReverse and Environ of literals, parentheses and & / + concatenation of literals.

    Returns the folded source and the (value, original line) of each new string it produced. A
    regex rewriter in linear passes, where olevba's pyparsing evaluator takes seconds on a few
    hundred Chr() terms.
    """
    from oletools.olevba import vba_collapse_long_lines

    folded_lines, found = [], {}
    for line in vba_collapse_long_lines(code).splitlines():
        folded = _fold_line(line) if '"' in line or "chr" in line.lower() else line
        if folded != line:
            before = {m.group(0) for m in _LITERAL.finditer(line)}
            for match in _LITERAL.finditer(folded):
                value = match.group(0)[1:-1].replace('""', '"')
                if match.group(0) not in before and len(value) >= 4:
                    found.setdefault(value, line.strip()[:300])
        folded_lines.append(folded)
    return "\n".join(folded_lines), list(found.items())


def _fold_line(line: str) -> str:
    line = _CHR.sub(_chr_literal, line)
    for _ in range(MAX_FOLDING_PASSES):
        previous = line
        line = _STRREVERSE.sub(lambda m: _quote(_unquote(m.group(1))[::-1]), line)
        line = _ENVIRON.sub(lambda m: _quote(f"%{_unquote(m.group(1))}%"), line)
        line = _PARENTHESISED.sub(r"\1", line)
        line = _CONCATENATION.sub(lambda m: _quote(_unquote(m.group(1)) + _unquote(m.group(2))), line)
        if line == previous:
            break
    return line


def _chr_literal(match: re.Match[str]) -> str:
    text = match.group(1)
    code = int(text[2:], 16) if text.upper().startswith("&H") else int(text)
    return (
        _quote(chr(code)) if 0 <= code <= 0x10FFFF and code not in range(0xD800, 0xE000) else match.group(0)
    )


def _quote(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


def _unquote(literal: str) -> str:
    return literal[1:-1].replace('""', '"')


def _analyze(
    parser: Any,
    out: Analysis,
    ctx: Context,
    summary: MacroSummary,
    exclude: Sequence[str],
    xlm_sheets: Sequence[str],
    vba_found: bool,
) -> None:
    from oletools import mraptor

    modules, xlm_listing = _extract(parser, ctx, exclude)
    if not modules and not xlm_listing:
        if vba_found and not exclude:
            out.flag("ole.vba_unreadable", "VBA storage found, no module source could be decompressed")
        return
    stomped = bool(parser.detect_vba_stomping())
    pcode = (parser.pcodedmp_output or "") if stomped else ""
    form_strings = [text for _, _, text in _form_strings(parser)]
    vba_code = "\n".join(m.code for m in modules)
    vba_text = "\n".join([vba_code, *form_strings, pcode])  # the p-code is what runs when stomped
    ctx.check_time()
    folded_source, expressions = fold_expressions(vba_code)
    scan = _scan(vba_text, xlm_listing, expressions)
    raptor = mraptor.MacroRaptor("\n".join([vba_text, xlm_listing]))
    raptor.scan()
    results = scan.results
    decoded = [
        {"kind": _DECODED_KINDS[kind], "decoded": value, "encoded": encoded[:300]}
        for kind, value, encoded in results
        if kind in _DECODED_KINDS
    ]
    categories = _categorise(scan.suspicious)
    summary.modules = len(modules)
    summary.autoexec = list(dict.fromkeys(keyword for keyword, _ in scan.autoexec))
    summary.writes = bool(raptor.write)
    summary.executes = bool(raptor.execute) or "execute" in categories
    summary.downloads = "download" in categories
    summary.project_names = _project_names(parser)
    declares = [
        {"function": f, "library": lib, "alias": alias} for f, lib, alias in _DECLARE.findall(vba_text)
    ]

    coded = [m.name for m in modules if _body(m.code).strip()]  # Word keeps empty ThisDocument modules
    if coded:
        out.flag("ole.vba_macros", f"{len(coded)} module(s) with code: {', '.join(dict.fromkeys(coded))}")
    if summary.autoexec:
        out.flag("ole.autoexec", ", ".join(summary.autoexec), details={"triggers": scan.autoexec})
    if raptor.suspicious:
        out.flag("ole.mraptor_suspicious", _raptor_evidence(raptor))
    for category, keywords in categories.items():
        if category in _CATEGORY_FINDINGS:
            out.flag(_CATEGORY_FINDINGS[category], ", ".join(keywords), details={"keywords": keywords})
    if raptor.write:
        out.flag(
            "ole.vba_file_write", raptor.write_match, details={"keywords": categories.get("file_write", [])}
        )
    if declares:
        out.flag("ole.vba_win32_api", ", ".join(f"{d['function']} ({d['library']})" for d in declares[:8]))
    texts = [vba_text, xlm_listing, *(d["decoded"] for d in decoded)]
    run_keys = sorted({m.group(0) for text in texts for m in _RUN_KEY.finditer(text)})
    if run_keys:
        out.flag("ole.vba_run_key", ", ".join(run_keys))
    _record_iocs(results, texts, out)
    if stomped:
        out.flag("ole.vba_stomping", _stomping_evidence(pcode, vba_code))
    sheets = list(xlm_sheets) or [s.strip() for s in _XLM_SHEET.findall(xlm_listing)]
    if xlm_listing:
        out.flag("ole.xlm_macros", ", ".join(sheets) or "macro sheet")
        xlm_calls = sorted({m.group(0).upper() for m in _XLM_EXECUTE.finditer(xlm_listing)})
        if xlm_calls:
            out.flag("ole.xlm_execute", ", ".join(xlm_calls))

    out.metadata["macros"] = {
        "projects": summary.project_names,
        "modules": [m.describe() for m in modules],
        "autoexec": [{"keyword": k, "description": d} for k, d in scan.autoexec],
        "suspicious": [{"keyword": k, "description": d} for k, d in scan.suspicious],
        "iocs": [{"value": value, "type": kind} for tag, value, kind in results if tag == "IOC"],
        "decoded_strings": decoded,
        "deobfuscated_source": folded_source if expressions else "",
        "declares": declares,
        "form_strings": form_strings,
        "mraptor": {
            "flags": raptor.get_flags(),
            "suspicious": bool(raptor.suspicious),
            "autoexec": raptor.autoexec_match,
            "write": raptor.write_match,
            "execute": raptor.execute_match,
        },
        "vba_stomping": stomped,
        "pcode": pcode,
        "xlm": {"sheets": sheets, "listing": xlm_listing} if xlm_listing else {},
    }
    _facts(out, modules, summary, raptor.get_flags(), categories, decoded, results, sheets, stomped)


def _form_strings(parser: Any) -> list[tuple[str, str, str]]:
    """Strings of UserForm controls (a place to hide payloads); damaged forms are skipped."""
    try:
        return list(parser.extract_form_strings())
    except Exception:  # oleform raises on malformed form streams; the code still counts
        return []


def _project_names(parser: Any) -> list[str]:
    """Names from the PROJECT streams ("TemplateProject" is how Word names a template's project)."""
    ole = parser.ole_file
    if ole is None:
        return []
    names = []
    for _, project_path, _ in parser.vba_projects or ():
        try:
            text = ole.openstream(project_path).read(64 * 1024).decode("latin-1")
        except Exception:  # a broken sector chain: the project keeps no name
            continue
        found = re.search(r'^Name="([^"\r\n]*)"', text, re.MULTILINE)
        if found:
            names.append(found.group(1))
    return names


def _categorise(keywords: Sequence[tuple[str, str]]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for keyword, description in keywords:
        lowered = description.lower()
        for category, markers in _CATEGORIES:
            if any(marker in lowered for marker in markers):
                bucket = found.setdefault(category, [])
                if keyword not in bucket:
                    bucket.append(keyword)
                break
    # olevba evaluates every string expression (Environ("TEMP") & "\\x.exe" too); such expressions
    # are obfuscation only beside Chr/StrReverse/encoded strings, so they do not count alone.
    if found.get("obfuscation") == ["VBA obfuscated Strings"]:
        del found["obfuscation"]
    return found


def _raptor_evidence(raptor: Any) -> str:
    parts = [f"A: {raptor.autoexec_match}"]
    if raptor.write:
        parts.append(f"W: {raptor.write_match}")
    if raptor.execute:
        parts.append(f"X: {raptor.execute_match}")
    return f"{raptor.get_flags()} ({'; '.join(parts)})"


def _stomping_evidence(pcode: str, source: str) -> str:
    literals = re.findall(r"LitStr 0x[0-9A-Fa-f]+ (\".*\")$", pcode, re.MULTILINE)
    hidden = [lit for lit in literals if lit.strip('"') not in source]
    if hidden:
        return "p-code holds strings the source does not: " + ", ".join(hidden[:3])
    return "the p-code calls or strings differ from the source code"


def _record_iocs(results: Sequence[tuple[str, str, str]], texts: Sequence[str], out: Analysis) -> None:
    findings: dict[str, list[str]] = {"ole.vba_network_ioc": [], "ole.vba_executable_name": []}
    for tag, value, kind in results:
        if tag != "IOC":
            continue
        context = "VBA macro" + (f" ({kind.split('(', 1)[1].rstrip(')')})" if "(" in kind else "")
        if kind.startswith("URL"):
            out.ioc("url", value, context)
            host = urlsplit(value).hostname or ""
            if host:
                out.ioc("ip" if re.fullmatch(r"[\d.]+", host) else "domain", host, context)
            findings["ole.vba_network_ioc"].append(value)
        elif kind.startswith("IPv4"):
            out.ioc("ip", value, context)
            findings["ole.vba_network_ioc"].append(value)
        elif kind.startswith("E-mail"):
            out.ioc("email", value, context)
        elif kind.startswith("Executable"):
            out.ioc("filename", value, context)
            findings["ole.vba_executable_name"].append(value)
    for text in texts:
        for match in _WINDOWS_PATH.finditer(text):
            out.ioc("filepath", match.group(0).rstrip(" ."), "VBA macro")
        for match in _REGISTRY_KEY.finditer(text):
            out.ioc("registry", match.group(0).rstrip(" ."), "VBA macro")
    for finding_id, values in findings.items():
        if values:
            out.flag(finding_id, ", ".join(dict.fromkeys(values[:6])))


def _facts(
    out: Analysis,
    modules: Sequence[_Module],
    summary: MacroSummary,
    flags: str,
    categories: dict[str, list[str]],
    decoded: Sequence[dict[str, str]],
    results: Sequence[tuple[str, str, str]],
    xlm_sheets: Sequence[str],
    stomped: bool,
) -> None:
    coded = list(dict.fromkeys(m.name for m in modules if _body(m.code).strip()))
    if coded:
        out.facts["macros"] = f"{len(coded)} VBA module(s) with code: {', '.join(coded)} · mraptor {flags}"
    if xlm_sheets:
        out.facts["XLM macros"] = ", ".join(xlm_sheets)
    if summary.autoexec:
        out.facts["auto-exec"] = ", ".join(summary.autoexec)
    behaviour = _behaviour(summary, categories, results)
    if behaviour:
        out.facts["macro behaviour"] = behaviour
    if stomped:
        out.facts["VBA stomping"] = "p-code differs from the source: the p-code is what runs"
    if decoded:
        shown = "; ".join(d["decoded"][:120] for d in decoded[:4])
        out.facts["decoded strings"] = shown + (f" (+{len(decoded) - 4} more)" if len(decoded) > 4 else "")
    main = _main_module(modules, summary.autoexec)
    if main is not None:
        out.facts["macro source"] = _excerpt(main)


def _behaviour(
    summary: MacroSummary, categories: dict[str, list[str]], results: Sequence[tuple[str, str, str]]
) -> str:
    """What the macro would do if it ran, as one line: trigger -> actions."""
    steps = []
    if summary.autoexec:
        triggers = [_TRIGGER_WHEN.get(k.lower(), k) for k in summary.autoexec[:3]]
        steps.append("runs on " + " / ".join(triggers))
    urls = [value for tag, value, kind in results if tag == "IOC" and kind.startswith("URL")]
    if summary.downloads:
        steps.append("downloads " + (", ".join(urls[:2]) if urls else "from the Internet"))
    if summary.writes:
        steps.append("writes files")
    if "powershell" in categories:
        steps.append("runs PowerShell")
    if "execute" in categories:
        steps.append("starts programs (" + ", ".join(categories["execute"][:3]) + ")")
    if "registry" in categories:
        steps.append("touches the registry")
    if "injection" in categories:
        steps.append("runs code in memory (" + ", ".join(categories["injection"][:3]) + ")")
    if "obfuscation" in categories:
        steps.append("hides strings (" + ", ".join(categories["obfuscation"][:4]) + ")")
    return " → ".join(steps)


def _main_module(modules: Sequence[_Module], autoexec: Sequence[str]) -> _Module | None:
    """The module an analyst reads first: the one holding an auto-exec trigger, else the largest."""
    lowered = [k.lower() for k in autoexec]
    with_code = [m for m in modules if _body(m.code).strip()]
    for module in with_code:
        procedures = {p.lower() for p in _PROCEDURE.findall(module.code)}
        if procedures & set(lowered):
            return module
    return max(with_code, key=lambda m: len(m.code), default=None)


def _body(code: str) -> str:
    return "\n".join(line for line in code.splitlines() if not line.startswith("Attribute VB_"))


def _excerpt(module: _Module) -> str:
    lines = [line.rstrip() for line in _body(module.code).splitlines() if line.strip()]
    text = f"[{module.name}] " + " ⏎ ".join(lines)
    return text if len(text) <= EXCERPT_CHARS else text[: EXCERPT_CHARS - 1] + "…"
