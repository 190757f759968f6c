"""Helpers for the observability checks: hosts, the Prometheus and Alertmanager APIs (with and
without the admin login), and the deliveries the webhook sink received."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "_shared"))
from qbmolecule import ENV, INVENTORY, PROJECT, STATE, flat, playbook, recap, wait_for
from qbmolecule import root_host as host

__all__ = ["ENV", "INVENTORY", "PROJECT", "STATE", "flat", "host", "playbook", "recap", "wait_for"]

IP = {"obs-mon-1": "10.240.98.10", "obs-pg-1": "10.240.98.11", "obs-pg-2": "10.240.98.12"}
PROMETHEUS = f"http://{IP['obs-mon-1']}:9090"
ALERTMANAGER = f"http://{IP['obs-mon-1']}:9093"
SINK_LOG = "/var/lib/qb-sink/alerts.jsonl"


def secret(name: str) -> str:
    return (STATE / "secrets" / "monitoring" / name).read_text().strip()


def prom(path: str, **params):
    r = requests.get(PROMETHEUS + path, params=params, auth=("admin", secret("prometheus-admin")), timeout=10)
    r.raise_for_status()
    return r.json()["data"]


def am(path: str, **params):
    r = requests.get(ALERTMANAGER + path, params=params, auth=("admin", secret("alertmanager-admin")),
                     timeout=10)
    r.raise_for_status()
    return r.json()


def deliveries() -> list[dict]:
    """Every alert the sink received: at (unix time), receiver path, status, labels."""
    text = host("obs-mon-1").file(SINK_LOG).content_string if host("obs-mon-1").file(SINK_LOG).exists else ""
    out = []
    for line in text.splitlines():
        entry = json.loads(line)
        for alert in entry["body"]["alerts"]:
            out.append({"at": entry["at"], "path": entry["path"], "status": alert["status"],
                        "labels": alert["labels"]})
    return out


def delivered(alertname: str, since: float, status: str = "firing", path: str | None = None, **labels):
    return [d for d in deliveries()
            if d["at"] >= since and d["labels"].get("alertname") == alertname and d["status"] == status
            and (path is None or d["path"] == path)
            and all(d["labels"].get(k) == v for k, v in labels.items())]


def status_cli() -> tuple[int, dict]:
    """`quantbot-infra status --json` against this scenario's Prometheus."""
    import subprocess

    result = subprocess.run(["quantbot-infra", "status", "--prometheus", PROMETHEUS, "--password-file",
                             str(STATE / "secrets" / "monitoring" / "prometheus-admin"), "--json"],
                            capture_output=True, text=True, timeout=60)
    return result.returncode, json.loads(result.stdout)


def firing(alertname: str, **labels) -> list[dict]:
    return [a for a in prom("/api/v1/alerts")["alerts"]
            if a["labels"].get("alertname") == alertname and a["state"] == "firing"
            and all(a["labels"].get(k) == v for k, v in labels.items())]
