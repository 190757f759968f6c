"""Helpers for the Alertmanager cluster checks: each member's API (admin login) and what the
webhook sinks on the members received."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "_shared"))
from qbmolecule import STATE
from qbmolecule import root_host as host
from qbmolecule import wait_for as _wait_for

IP = {"amc-mon-1": "10.240.95.11", "amc-mon-2": "10.240.95.12"}
MEMBERS = tuple(IP)
SINK_LOG = "/var/lib/qb-sink/alerts.jsonl"


def password() -> str:
    return (STATE / "secrets" / "monitoring" / "alertmanager-admin").read_text().strip()


def api(member: str, method: str, path: str, **kwargs):
    r = requests.request(method, f"http://{IP[member]}:9093/api/v2{path}", auth=("admin", password()),
                         timeout=10, **kwargs)
    r.raise_for_status()
    return r.json() if r.content else None


def post_alert(member: str, alertname: str) -> None:
    """What a Prometheus does: the firing alert, posted to a member."""
    alert = {"labels": {"alertname": alertname, "severity": "critical", "service": "host", "host": "amc-drill"},
             "annotations": {"summary": f"{alertname} (cluster drill)"}}
    api(member, "POST", "/alerts", json=[alert])


def deliveries(alertname: str) -> list[tuple[str, float]]:
    """(member whose sink got it, arrival time) for each firing notification of `alertname`."""
    out = []
    for member in MEMBERS:
        log = host(member).file(SINK_LOG)
        for line in (log.content_string if log.exists else "").splitlines():
            entry = json.loads(line)
            if any(a["labels"].get("alertname") == alertname and a["status"] == "firing"
                   for a in entry["body"]["alerts"]):
                out.append((member, entry["at"]))
    return sorted(out, key=lambda d: d[1])


def peers(member: str) -> list[str]:
    status = api(member, "GET", "/status")["cluster"]
    return sorted(p["address"] for p in status.get("peers") or []) if status["status"] == "ready" else []


def wait_for(what: str, check, timeout: float = 90, every: float = 1.0):
    """qbmolecule's wait_for, with an API that does not answer yet (a member starting) or a
    failed command counted as "not yet"."""
    return _wait_for(what, check, timeout, every,
                     retry_on=(requests.RequestException, subprocess.CalledProcessError, AssertionError))
