"""No secret of the monitoring tier (the Prometheus and Alertmanager logins, the exporters'
database passwords, the keys behind RELP's mutual TLS) reaches any host's journal, /var/log (the
collector's store of every host's shipped journal included) or a running process's command line
or environment: checked last, after every drill has run."""

from conftest import IP
from qbmolecule import host_leaks, state_secrets


def test_no_secret_in_journals_logs_or_processes():
    values = state_secrets(minimum=4)
    assert any(name.startswith("secrets/monitoring/") for name in values), sorted(values)
    found = []
    for name in IP:
        found += host_leaks(name, values)
    assert not found, found
