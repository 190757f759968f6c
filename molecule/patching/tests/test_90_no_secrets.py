"""No secret of the environment (the monitoring logins, the database and Redis passwords, the
WireGuard and TLS keys) reaches any host's journal, /var/log (the collector's store of every
host's shipped journal included) or a running process's command line or environment: checked
last, after every drill, patch run and drift report has run."""

from conftest import IP, state_secrets
from qbmolecule import host_leaks


def test_no_secret_in_journals_logs_or_processes():
    values = state_secrets()
    for tier in ("monitoring", "postgresql", "redis"):
        assert any(name.startswith(f"secrets/{tier}/") for name in values), sorted(values)
    found = []
    for name in IP:
        found += host_leaks(name, values)
    assert not found, found
