"""Cobalt Strike: beacon configurations, stager shellcode, and checksum8 stager URIs.

- Beacon configuration: the settings block (big-endian index/type/length/value records) every
  beacon carries, XOR-masked with one byte (0x69, 0x2e in 4.x; 0 when plain). Its SETTING_PUBKEY
  holds the rsaEncryption OID, whose masked form is found for *any* one-byte key in one pass over
  the data: XOR-ing each byte with the next cancels the key, so the OID's neighbour differences
  are searched for instead. dissect.cobaltstrike then recovers the block for that key and parses it
  (its own whole-file search is far too slow for triage: tens of seconds per megabyte). Raw
  "xorencoded" beacon payloads (a decoder stub, then nonce, size and the rolling-XOR payload) are
  decoded with the library first.
- Stagers: the x86/x64 reverse-http(s), reverse-tcp and DNS stagers Cobalt Strike shares with
  Metasploit resolve APIs by their ROR-13 hash (block_api): `push <hash>` (68 xx xx xx xx) on x86,
  `mov r10d, <hash>` (41 BA xx xx xx xx) on x64, e.g. 0x0726774C LoadLibraryA, 0xA779563A
  InternetOpenA. Several such hashes of networking APIs in one object is a stager; its trailing
  strings give the C2 host, the port it pushes, the user agent and the checksum8 URI.
- checksum8 URIs: a stager fetches `/XXXX` where the character sum mod 256 is 92 (x86 beacon) or
  93 (x64); URLs the Go analyzer recovered (it runs first) are checked for that shape.

C2 hosts and URLs become IOCs; the settings analysts pivot on (watermark, sleep time, jitter,
spawn-to, pipe name, user agent) are in the metadata and facts. YARA could add what needs
patterns over code: the block_api routine and stager prologues (FC E8 89 00 00 00, FC 48 83 E4 F0
E8 C8 00 00 00), sleep-mask stubs, and beacons whose configuration is encrypted or guard-railed.
"""

from __future__ import annotations

import io
import itertools
import re
import struct
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from restytriage.analysis import Analysis, Context, Item

NAME = "cobaltstrike"
TYPES = frozenset({"pe", "data"})
ORDER = 60  # after golang: reads the URLs it recovered from Go strings

MAX_BYTES = 64 << 20
XOR_CHUNK = 4 << 20  # bytes turned into one big integer at a time when looking for XOR keys
MAX_KEYS = 4  # distinct XOR keys tried for configuration blocks
MAX_OID_HITS = 32
MAX_DECODED = 16 << 20
MIN_STOCK_SETTINGS = 5
SPKI_OID_OFFSETS = (5, 6)  # OID offset inside SubjectPublicKeyInfo: 30 81 xx 30 0d | 30 82 xx xx 30 0d
DER_SEQUENCE_PREFIXES = (b"\x30\x81", b"\x30\x82")
MIN_PUBKEY_RECORD = 0xA0  # a 1024-bit key's SubjectPublicKeyInfo is 162 bytes
PUBKEY_SETTING = 7
TRANSPORT_SETTINGS = frozenset({1, 2, 3})  # SETTING_PROTOCOL, SETTING_PORT, SETTING_SLEEPTIME
ASN1_RSA_ENCRYPTION = bytes.fromhex("06092A864886F70D010101")
_OID_STEPS = bytes(a ^ b for a, b in itertools.pairwise(ASN1_RSA_ENCRYPTION))

