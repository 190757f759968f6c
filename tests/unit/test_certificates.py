"""quantbot_infra.certificates: a host certificate is settled only when the pki role's crypto
modules would leave it as it is. Certificates are made here with the cryptography library, and
the read command runs with /bin/sh on this machine's files."""

from __future__ import annotations

import ipaddress
import subprocess
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from quantbot_infra import certificates

NOW = datetime(2026, 12, 1, tzinfo=UTC)
NAMES = ["DNS:pg-1", "IP:10.240.97.11", "IP:127.0.0.1", "DNS:10.240.97.11"]


def make_ca(name: str = "quantbot test CA"):
    key = ec.generate_private_key(ec.SECP384R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(1)
            .not_valid_before(NOW - timedelta(days=1)).not_valid_after(NOW + timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .sign(key, hashes.SHA256()))
    return key, cert


KEY_USAGE = x509.KeyUsage(digital_signature=True, key_agreement=True, content_commitment=False,
                          key_encipherment=False, data_encipherment=False, key_cert_sign=False,
                          crl_sign=False, encipher_only=False, decipher_only=False)


def make_host(ca, *, cn="pg-1", names=NAMES, days=365, curve=None, eku=None):
    ca_key, ca_cert = ca
    key = ec.generate_private_key(curve or ec.SECP256R1())
    sans = [x509.DNSName(n[4:]) if n.startswith("DNS:") else x509.IPAddress(ipaddress.ip_address(n[3:]))
            for n in names]
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
            .issuer_name(ca_cert.subject).public_key(key.public_key()).serial_number(7)
            .not_valid_before(NOW - timedelta(days=1)).not_valid_after(NOW + timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.ExtendedKeyUsage(eku or [ExtendedKeyUsageOID.SERVER_AUTH,
                                                         ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .add_extension(KEY_USAGE, critical=False)
            .sign(ca_key, hashes.SHA256()))
    return key, cert


def pem(obj) -> str:
    if isinstance(obj, x509.Certificate):
        return obj.public_bytes(serialization.Encoding.PEM).decode()
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    return obj.public_bytes(serialization.Encoding.PEM, spki).decode()


def output(key, cert) -> str:
    """What the read command prints: the certificate, then the key's public half."""
    return pem(cert) + pem(key.public_key())


def why(out: str, ca, *, names=NAMES, margin=30) -> str:
    return certificates.mismatch(out, pem(ca[1]), "pg-1", names, margin, now=NOW)


@pytest.fixture(scope="module")
def ca():
    return make_ca()


def test_a_certificate_as_the_role_issues_it_is_settled(ca):
    assert why(output(*make_host(ca)), ca) == ""
    # the names in another order, and the read's terminal line endings, change nothing
    assert why(output(*make_host(ca)).replace("\n", "\r\n"), ca, names=list(reversed(NAMES))) == ""


@pytest.mark.parametrize(("change", "reason"), [
    ({"cn": "pg-2"}, "subject CN=pg-2"),
    ({"names": NAMES[:3]}, "names"),
    ({"names": [*NAMES, "DNS:extra"]}, "names"),
    ({"days": 20}, "within the renewal margin"),
    ({"curve": ec.SECP384R1()}, "not an EC secp256r1 key"),
    ({"eku": [ExtendedKeyUsageOID.SERVER_AUTH]}, "extended key usage"),
])
def test_anything_the_role_would_change_is_not_settled(ca, change, reason):
    assert reason in why(output(*make_host(ca, **change)), ca)


def test_a_certificate_for_another_key_is_not_settled(ca):
    _, cert = make_host(ca)
    assert "not for the host's key" in why(output(ec.generate_private_key(ec.SECP256R1()), cert), ca)


def test_a_certificate_of_another_ca_is_not_settled(ca):
    # another CA of the same name: the issuer reads the same, the signature does not verify
    impostor = make_ca()
    assert "not signed by the CA's key" in why(output(*make_host(impostor)), ca)
    assert "another CA" in why(output(*make_host(make_ca("other CA"))), ca)


@pytest.mark.parametrize("out", [
    "", "cat: host.crt: No such file or directory\n",
    "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n",
])
def test_nothing_readable_is_not_settled(ca, out):
    assert why(out, ca) != ""


def test_the_read_command_prints_the_certificate_and_only_the_public_key(ca, tmp_path):
    key, cert = make_host(ca)
    (tmp_path / "host.crt").write_text(pem(cert))
    (tmp_path / "host.key").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                          serialization.PrivateFormat.PKCS8,
                                                          serialization.NoEncryption()))
    run = subprocess.run(["/bin/sh", "-c", certificates.read_command(str(tmp_path))],
                         capture_output=True, text=True, check=True)
    assert "PRIVATE" not in run.stdout
    assert why(run.stdout, ca) == ""
    (tmp_path / "host.crt").unlink()
    run = subprocess.run(["/bin/sh", "-c", certificates.read_command(str(tmp_path))],
                         capture_output=True, text=True, check=True)
    assert run.stdout == ""
