"""Whether a host's certificate already is what the pki role would issue.

The pki role reads a host's certificate and the public half of its key in one shell command
(``read_command``); ``settled`` then decides on the controller whether the key, the signing
request and the CA's signature would all come out unchanged. Only a certificate that passes
every check skips the crypto modules; anything unreadable, mismatched, signed by another CA or
near its end goes the full way (key, request, signature), which itself changes only what differs.
"""

from __future__ import annotations

import re
import shlex
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CERT_FILE, KEY_FILE = "host.crt", "host.key"
_PEM = re.compile(r"-----BEGIN (?P<kind>[A-Z ]+)-----\n.*?\n-----END (?P=kind)-----", re.S)
# what the role's signing request asks for (roles/pki/tasks/certificate.yml)
KEY_CURVE = "secp256r1"
EXTENDED_KEY_USAGE = {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}


def read_command(pki_dir: str) -> str:
    """Print the host certificate, then the public key of the host key; nothing when either
    file is missing. Never prints the private key."""
    d = shlex.quote(pki_dir)
    return (f"if [ -f {d}/{CERT_FILE} ] && [ -f {d}/{KEY_FILE} ]; then cat {d}/{CERT_FILE} && "
            f"openssl pkey -in {d}/{KEY_FILE} -pubout; fi; exit 0")


def _extension(cert: x509.Certificate, kind):
    try:
        return cert.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


def _san_names(cert: x509.Certificate) -> set[str]:
    ext = _extension(cert, x509.SubjectAlternativeName)
    if ext is None:
        return set()
    names = {f"DNS:{n}" for n in ext.get_values_for_type(x509.DNSName)}
    return names | {f"IP:{ip}" for ip in ext.get_values_for_type(x509.IPAddress)}


def mismatch(output: str, ca_pem: str, common_name: str, subject_alt_names: list[str],
             renew_margin_days: int, now: datetime | None = None) -> str:
    """Why the certificate in ``output`` (of ``read_command``) is not settled; "" when it is."""
    blocks = {m.group("kind"): m.group(0) for m in _PEM.finditer(output.replace("\r\n", "\n"))}
    if "CERTIFICATE" not in blocks or "PUBLIC KEY" not in blocks:
        return "no readable certificate and key"
    try:
        cert = x509.load_pem_x509_certificate(blocks["CERTIFICATE"].encode())
        key = serialization.load_pem_public_key(blocks["PUBLIC KEY"].encode())
        ca = x509.load_pem_x509_certificate(ca_pem.encode())
    except ValueError as exc:
        return f"unreadable: {exc}"
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != KEY_CURVE:
        return f"the key is not an EC {KEY_CURVE} key"
    if cert.public_key().public_bytes(*spki) != key.public_bytes(*spki):
        return "the certificate is not for the host's key"
    if cert.subject != x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]):
        return f"subject {cert.subject.rfc4514_string()}, wanted CN={common_name}"
    if _san_names(cert) != set(subject_alt_names):
        return f"names {sorted(_san_names(cert))}, wanted {sorted(set(subject_alt_names))}"
    eku = _extension(cert, x509.ExtendedKeyUsage)
    if eku is None or set(eku) != EXTENDED_KEY_USAGE:
        return "extended key usage differs"
    ku = _extension(cert, x509.KeyUsage)
    if ku is None or not (ku.digital_signature and ku.key_agreement):
        return "key usage differs"
    if cert.issuer != ca.subject:
        return "issued by another CA"
    try:
        cert.verify_directly_issued_by(ca)
    except (InvalidSignature, ValueError, TypeError) as exc:
        return f"not signed by the CA's key ({type(exc).__name__})"
    now = now or datetime.now(UTC)
    if cert.not_valid_after_utc <= now + timedelta(days=int(renew_margin_days)):
        return f"expires {cert.not_valid_after_utc:%Y-%m-%d}, within the renewal margin"
    return ""