# SETTING_PROTOCOL flags (dissect.cobaltstrike.beacon.BeaconProtocol: http 0, dns 1, smb 2, tcp 4,
# https 8, bind 16): the transport decides the finding, and with it the ATT&CK technique.
PROTOCOL_FINDINGS = (
    (1, "dns", "cobaltstrike.beacon_dns"),
    (2, "smb", "cobaltstrike.beacon_smb"),
    (4, "tcp", "cobaltstrike.beacon_tcp"),
    (8, "https", "cobaltstrike.beacon_http"),
    (16, "tcp", "cobaltstrike.beacon_tcp"),
)
FACT_SETTINGS = {  # metadata key -> BeaconConfig setting name, for the settings analysts pivot on
    "user_agent": "SETTING_USERAGENT",
    "submit_uri": "SETTING_SUBMITURI",
    "spawnto_x86": "SETTING_SPAWNTO_X86",
    "spawnto_x64": "SETTING_SPAWNTO_X64",
    "pipename": "SETTING_PIPENAME",
    "host_header": "SETTING_HOST_HEADER",
    "crypto_scheme": "SETTING_CRYPTO_SCHEME",
    "public_key_sha256": "SETTING_PUBKEY",
}

# APIs Cobalt Strike's (and Metasploit's) stagers resolve by hash, by module.
STAGER_APIS: dict[str, tuple[str, ...]] = {
    "kernel32.dll": ("LoadLibraryA", "VirtualAlloc", "ExitProcess", "GetVersion", "ExitThread", "Sleep"),
    "wininet.dll": (
        "InternetOpenA", "InternetConnectA", "HttpOpenRequestA", "HttpSendRequestA", "InternetReadFile",
        "InternetSetOptionA", "HttpAddRequestHeadersA", "InternetErrorDlg",
    ),
    "ws2_32.dll": ("WSAStartup", "WSASocketA", "connect", "recv", "bind", "listen", "accept", "closesocket"),
    "dnsapi.dll": ("DnsQuery_A",),
}  # fmt: skip
NETWORK_MODULES = {"wininet.dll": "http", "ws2_32.dll": "tcp", "dnsapi.dll": "dns"}
STAGER_FINDINGS = {
    "http": "cobaltstrike.stager_http",
    "tcp": "cobaltstrike.stager_tcp",
    "dns": "cobaltstrike.stager_dns",
}
MIN_STAGER_APIS = 3
MIN_NETWORK_APIS = 2
PORT_WINDOW = 24  # bytes before the InternetConnectA/connect hash where the port is pushed
STAGER_TAIL = 4096  # how far past the last hash operand the stager's strings are looked for
FILE_SUFFIXES = (".dll", ".exe", ".sys", ".drv", ".ocx", ".cpl")  # module names, not hosts
_STAGER_URI = re.compile(r"^/[A-Za-z0-9]{4}$")
_CSTRING = re.compile(rb"[\x20-\x7e\r\n]{4,}(?=\x00)")
_HOSTNAME = re.compile(r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}$")
_IPV4 = re.compile(r"^(?:\d{1,3}\.){3}\d{1,3}$")


# --------------------------------------------------------------------------- ROR-13 API hashes


def ror13_hash(module: str, function: str) -> int:
    """block_api's hash: ROR-13 sum over the upper-cased UTF-16LE module name (with its NUL), plus the
    same over the ASCII function name (with its NUL)."""

    def ror13_sum(data: bytes) -> int:
        value = 0
        for byte in data:
            value = (((value >> 13) | (value << 19)) + byte) & 0xFFFFFFFF
        return value

    return (
        ror13_sum((module.upper() + "\0").encode("utf-16-le")) + ror13_sum((function + "\0").encode())
    ) & 0xFFFFFFFF


@cache
def stager_hashes() -> dict[int, tuple[str, str]]:
    """hash -> (module, function) for every API in STAGER_APIS."""
    return {ror13_hash(m, f): (m, f) for m, functions in STAGER_APIS.items() for f in functions}


# --------------------------------------------------------------------------- stagers


