"""How Windows runs a command line: what a cmd.exe or PowerShell invocation does, step by step.

Models the command text the way its interpreters read it, without running anything:

- cmd.exe: the text after /c, /k or /r; `&`, `&&`, `|`, `||` chains split into steps outside double
  quotes, carets removed, `set name=value` substituted into later %name% / !name! references,
  `for`/`if`/`else`/`call` wrappers and parentheses taken off; each step read for the files it
  writes (redirection, copy/move/xcopy/expand/robocopy/esentutl, certutil/bitsadmin, curl/wget),
  the documents it opens with their default application and the process it starts.
- PowerShell: the script after its own switches, -EncodedCommand and FromBase64String payloads
  decoded (UTF-16LE or UTF-8), statements read for writes (cmdlets, .NET write methods, $variable
  destinations) and documents opened.
- Nesting: cmd inside PowerShell inside cmd is unwrapped in turn, bounded in depth and in the
  number of pieces so that hostile input stays cheap.
- %VARIABLES% expanded to their default Windows values; per-user values stay symbolic.

Nothing here is specific to one file format. Today the lnk analyzer is its one user; a VBA Shell
string, a DDE command or a PDF /Launch action could go through `analyse_command` the same way (they
are reported as found, not yet unwrapped). Same-line `set` values are substituted into later %name%
references as the author meant them, although cmd itself expands %name% when it reads the line
(only `call` or !name! under /v:on see the new value): the steps show the intent.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from pathlib import PureWindowsPath
from typing import Any

from restytriage.identify import DOCUMENT_EXTENSIONS

# Default values of the variables Windows paths use (for process-creation events and for comparing
# paths); per-user values stay symbolic (the user is unknown).
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

_ENV_VAR = re.compile(r"%([A-Za-z_][\w()]*)%")
_ELSE = re.compile(r"(?i)\)\s*else\s*\(")
# `>file`, `2>>"log"`, and handle duplications (`2>&1`), which write no file but must not become a word
_REDIRECT = re.compile(r"(?<![\d&<>])\d?>>?\s*(&\d|\"[^\"]*\"|[^\s&|<>]+)")
_CMD_CALL = re.compile(
    r"(?i)(?:^|[\s\"'(&|,;=@])(?:[^\s\"'&|]{0,260}\\)?cmd(?:\.exe)?\"?\s+(?:/[a-bd-jl-qs-z](?::\w+)?\s*)*/[ckr]\s*(.*)",
    re.S,
)
_ENCODED = re.compile(r"(?i)(?:^|\s)[-/\u2013\u2014\u2015](e[a-z]*)\s+[\"']?([A-Za-z0-9+/]{16,}={0,2})")
_FROM_BASE64 = re.compile(r"(?i)frombase64string\(\s*[\"']([A-Za-z0-9+/=\s]{16,})[\"']")
DOWNLOAD_CRADLE = re.compile(
    r"(?i)\b(?:downloadstring|downloadfile|downloaddata|openread|net\.webclient|invoke-webrequest|invoke-restmethod"
    r"|iwr|irm|start-bitstransfer|msxml2\.(?:server)?xmlhttp|winhttp\.winhttprequest"
    r"|bitsadmin(?:\.exe)?\s[^&|\n]{0,300}?/(?:transfer|addfile)|certutil(?:\.exe)?\s[^&|\n]{0,300}?-urlcache"
    r"|curl(?:\.exe)?\s+\S|wget(?:\.exe)?\s+\S|certreq(?:\.exe)?\s[^&|\n]{0,300}?-post)"
)
REMOTE_EXECUTION = re.compile(
    r"(?i)\b(?:mshta|regsvr32|msiexec|rundll32|wscript|cscript|hh|pubprn)(?:\.exe)?\b[^&|\n]{0,300}?(?:https?://|\\\\[\w.-]+@)"
)
HIDDEN_POWERSHELL_WINDOW = re.compile(
    r"(?i)(?:^|\s)[-/]w(?:i(?:n(?:d(?:o(?:w(?:s(?:t(?:y(?:le?)?)?)?)?)?)?)?)?)?\s+(?:h(?:i(?:d(?:d(?:en?)?)?)?)?|1)\b"
)
HIDDEN_CMD_WINDOW = re.compile(
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


def expand_environment(text: str) -> str:
    """%VARIABLES% replaced by their default Windows values; unknown ones stay as written."""
    return _ENV_VAR.sub(lambda m: ENVIRONMENT_DEFAULTS.get(m.group(1).lower(), m.group(0)), text)


def program_name(token: str) -> str:
    """A command's program name: file name, lower-case, without quotes or .exe."""
    name = PureWindowsPath(token.strip().strip("\"'")).name.lower()
    return name[:-4] if name.endswith(".exe") else name


def extension_of(path: str) -> str:
    return PureWindowsPath(path.strip().strip("\"'")).suffix.lower().lstrip(".")


