"""Authenticode trust decisions on certificates made here: a chain counts as trusted only when it
reaches a root of the store and every certificate on the way may sign code."""

from __future__ import annotations

import datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from restytriage import authenticode

START = datetime.datetime(2022, 1, 1, tzinfo=datetime.UTC)


def _certificate(name: str, key, issuer_name: str, issuer_key, usages=None, ca=False) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_name)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(START)
        .not_valid_after(START + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if usages is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


@pytest.fixture
def chain(monkeypatch: pytest.MonkeyPatch):
    """A root the (patched) store trusts, an intermediate, and a way to issue leaves under it."""
    root_key, middle_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    root = _certificate("Test Root", root_key, "Test Root", root_key, ca=True)
    middle = _certificate("Test Code CA", middle_key, "Test Root", root_key, ca=True)
    monkeypatch.setattr(authenticode, "_microsoft_roots", lambda: {root.subject.rfc4514_string(): [root]})

    def leaf(usages):
        key = ec.generate_private_key(ec.SECP256R1())
        return _certificate("Test Publisher", key, "Test Code CA", middle_key, usages)

    return middle, leaf


def test_a_code_signing_chain_to_a_store_root_is_trusted(chain) -> None:
    middle, leaf = chain
    signer = leaf([ExtendedKeyUsageOID.CODE_SIGNING])
    assert authenticode._trusted_root(signer, {"middle": middle}) == "Test Root"
    assert authenticode._trusted_root(signer, {}) == ""  # the intermediate is not carried


def test_a_certificate_for_another_purpose_is_not_trusted_for_code(chain) -> None:
    middle, leaf = chain
    server = leaf([ExtendedKeyUsageOID.SERVER_AUTH])  # e.g. a free TLS certificate
    assert authenticode._trusted_root(server, {"middle": middle}) == ""
    assert authenticode._trusted_root(leaf(None), {"middle": middle}) == "Test Root"  # no EKU: any purpose