@dataclass
class Stager:
    arch: str
    transport: str
    apis: list[str]
    host: str = ""
    port: int | None = None
    uri: str = ""
    user_agent: str = ""

    @property
    def url(self) -> str:
        if self.transport != "http" or not self.host:
            return ""
        scheme = "https" if self.port == 443 else "http"
        port = f":{self.port}" if self.port and self.port not in (80, 443) else ""
        return f"{scheme}://{self.host}{port}{self.uri or '/'}"

    def as_metadata(self) -> dict[str, Any]:
        return {
            "arch": self.arch,
            "transport": self.transport,
            "apis": self.apis,
            "host": self.host,
            "port": self.port,
            "uri": self.uri,
            "uri_checksum8": checksum8_kind(self.uri) if self.uri else "",
            "user_agent": self.user_agent,
            "url": self.url,
        }


@cache
def _hash_operands() -> re.Pattern[bytes]:
    """push imm32 (x86) or mov r10d, imm32 (x64) of any stager API hash: one pass over the data."""
    values = b"|".join(re.escape(struct.pack("<I", value)) for value in stager_hashes())
    return re.compile(rb"(\x68|\x41\xba)(" + values + rb")")


def find_stager(data: bytes, ctx: Context | None = None) -> Stager | None:
    """API hashes pushed the way block_api stagers push them, and the strings that follow the code."""
    uses: dict[str, dict[str, int]] = {"x86": {}, "x64": {}}  # arch -> "module!function" -> first offset
    for count, match in enumerate(_hash_operands().finditer(data)):
        if ctx is not None and count % 10_000 == 9_999:
            ctx.check_time()
        module, function = stager_hashes()[struct.unpack("<I", match.group(2))[0]]
        uses["x86" if match.group(1) == b"\x68" else "x64"].setdefault(f"{module}!{function}", match.start())
    for arch, found in uses.items():
        network = [api for api in found if api.split("!")[0] in NETWORK_MODULES]
        if len(found) < MIN_STAGER_APIS or len(network) < MIN_NETWORK_APIS:
            continue
        transports = [NETWORK_MODULES[api.split("!")[0]] for api in network]
        stager = Stager(arch, max(set(transports), key=transports.count), sorted(found, key=found.get))
        connect = found.get("wininet.dll!InternetConnectA", found.get("ws2_32.dll!connect"))
        if connect is not None:
            stager.port = _pushed_port(data[max(0, connect - PORT_WINDOW) : connect], arch)
        tail = max(found.values())  # the strings follow the stager's code
        stager.uri, stager.user_agent, stager.host = stager_strings(data[tail : tail + STAGER_TAIL])
        return stager
    return None


def _pushed_port(code: bytes, arch: str) -> int | None:
    """The last small immediate pushed (x86 68 imm32) or moved into r8d (x64 41 B8 imm32) before the connect."""
    pattern = rb"\x68(..)\x00\x00" if arch == "x86" else rb"\x41\xb8(..)\x00\x00"
    ports = [struct.unpack("<H", m.group(1))[0] for m in re.finditer(pattern, code, re.DOTALL)]
    ports = [p for p in ports if p]
    return ports[-1] if ports else None


def stager_strings(data: bytes) -> tuple[str, str, str]:
    """(checksum8 URI, user agent, host) among the NUL-terminated strings a stager carries after its
    code; the host comes last, so the last host-like string wins."""
    uri = agent = host = ""
    for raw in _CSTRING.findall(data):
        text = raw.decode("ascii").strip()
        if text.lower().startswith("user-agent:"):
            agent = text.split(":", 1)[1].strip()
        elif _STAGER_URI.match(text) and checksum8_kind(text):
            uri = text
        elif (_HOSTNAME.match(text) and not text.lower().endswith(FILE_SUFFIXES)) or (
            _IPV4.match(text) and all(int(x) < 256 for x in text.split("."))
        ):
            host = text
    return uri, agent, host


def checksum8_kind(uri: str) -> str:
    """ "x86"/"x64" when `uri` is a /XXXX path whose checksum8 requests that beacon, else ""."""
    if not _STAGER_URI.match(uri):
        return ""
    from dissect.cobaltstrike.utils import is_stager_x64, is_stager_x86

    if is_stager_x86(uri):
        return "x86"
    return "x64" if is_stager_x64(uri) else ""


