"""`quantbot-infra status`: the fleet at a glance from Prometheus' API — per host and job up or
down, the firing alerts with severity and summary, the targets that are down."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from . import paths
from .topology import Inventory

SEVERITY_ORDER = {"critical": 0, "warning": 1, "info": 2, "none": 3}


class StatusError(Exception):
    """Prometheus cannot be asked; the message says where and why."""


@dataclass
class FleetStatus:
    prometheus: str
    # host -> job -> up (True), down (False), or discovered but not scraped yet (None)
    hosts: dict[str, dict[str, bool | None]] = field(default_factory=dict)
    alerts: list[dict[str, Any]] = field(default_factory=list)

    @property
    def targets_up(self) -> int:
        return sum(up is True for jobs in self.hosts.values() for up in jobs.values())

    @property
    def targets_total(self) -> int:
        return sum(len(jobs) for jobs in self.hosts.values())

    @property
    def targets_down(self) -> list[str]:
        return sorted(f"{h}/{j}" for h, jobs in self.hosts.items() for j, up in jobs.items() if up is False)

    @property
    def targets_pending(self) -> list[str]:
        return sorted(f"{h}/{j}" for h, jobs in self.hosts.items() for j, up in jobs.items() if up is None)

    def to_dict(self) -> dict[str, Any]:
        return {"prometheus": self.prometheus, "targets_up": self.targets_up,
                "targets_total": self.targets_total, "targets_down": self.targets_down,
                "targets_pending": self.targets_pending,
                "hosts": self.hosts, "alerts": self.alerts}


def from_api(prometheus: str, up: list[dict], alerts: list[dict],
             targets: list[dict] | None = None) -> FleetStatus:
    """Build the status from the answers of /api/v1/query?query=up, /api/v1/alerts and (for the
    targets discovered but not scraped yet, which have no `up` sample) /api/v1/targets."""
    status = FleetStatus(prometheus)
    for sample in up:
        labels = sample["metric"]
        host = labels.get("host") or labels.get("instance", "?")
        status.hosts.setdefault(host, {})[labels.get("job", "?")] = float(sample["value"][1]) == 1
    for target in targets or ():
        labels = target.get("labels", {})
        if labels.get("host") and target.get("health") == "unknown":
            status.hosts.setdefault(labels["host"], {}).setdefault(labels.get("job", "?"), None)
    firing = []
    for alert in alerts:
        if alert.get("state") != "firing":
            continue
        labels = alert.get("labels", {})
        firing.append({"alertname": labels.get("alertname", "?"), "severity": labels.get("severity", ""),
                       "host": labels.get("host", ""), "service": labels.get("service", ""),
                       "summary": alert.get("annotations", {}).get("summary", ""),
                       "since": alert.get("activeAt", "")})
    status.alerts = sorted(firing, key=lambda a: (SEVERITY_ORDER.get(a["severity"], 9),
                                                   a["alertname"], a["host"]))
    status.hosts = dict(sorted(status.hosts.items()))
    return status


def query(prometheus: str, password: str, user: str = "admin", timeout: float = 10) -> FleetStatus:
    def get(path: str, **params) -> Any:
        try:
            r = requests.get(prometheus.rstrip("/") + path, params=params, auth=(user, password),
                             timeout=timeout)
        except requests.RequestException as exc:
            raise StatusError(f"Prometheus at {prometheus} does not answer: {exc}") from None
        if r.status_code == 401:
            raise StatusError(f"Prometheus at {prometheus} refused the admin login (401): "
                              "check the password file")
        if r.status_code != 200:
            raise StatusError(f"Prometheus at {prometheus} answered {r.status_code} to {path}")
        return r.json()["data"]

    # the project's targets (file_sd from inventory) carry a host label; nothing else counts
    return from_api(prometheus, get("/api/v1/query", query='up{host!=""}')["result"],
                    get("/api/v1/alerts")["alerts"], get("/api/v1/targets", state="active")["activeTargets"])


def prometheus_url(inv: Inventory, port: int = 9090) -> str:
    """The first monitoring host's private address (the CLI runs where that network is reached)."""
    hosts = [h for h in inv.hosts if "monitoring" in h.groups]
    if not hosts:
        raise StatusError(f"environment {inv.environment} has no host in group 'monitoring'")
    return f"http://{hosts[0].vars['qb_private_ip']}:{port}"


def password_file(env: str) -> Path:
    """QB_PROMETHEUS_PASSWORD_FILE, else the password generated into the environment's state."""
    given = os.environ.get("QB_PROMETHEUS_PASSWORD_FILE")
    path = Path(given) if given else paths.state_dir(env) / "secrets" / "monitoring" / "prometheus-admin"
    if not path.is_file():
        raise StatusError(f"{path}: no Prometheus admin password (converge the monitoring hosts first, "
                          "or set QB_PROMETHEUS_PASSWORD_FILE to a file holding it)")
    return path


def render(status: FleetStatus) -> str:
    lines = [f"prometheus {status.prometheus}: targets up {status.targets_up}/{status.targets_total}"]
    jobs = sorted({j for jobs in status.hosts.values() for j in jobs})
    word = {True: "up", False: "DOWN", None: "pending"}
    for host, by_job in status.hosts.items():
        cells = " ".join(f"{j}:{word[by_job[j]]}" for j in jobs if j in by_job)
        lines.append(f"  {host:<24} {cells}")
    if status.targets_down:
        lines.append("targets down: " + ", ".join(status.targets_down))
    if status.targets_pending:
        lines.append("not scraped yet: " + ", ".join(status.targets_pending))
    lines.append(f"firing alerts: {len(status.alerts)}")
    for a in status.alerts:
        lines.append(f"  {a['severity']:<9} {a['alertname']:<30} {a['host'] or '-':<20} {a['summary']}")
    return "\n".join(lines)