def analyse_command(path: str, arguments: str) -> CommandView:
    """The command line that starts `path` with `arguments`, unwrapped: steps, decoded scripts, writes, opens."""
    line = (f'"{path}"' if path else "") + (" " + arguments if arguments else "")
    view = CommandView(line=line.strip(), program=program_name(expand_environment(path)), arguments=arguments)
    view.texts.append(("command line", view.line))
    budget = [64]  # pieces of text at most: nested decoding must stay bounded on hostile input
    if view.program == "cmd":
        rest = after_cmd_switch(arguments)
        if rest is not None:
            _add_cmd_chain(view, rest, 0, budget)
    elif view.program in POWERSHELL:
        _add_powershell(view, _powershell_script(arguments), "PowerShell arguments", 0, budget)
    else:
        _unwrap(view, arguments, 0, budget)
    return view


def after_cmd_switch(arguments: str) -> str | None:
    """What cmd.exe runs: the text after /c, /k or /r (other switches may come first)."""
    match = re.match(r"(?is)\s*(?:/[a-bd-jl-qs-z](?::\w+)?\s*)*/[ckr]\s*(.*)", arguments)
    if match is None:
        return None
    rest = match.group(1).strip()
    if len(rest) >= 2 and rest[0] == '"' and rest[-1] == '"':
        rest = rest[1:-1]  # cmd strips the outer quotes around the whole command
    return rest


def _add_cmd_chain(view: CommandView, text: str, depth: int, budget: list[int]) -> None:
    for number, step in enumerate(substitute_variables(split_cmd(text)), 1):
        if budget[0] <= 0:
            return
        budget[0] -= 1
        step = unwrap_control(step)
        if not step:
            continue
        label = f"step {number}" if depth == 0 else f"nested step {number}"
        view.steps.append(step)
        view.texts.append((label, step))
        view.writes.extend(cmd_writes(step))
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


def split_cmd(text: str) -> list[str]:
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


def unwrap_control(step: str) -> str:
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


def substitute_variables(steps: list[str]) -> list[str]:
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


def raw_tokens(text: str, quotes: str = '"') -> list[str]:
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


def cmd_writes(step: str) -> list[Write]:
    writes = [
        Write(_unquote(m.group(1)), None, "redirection", step)
        for m in _REDIRECT.finditer(step)
        if _unquote(m.group(1)).lower() not in ("nul", "con", "&1", "&2", "")
    ]
    tokens = [_unquote(t) for t in raw_tokens(_REDIRECT.sub(" ", step))]
    if not tokens:
        return writes
    tool, args = program_name(tokens[0]), tokens[1:]
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
    raw = raw_tokens(step)
    if not raw:
        return []
    tool = program_name(raw[0])
    if tool == "start":
        index = _start_operand(raw)
        opened = _unquote(raw[index]) if index is not None else ""
        return [opened] if extension_of(opened) in DOCUMENT_EXTENSIONS else []
    if extension_of(raw[0]) in DOCUMENT_EXTENSIONS and tool not in CMD_BUILTINS:
        return [_unquote(raw[0])]
    args = [_unquote(t) for t in raw[1:]]
    if tool == "explorer":
        return [a for a in args[:1] if extension_of(a) in DOCUMENT_EXTENSIONS]
    if (
        tool == "rundll32"
        and args
        and args[0].lower().replace(" ", "")
        in ("url.dll,fileprotocolhandler", "shell32.dll,shellexec_rundll", "url.dll,openurl")
    ):
        return [a for a in args[1:2] if extension_of(a) in DOCUMENT_EXTENSIONS]
    return []


def _start_operand(raw: list[str]) -> int | None:
    """Index of what `start` starts in its raw tokens: after switches and the optional quoted window
    title, which cmd takes before or among the switches (`start /min "" doc.pdf`)."""
    index, titled = 1, False
    while index < len(raw):
        token = raw[index]
        if token.startswith("/"):
            index += 2 if token.lower() in ("/d", "/affinity", "/node") else 1
        elif token.startswith('"') and not titled:
            index, titled = index + 1, True  # the first quoted string is the window title
        else:
            return index
    return None


def _started_program(step: str) -> tuple[str, str] | None:
    """(program, arguments) when a step starts a new process; cmd built-ins run inside cmd itself."""
    raw = raw_tokens(step)
    if not raw:
        return None
    index = _start_operand(raw) if program_name(raw[0]) == "start" else 0
    if index is None or (index == 0 and (program_name(raw[0]) in CMD_BUILTINS or "=" in raw[0])):
        return None
    return _unquote(raw[index]), " ".join(raw[index + 1 :])


def _powershell_script(arguments: str) -> str:
    """The script in powershell.exe's arguments: what follows its own switches (or -Command)."""
    tokens = raw_tokens(arguments, "\"'")
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
                view.writes.extend(_resolve_variable(w, variables) for w in powershell_writes(statement))
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


def powershell_writes(statement: str) -> list[Write]:
    writes = [
        Write(_powershell_path(m.group(1)), None, "PowerShell", statement)
        for m in _PS_WRITE_METHODS.finditer(statement)
    ]
    tokens = [t.strip("\"'") for t in raw_tokens(statement, "\"'")]
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


def command_metadata(view: CommandView) -> dict[str, Any]:
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