# --------------------------------------------------------------------------- beacon configuration


def xor_key_candidates(data: bytes) -> list[int]:
    """One-byte keys under which the rsaEncryption OID appears inside a settings record (the public
    key, SETTING_PUBKEY), found for all keys in one pass over the data."""
    keys: list[int] = []
    hits = 0
    overlap = len(ASN1_RSA_ENCRYPTION)
    # In chunks: the big-integer XOR below costs several copies of what it is given.
    for start in range(0, max(0, len(data) - overlap + 1), XOR_CHUNK):
        piece = data[start : start + XOR_CHUNK + overlap]
        # steps[i] = piece[i] ^ piece[i + 1]: any one-byte XOR key cancels out.
        steps = (int.from_bytes(piece, "big") ^ int.from_bytes(piece[1:] + b"\x00", "big")).to_bytes(
            len(piece), "big"
        )
        at = steps.find(_OID_STEPS)
        while 0 <= at < XOR_CHUNK and hits < MAX_OID_HITS and len(keys) < MAX_KEYS:
            key = data[start + at] ^ ASN1_RSA_ENCRYPTION[0]
            if key not in keys and _in_pubkey_record(data, start + at, key):
                keys.append(key)
            hits += 1
            at = steps.find(_OID_STEPS, at + 1)
    return keys


def _in_pubkey_record(data: bytes, oid_at: int, key: int) -> bool:
    """Whether the OID opens a SubjectPublicKeyInfo that is the value of a settings record: small
    index and type, a length that holds the key. The same OID in certificates (Authenticode, TLS)
    follows DER, not such a header; this keeps them from the slower library search."""
    for spki_to_oid in SPKI_OID_OFFSETS:
        record = oid_at - spki_to_oid - 6
        if record < 0:
            continue
        header = bytes(b ^ key for b in data[record : record + 8])
        index, kind, length = struct.unpack(">HHH", header[:6])
        if (
            header[6:8] in DER_SEQUENCE_PREFIXES
            and 0 < index < 256
            and kind < 256
            and MIN_PUBKEY_RECORD <= length <= 1024
        ):
            return True
    return False


@dataclass
class Beacon:
    source: str  # "file" or "xorencoded payload"
    xor_key: int
    config: Any  # dissect.cobaltstrike.beacon.BeaconConfig
    modifications: list[str] = field(default_factory=list)  # the library's normalizer tags
    problems: list[str] = field(default_factory=list)  # what could not be decoded


def find_beacon(data: bytes, ctx: Context, allow_xorencoded: bool) -> Beacon | None:
    beacon = _beacon_in(data, "file", ctx)
    if beacon is None and allow_xorencoded:
        decoded = _xorencoded_payload(data)
        if decoded:
            beacon = _beacon_in(decoded, "xorencoded payload", ctx)
    return beacon


def _beacon_in(data: bytes, source: str, ctx: Context) -> Beacon | None:
    for key in xor_key_candidates(data):
        ctx.check_time()
        from dissect.cobaltstrike.beacon import BeaconConfig, find_beacon_config_bytes
        from dissect.cobaltstrike.normalize import DEFAULT_NORMALIZERS, normalize_config_block

        for block in find_beacon_config_bytes(io.BytesIO(data), bytes([key])):
            beacon = Beacon(source, key, None)
            try:
                block, modifications = normalize_config_block(block, normalizers=DEFAULT_NORMALIZERS)
                beacon.modifications = list(modifications.tags) if modifications else []
            except Exception as err:  # the library's own code on hostile bytes: parse the block as found
                beacon.problems.append(f"normalizing failed: {type(err).__name__}: {err}"[:200])
            try:
                beacon.config = BeaconConfig(block.data)
            except Exception:  # records that do not parse at all: not a beacon, try the next candidate
                continue
            if _plausible(beacon.config):
                return beacon
    return None


