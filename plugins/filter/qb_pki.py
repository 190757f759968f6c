"""Filters of the pki role: thin shims over quantbot_infra.certificates."""

from __future__ import annotations

from quantbot_infra import certificates
from quantbot_infra.filters import call as _call


def qb_pki_read_command(pki_dir):
    """The shell command that prints a host's certificate and the public half of its key."""
    return _call(certificates.read_command, str(pki_dir))


def qb_certificate_mismatch(output, ca_pem, common_name, subject_alt_names, renew_margin_days):
    """Why the certificate read by ``qb_pki_read_command`` is not what the role would issue;
    "" when it is (key, names, usages, the CA's signature, time left)."""
    return _call(certificates.mismatch, str(output), str(ca_pem), str(common_name),
                 [str(n) for n in subject_alt_names], int(renew_margin_days))


class FilterModule:
    def filters(self):
        return {
            "qb_pki_read_command": qb_pki_read_command,
            "qb_certificate_mismatch": qb_certificate_mismatch,
        }
