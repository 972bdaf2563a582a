"""Go binaries (PE and ELF): what their build info, build ID, pclntab function names and strings say.

The formats are read by `restytriage.gobinary`; this analyzer turns them into facts and findings:

- the Go version, main module and main package, from the build info blob (or, before Go 1.13, the
  runtime's version string within the pclntab's version family);
- the pclntab's function names split into the main module's, third-party and standard-library code
  ("user functions", as GoReSym calls them): `main.fetchStage` says more than any string, so words
  in user function names that describe loader behaviour are findings, and so are garbled packages;
- URLs, hosts, IPs and user agents in Go's packed string literals, with known-benign hosts dropped.

An unpacked image (a UPX child, a carved PE) reaches this analyzer as its own node; it never unpacks.
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from restytriage.analysis import Analysis, Context, Item
from restytriage.carve import Buffer
from restytriage.gobinary import (
    BUILDINFO_MAGIC,
    BuildInfo,
    Pclntab,
    find_build_id,
    find_buildinfo,
    find_pclntab,
    go_strings,
    guess_version,
    parse_image,
    string_areas,
    string_boundaries,
)

NAME = "golang"
TYPES = frozenset({"pe", "elf"})
ORDER = 55  # after the PE analyzer, so its metadata is on the item

MAX_REPORTED_FUNCTIONS = 300
MAX_FACT_FUNCTIONS = 6
COMMAND_LINE_PACKAGE = "command-line-arguments"  # the main package of `go build file.go`: no module
MAX_IOCS = 200

# Top-level standard-library package path elements (plus the linker's generated prefixes). A package
# whose first element is not here (github.com/..., main, a GOPATH-era "mytool/util") is user code.
STD_TOP = frozenset((
    "archive", "bufio", "builtin", "bytes", "cmp", "compress", "container", "context", "crypto", "database",
    "debug", "embed", "encoding", "errors", "expvar", "flag", "fmt", "go", "hash", "html", "image", "index",
    "internal", "io", "iter", "log", "maps", "math", "mime", "net", "os", "path", "plugin", "reflect",
    "regexp", "runtime", "slices", "sort", "strconv", "strings", "structs", "sync", "syscall", "testing",
    "text", "time", "unicode", "unique", "unsafe", "vendor", "weak", "type", "gclinkname", "cmd",
))  # fmt: skip
_GENERATED = re.compile(r"^(?:go[:.]|type[:.]|_|x_cgo_|gclinkname)")  # "_": cgo, assembler and C helpers
_NOISE_FUNCTION = re.compile(
    r"(?:\.init(?:\.|$)|\.func\d+|\.gowrap\d+|^main\.main$|_cgoexp_|\.deferwrap\d+|glob\.)"
)
_CAMEL = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")

# Words in a user function's name that describe what loaders do. Each group is one finding. A group
# matches a strong word anywhere in the name (receiver type included), or a verb and an object
# together in the function's own name (fetch + stage). Words are camelCase/underscore parts; entries
# of 6+ letters also match inside run-together names (sideloadentry, scheduledtask).
BEHAVIOUR_WORDS: dict[str, dict[str, frozenset[str]]] = {
    "golang.loader_functions": {
        "strong": frozenset({"dropper", "stager", "downloader", "implant"}),
        "verbs": frozenset({"download", "fetch", "retrieve", "drop", "pull"}),
        "objects": frozenset({"stage", "stager", "payload", "shellcode", "implant", "beacon", "second"}),
    },
    "golang.injection_functions": {
        "strong": frozenset(
            {"inject", "injector", "injection", "shellcode", "hollow", "hollowing", "reflective"}
        ),
        "verbs": frozenset({"write", "alloc", "map", "queue", "run", "exec", "execute", "create"}),
        "objects": frozenset({"apc", "sc", "remotethread", "remoteprocess", "processmemory"}),
    },
    "golang.sideload_functions": {
        "strong": frozenset({"sideload", "sideloading", "proxydll", "dllhijack"}),
        "verbs": frozenset({"hijack", "proxy"}),
        "objects": frozenset({"dll", "dllmain", "export"}),
    },
    "golang.persistence_functions": {
        "strong": frozenset(
            {"persist", "persistence", "autorun", "autostart", "runkey", "schtask", "schtasks"}
        ),
        "verbs": frozenset({"install", "add", "create", "register", "set", "write"}),
        "objects": frozenset({"startup", "scheduledtask", "runkey", "autorun", "startupfolder", "winlogon"}),
    },
    "golang.evasion_functions": {
        "strong": frozenset({"antivm", "antidebug", "antisandbox", "unhook", "amsi", "bypassuac"}),
        "verbs": frozenset({"detect", "is", "check", "patch", "bypass", "disable", "evade", "kill"}),
        "objects": frozenset({"vm", "debugger", "sandbox", "amsi", "etw", "uac", "defender", "av", "edr"}),
    },
    "golang.config_decoding_functions": {
        "strong": frozenset(),
        "verbs": frozenset({"decode", "decrypt", "deobfuscate", "unxor", "xor", "unpack"}),
        "objects": frozenset({"config", "cfg", "c2", "payload", "stage", "strings", "settings"}),
    },
}

# Hosts that Go's standard library, its documentation and common dependencies name: never IOCs.
DOCUMENTATION_HOSTS = frozenset((
    "golang.org", "go.dev", "pkg.go.dev", "proxy.golang.org", "sum.golang.org", "golang.google.cn",
    "goo.gl", "google.com", "googleapis.com", "gstatic.com", "googlesource.com", "chromium.org", "w3.org",
    "ietf.org", "iana.org", "microsoft.com", "xmlsoap.org", "purl.org", "unicode.org", "openssl.org",
    "apple.com", "example.com", "example.org", "example.net", "localhost", "mozilla.org", "digicert.com",
    "letsencrypt.org", "verisign.com", "xml.org", "json.org", "python.org", "sourceware.org", "gnu.org",
    "swig.org",
))  # fmt: skip
# Code-hosting sites: module paths name them everywhere, so as bare names they are noise; in a URL
# they stay, since payloads are often hosted there.
CODE_HOSTS = frozenset((
    "github.com", "github.io", "githubusercontent.com", "gitlab.com", "bitbucket.org", "launchpad.net",
    "rsc.io", "gopkg.in", "go.googlesource.com", "chiselapp.com", "apache.org", "openstack.org", "sr.ht",
    "codeberg.org",
))  # fmt: skip
# TLDs accepted for bare host names (a URL may have any). Left out: TLDs that are also common words,
# code properties or file extensions (host, link, app, top, in, is, it, sh, so, py, md, rs, ws, ...).
BARE_TLDS = frozenset((
    "com", "net", "org", "info", "biz", "io", "co", "cc", "xyz", "icu", "buzz", "onion", "invalid", "su",
    "ru", "cn", "ua", "by", "kz", "de", "uk", "fr", "nl", "es", "br", "jp", "kr", "tw", "hk", "sg", "ir",
    "kp", "vn", "au", "ca", "eu", "ch", "se", "fi", "dk", "cz", "sk", "ro", "bg", "hu", "gr", "tr", "il",
    "ae", "sa", "pk", "bd", "lk", "np", "mx", "ar", "cl", "ve", "za", "ng", "ke", "eg", "tn", "tk", "ml",
    "cf", "gq",
))  # fmt: skip
CODE_MARKERS = ("function", "this.", "=>", "return ", "var ", "const ", "){", "};")
MAX_BARE_HOST_TEXT = 512  # bare names are taken from short strings only, not prose or embedded scripts
OID_PREFIXES = ("1.2.840.", "1.3.6.", "2.5.", "2.16.", "0.")
_URL = re.compile(r"(?:https?|ftp|wss?)://[A-Za-z0-9._~%!$&()*+,;=:@/?#\[\]-]{3,2000}")
_HOST = re.compile(
    r"(?<![A-Za-z0-9._/@*\]-])((?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.){1,8}[a-z]{2,24})(?![A-Za-z0-9_(/@-])"
)
_IPV4 = re.compile(
    r"(?<![\d.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?![\d.])"
)
_USER_AGENT = re.compile(r"Mozilla/\d\.\d \([^()]{4,200}\)[ -~]{0,300}")


# --------------------------------------------------------------------------- functions


def package_of(function: str) -> str:
    """The import path of a function symbol: github.com/a/b.(*T).M -> github.com/a/b."""
    base = function.split("[", 1)[0]  # generic instantiation arguments hold dots and slashes
    slash = base.rfind("/")
    dot = base.find(".", slash + 1)
    return base[:dot] if dot > 0 else ""


def is_user_package(package: str) -> bool:
    """Main-module or third-party code: not the standard library, not linker-generated."""
    if not package or _GENERATED.match(package):
        return False
    return package.split("/", 1)[0] not in STD_TOP


def summarise_functions(names: list[str], module_path: str) -> dict[str, Any]:
    """User functions (GoReSym's term), split into the main module's and its dependencies'."""
    user = [n for n in names if is_user_package(package_of(n))]
    packages = Counter(package_of(n) for n in user)
    own = [n for n in user if _in_main_module(package_of(n), module_path)]
    own_set = set(own)
    return {
        "user_function_count": len(user),
        "cgo_exports": [n.split("_", 3)[-1] for n in names if n.startswith("_cgoexp_")][
            :MAX_REPORTED_FUNCTIONS
        ],
        "main_module_functions": own[:MAX_REPORTED_FUNCTIONS],
        "dependency_functions": [n for n in user if n not in own_set][:MAX_REPORTED_FUNCTIONS],
        "user_packages": dict(packages.most_common(100)),
        "standard_function_count": len(names) - len(user),
    }


def _in_main_module(package: str, module_path: str) -> bool:
    if package == "main":
        return True
    return (
        bool(module_path)
        and module_path != COMMAND_LINE_PACKAGE
        and (package == module_path or package.startswith(module_path + "/"))
    )


def notable_functions(functions: list[str]) -> list[str]:
    """The functions an analyst reads first: named ones, not closures, inits or cgo glue."""
    return [n for n in functions if not _NOISE_FUNCTION.search(n)]


def behaviour_hits(functions: list[str]) -> dict[str, list[str]]:
    """Finding id -> the function names whose words describe that loader behaviour."""
    hits: dict[str, list[str]] = {}
    for function in notable_functions(functions):
        local = function[len(package_of(function)) + 1 :]
        own = local.rsplit(".", 1)[-1]  # the method's own name, without its receiver type
        all_words, all_joined = _words(local)
        own_words, own_joined = _words(own)
        for finding_id, groups in BEHAVIOUR_WORDS.items():
            if _has(groups["strong"], all_words, all_joined) or (
                own_words & groups["verbs"] and _has(groups["objects"], own_words, own_joined)
            ):
                hits.setdefault(finding_id, []).append(function)
    return hits


def _words(name: str) -> tuple[set[str], str]:
    return {w.lower() for w in _CAMEL.findall(name.replace("_", " "))}, re.sub(r"[^a-z0-9]", "", name.lower())


def _has(vocabulary: frozenset[str], words: set[str], joined: str) -> bool:
    return bool(words & vocabulary) or any(len(entry) >= 6 and entry in joined for entry in vocabulary)


def looks_garbled(user_packages: dict[str, int]) -> bool:
    """garble replaces package paths with short mixed-case hashes; real Go package names are lower case."""
    if len(user_packages) < 3:
        return False
    hashed = [
        p for p in user_packages if re.fullmatch(r"[A-Za-z0-9_]{5,14}", p) and not p.islower() and p != "main"
    ]
    return len(hashed) >= 3 and len(hashed) * 2 >= len(user_packages)


# --------------------------------------------------------------------------- IOCs


@dataclass
class Indicators:
    urls: list[str] = field(default_factory=list)
    hosts: list[str] = field(default_factory=list)
    ips: list[str] = field(default_factory=list)
    user_agents: list[str] = field(default_factory=list)
    ip_urls: list[str] = field(default_factory=list)
    dropped: int = 0  # known-benign hosts left out

    def as_metadata(self) -> dict[str, Any]:
        return {
            "urls": self.urls,
            "hosts": self.hosts,
            "ips": self.ips,
            "user_agents": self.user_agents,
            "benign_hosts_dropped": self.dropped,
        }


def indicators(strings: list[str], packages: frozenset[str] = frozenset()) -> Indicators:
    """URLs, hosts, IPs and browser user agents in `strings`.

    A bare dotted name counts as a host only in a short string that is not script code, when it is
    all lower case (Go's `pkg.Type` names and script identifiers are not), has a TLD from
    BARE_TLDS, and its first label is not a Go package of the binary (`packages`: last path elements).
    """
    found = Indicators()
    for text in strings:
        for raw in _URL.findall(text):
            url = raw.rstrip(".,;:)]")
            host = _url_host(url)
            if not host:
                continue
            if _listed(host, DOCUMENTATION_HOSTS):
                found.dropped += 1
                continue
            _add(found.urls, url)
            if _ip(host):
                _add(found.ip_urls, url)
                _add(found.ips, host)
            elif not _listed(host, CODE_HOSTS):
                _add(found.hosts, host.lower())
        without_urls = _URL.sub(" ", text)
        if len(text) <= MAX_BARE_HOST_TEXT and not any(marker in text for marker in CODE_MARKERS):
            for host in _HOST.findall(without_urls):
                labels = host.split(".")
                if (
                    not host.islower()
                    or labels[-1] not in BARE_TLDS
                    or len(labels[-2]) < 3
                    or labels[0] in STD_TOP
                    or labels[0] in packages
                ):
                    continue
                if _listed(host, DOCUMENTATION_HOSTS | CODE_HOSTS):
                    found.dropped += 1
                    continue
                _add(found.hosts, host)
        for address in _IPV4.findall(without_urls):
            if _ip(address):
                _add(found.ips, address)
        for agent in _USER_AGENT.findall(text):
            _add(found.user_agents, agent.strip())
    return found


def _add(values: list[str], value: str) -> None:
    if value not in values and len(values) < MAX_IOCS:
        values.append(value)


def _url_host(url: str) -> str:
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return ""
    if _ip(host):
        return host
    labels = host.split(".")
    if len(labels) < 2 or not labels[-1].isalpha() or not all(labels):
        return ""
    return host


def _listed(host: str, hosts: frozenset[str]) -> bool:
    """`host` or one of its parent domains is in `hosts`."""
    labels = host.lower().split(".")
    return any(".".join(labels[i:]) in hosts for i in range(len(labels) - 1))


def _ip(text: str) -> bool:
    """A routable-looking IPv4 address (not a version number or OID, not loopback/multicast)."""
    try:
        address = ipaddress.IPv4Address(text)
    except ValueError:
        return False
    if max(int(x) for x in text.split(".")) < 10 or text.startswith(OID_PREFIXES):
        return False  # versions (1.2.0.4) and X.509/SNMP OID prefixes (2.5.4.10), not hosts
    return not (
        address.is_loopback
        or address.is_multicast
        or address.is_link_local
        or address.is_reserved
        or text == "255.255.255.255"
    )


# --------------------------------------------------------------------------- the analyzer


def analyze(item: Item, ctx: Context) -> Analysis:
    with item.blob.mapped() as data:  # mapped, not read: Go binaries are large, padded ones larger
        return _analyze(item, ctx, data)


def _analyze(item: Item, ctx: Context, data: Buffer) -> Analysis:
    out = Analysis(NAME)
    image = parse_image(data)
    pclntab = find_pclntab(data, ctx)
    ctx.check_time()
    # find(), not `in`: on a mapped file `in` looks for a single byte
    buildinfo = find_buildinfo(data, image) if data.find(BUILDINFO_MAGIC) >= 0 else None
    build_id = find_build_id(data)
    if pclntab is None and buildinfo is None and not build_id:
        return out

    version = buildinfo.go_version if buildinfo else guess_version(data, pclntab.family if pclntab else None)
    module = buildinfo.main.get("path", "") if buildinfo else ""
    if module == COMMAND_LINE_PACKAGE:  # `go build file.go` before Go 1.18 wrote it as a module line
        module = ""
    main_package = buildinfo.path if buildinfo else ""
    meta: dict[str, Any] = {
        "go_version": version,
        "version_source": "buildinfo" if buildinfo else ("string" if version else ""),
        "module": module,
        "main_package": main_package,
        "build_id": build_id,
        "architecture": image.arch if image else "",
    }
    if buildinfo:
        meta["buildinfo"] = buildinfo.as_metadata()
    if pclntab:
        meta["pclntab"] = pclntab.as_metadata()
    out.metadata = meta
    if version:
        out.facts["Go version"] = version
    if module:
        out.facts["Go module"] = module
    elif main_package:
        out.facts["Go main package"] = main_package
    out.flag(
        "golang.go_binary",
        f"{version or 'Go (version unknown)'}"
        + (f", module {module}" if module else "")
        + (f", pclntab {pclntab.family}" if pclntab else ""),
    )

    summary = summarise_functions(pclntab.names, module) if pclntab else None
    if summary:
        meta["functions"] = summary
        own = summary["main_module_functions"] or summary["dependency_functions"]
        shown = notable_functions(own)
        if shown:
            more = len(shown) - MAX_FACT_FUNCTIONS
            out.facts["Go functions"] = ", ".join(shown[:MAX_FACT_FUNCTIONS]) + (
                f" (+{more} more)" if more > 0 else ""
            )
        for finding_id, functions in behaviour_hits(own).items():
            out.flag(finding_id, ", ".join(functions[:8]), details={"functions": functions[:50]})
        if looks_garbled(summary["user_packages"]):
            out.flag("golang.garbled", ", ".join(list(summary["user_packages"])[:8]))
    _flag_build(out, buildinfo, pclntab, summary)

    ctx.check_time()
    strings = go_strings(data, string_boundaries(data, image, ctx), string_areas(data, image, pclntab))
    ctx.check_time()
    packages = frozenset(package_of(n).rsplit("/", 1)[-1] for n in pclntab.names) if pclntab else frozenset()
    found = indicators(strings, packages)
    meta["indicators"] = found.as_metadata()
    _report_indicators(out, found)
    return out


def _flag_build(
    out: Analysis, buildinfo: BuildInfo | None, pclntab: Pclntab | None, summary: dict[str, Any] | None
) -> None:
    if buildinfo is None and pclntab is not None and pclntab.family in ("1.18-1.19", "1.20+"):
        out.flag("golang.buildinfo_removed", f"pclntab of Go {pclntab.family} but no build info blob")
    if buildinfo is None:
        return
    if buildinfo.problems:
        out.flag("golang.buildinfo_malformed", "; ".join(buildinfo.problems[:3]))
    mode = buildinfo.settings.get("-buildmode", "")
    if mode in ("c-shared", "c-archive"):
        exports = (summary or {}).get("cgo_exports", [])
        out.flag(
            "golang.c_shared",
            f"-buildmode={mode}" + (f", exports {', '.join(exports[:8])}" if exports else ""),
        )


def _report_indicators(out: Analysis, found: Indicators) -> None:
    for url in found.urls:
        out.ioc("url", url, "Go string")
    for host in found.hosts:
        out.ioc("domain", host, "Go string")
    for address in found.ips:
        out.ioc("ip", address, "Go string")
    for agent in found.user_agents:
        out.ioc("user_agent", agent, "Go string")
    if found.urls:
        out.flag("golang.embedded_urls", ", ".join(found.urls[:5]), details={"count": len(found.urls)})
    if found.ip_urls:
        out.flag("golang.ip_url", ", ".join(found.ip_urls[:5]))
    if found.user_agents:
        out.flag("golang.browser_user_agent", found.user_agents[0][:200])