def _plausible(config: Any) -> bool:
    """A beacon's block, not DER or other length-prefixed data that happens to walk as records: enough
    stock settings with their stock types, among them the public key and a transport setting."""
    from dissect.cobaltstrike.beacon import STOCK_TYPE

    stock = {int(s.index) for s in config.settings_tuple if s.type in STOCK_TYPE.get(s.index, ())}
    return len(stock) >= MIN_STOCK_SETTINGS and PUBKEY_SETTING in stock and bool(stock & TRANSPORT_SETTINGS)


def _xorencoded_payload(data: bytes) -> bytes:
    """The payload of a raw xorencoded beacon (decoder stub, nonce, size, rolling-XOR data)."""
    from dissect.cobaltstrike.xordecode import XorEncodedFile

    try:
        payload = XorEncodedFile.from_file(io.BytesIO(data))
    except ValueError:  # no nonce/size pair that accounts for the rest of the data
        return b""
    return payload.read(MAX_DECODED)


def describe_beacon(beacon: Beacon) -> dict[str, Any]:
    """The settings analysts pivot on, plus every setting; raw values where pretty-printing fails."""
    config = beacon.config
    raw = config.raw_settings
    try:
        settings = dict(config.settings)
        killdate = config.killdate
    except Exception as err:  # a damaged transform or injection program: the raw values stay readable
        beacon.problems.append(f"settings not fully decodable: {type(err).__name__}: {err}"[:200])
        settings, killdate = dict(raw), None
    flags = raw.get("SETTING_PROTOCOL")
    transport, finding_id = "http", "cobaltstrike.beacon_http"
    for bit, name, finding in PROTOCOL_FINDINGS:
        if isinstance(flags, int) and flags & bit:
            transport, finding_id = name, finding
            break
    meta: dict[str, Any] = {
        "source": beacon.source,
        "xor_key": f"{beacon.xor_key:#04x}",
        "version": str(config.version),
        "protocol": transport if isinstance(flags, int) else None,
        "finding": finding_id,
        "port": _plain(raw.get("SETTING_PORT")),
        "domains": config.domains,
        "uris": config.uris,
        "sleeptime_ms": _plain(raw.get("SETTING_SLEEPTIME")),
        "jitter_percent": _plain(raw.get("SETTING_JITTER")),
        "watermark": _plain(raw.get("SETTING_WATERMARK")),
        "killdate": killdate,
        **{key: _plain(settings[name]) for key, name in FACT_SETTINGS.items() if name in settings},
        "settings": {str(name): _plain(value) for name, value in settings.items()},
    }
    if beacon.modifications:
        meta["modifications"] = beacon.modifications
    if beacon.problems:
        meta["problems"] = beacon.problems
    return meta


def _plain(value: Any) -> Any:
    """JSON-able form of a pretty-printed setting (bytes, transform-step tuples, cstruct values)."""
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def beacon_urls(meta: dict[str, Any], config: Any) -> list[str]:
    """http(s) URLs the beacon calls: its domain/URI pairs with the configured scheme and port."""
    protocol = meta["protocol"]
    if protocol not in ("http", "https"):
        return []
    port = meta["port"]
    suffix = f":{port}" if port and port != {"http": 80, "https": 443}[protocol] else ""
    return [f"{protocol}://{domain}{suffix}{uri}" for domain, uri in config.domain_uri_pairs if domain]


# --------------------------------------------------------------------------- the analyzer


def analyze(item: Item, ctx: Context) -> Analysis:
    out = Analysis(NAME)
    data = item.blob.read(MAX_BYTES)
    beacon = find_beacon(data, ctx, allow_xorencoded=item.type == "data")
    ctx.check_time()
    stager = find_stager(data, ctx)
    if beacon is not None:
        _report_beacon(out, beacon)
    if stager is not None:
        _report_stager(out, stager)
    _report_stager_uris(out, item, data, stager)
    return out


def _report_beacon(out: Analysis, beacon: Beacon) -> None:
    meta = describe_beacon(beacon)
    finding_id = meta.pop("finding")
    out.metadata["beacon"] = meta
    protocol = meta["protocol"] or "unknown"
    urls = beacon_urls(meta, beacon.config)
    c2 = ", ".join(urls or meta["domains"]) or "no C2 host (peer-to-peer beacon)"
    out.flag(
        finding_id,
        f"{meta['version']}; {protocol} C2 {c2}; watermark {meta['watermark']}",
        details={k: meta.get(k) for k in ("domains", "port", "watermark", "sleeptime_ms", "jitter_percent")},
    )
    if beacon.modifications:
        out.flag("cobaltstrike.beacon_modified", ", ".join(beacon.modifications))
    out.facts["Cobalt Strike C2"] = c2
    out.facts["Beacon"] = (
        f"{protocol}, port {meta['port']}, sleep {meta['sleeptime_ms']} ms, jitter {meta['jitter_percent']}%, "
        f"watermark {meta['watermark']}"
    )
    for url in urls:
        out.ioc("url", url, "Cobalt Strike beacon C2")
    for domain in meta["domains"]:
        out.ioc("ip" if _IPV4.match(domain) else "domain", domain, "Cobalt Strike beacon C2")
    if meta.get("host_header"):
        out.ioc("domain", str(meta["host_header"]).removeprefix("Host:").strip(), "Cobalt Strike Host header")
    if meta.get("user_agent"):
        out.ioc("user_agent", meta["user_agent"], "Cobalt Strike beacon")
    if meta.get("pipename"):
        out.ioc("filepath", meta["pipename"], "Cobalt Strike named pipe")
    for key in ("spawnto_x86", "spawnto_x64"):
        if meta.get(key):
            out.ioc("filepath", meta[key], f"Cobalt Strike {key.replace('_', ' ')}")


def _report_stager(out: Analysis, stager: Stager) -> None:
    meta = stager.as_metadata()
    out.metadata["stager"] = meta
    target = stager.url or (f"{stager.host}:{stager.port}" if stager.host else "")
    out.flag(
        STAGER_FINDINGS[stager.transport],
        f"{stager.arch} {stager.transport} stager resolving {len(stager.apis)} APIs by ROR-13 hash"
        + (f", C2 {target}" if target else ""),
        details={"apis": stager.apis},
    )
    if target:
        out.facts["Stager C2"] = target
    if stager.url:
        out.ioc("url", stager.url, "Cobalt Strike stager")
    if stager.host:
        out.ioc("ip" if _IPV4.match(stager.host) else "domain", stager.host, "Cobalt Strike stager")
    if stager.user_agent:
        out.ioc("user_agent", stager.user_agent, "Cobalt Strike stager")


def _report_stager_uris(out: Analysis, item: Item, data: bytes, stager: Stager | None) -> None:
    """checksum8 stager URIs among the URLs found in this object (Go strings, the stager's own), or in
    a raw blob's strings beside a User-Agent header."""
    urls = list(item.metadata.get("golang", {}).get("indicators", {}).get("urls", []))
    if stager is not None and stager.url:
        urls.append(stager.url)
    hits: list[str] = []
    for url in urls:
        path = url.split("://", 1)[-1].partition("/")[2].split("?", 1)[0]
        kind = checksum8_kind("/" + path)
        if kind:
            hits.append(f"{url} ({kind} beacon)")
    if stager is None and item.type == "data":
        # A stager whose API hashing is not the stock block_api still carries its request strings.
        uri, agent, host = stager_strings(data)
        if uri and agent:
            hits.append(f"{host}{uri} ({checksum8_kind(uri)} beacon, beside User-Agent: {agent})")
    if hits:
        out.metadata["stager_uris"] = hits
        out.flag("cobaltstrike.stager_uri", ", ".join(hits[:5]))
