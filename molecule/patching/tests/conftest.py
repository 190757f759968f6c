"""Helpers for the scenario's checks: its hosts; the Prometheus and Alertmanager APIs (with and
without the admin login) and the deliveries the webhook sink received; the CLI run against the
scenario's inventory and state (QB_STATE_DIR), package versions, and the patch run's records."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "_shared"))
import requests
from qbmolecule import ENV, INVENTORY, PROJECT, STATE, playbook, wait_for
from qbmolecule import root_host as host
from qbmolecule import state_secrets as _state_secrets

__all__ = ["ENV", "INVENTORY", "PROJECT", "STATE", "host", "playbook", "wait_for"]

IP = {"pt-mon-1": "10.240.93.10", "pt-pg-1": "10.240.93.11", "pt-pg-2": "10.240.93.12",
      "pt-redis-1": "10.240.93.21", "pt-redis-2": "10.240.93.22", "pt-redis-3": "10.240.93.23",
      "pt-vpn-1": "10.240.93.31", "pt-vpn-2": "10.240.93.32", "pt-trading-1": "10.240.93.41",
      "pt-trading-2": "10.240.93.42"}
HOSTS = list(IP)
ENV_STATE = STATE / "molecule"
REPO = "/srv/qb-test-repo"
MONITOR = "pt-mon-1"
PROMETHEUS = f"http://{IP[MONITOR]}:9090"
ALERTMANAGER = f"http://{IP[MONITOR]}:9093"
SINK_LOG = "/var/lib/qb-sink/alerts.jsonl"


def cli(*args: str, timeout: int = 1500) -> subprocess.CompletedProcess:
    """quantbot-infra against the scenario: its inventory, its state (--env molecule)."""
    env = {**ENV, "QB_STATE_DIR": str(STATE)}
    command = [str(Path(sys.executable).parent / "quantbot-infra"), *args[:1], "--env", "molecule",
               "--inventory", INVENTORY, *args[1:]]
    out = subprocess.run(command, env=env, cwd=PROJECT, capture_output=True, text=True, timeout=timeout)
    print(f"$ quantbot-infra {' '.join(args)} -> rc {out.returncode}")
    return out


def cli_json(*args: str) -> tuple[int, dict]:
    out = cli(*args, "--json")
    try:
        return out.returncode, json.loads(out.stdout)
    except json.JSONDecodeError:
        raise AssertionError(f"no JSON (rc {out.returncode}): {out.stdout[-2000:]} {out.stderr[-2000:]}") from None


def versions(package: str = "qb-demo-service") -> dict[str, str]:
    return {name: host(name).run(f"dpkg-query -W -f '${{Version}}' {package}").stdout.strip() for name in HOSTS}


def offered(package: str = "qb-demo-service") -> str:
    """The newest version the repository offers."""
    names = host("pt-mon-1").check_output(f"ls {REPO}/pool").split()
    found = [n.split("_")[1] for n in names if n.startswith(f"{package}_")]
    return max(found, key=lambda v: tuple(int(x) for x in v.split(".")))


def installed() -> str:
    """The version every host runs (they move together between the tests)."""
    now = set(versions().values())
    assert len(now) == 1, versions()
    return now.pop()


def publish(*versions_: str) -> None:
    """The repository offers these versions (rebuilt and re-signed on the monitoring host)."""
    host("pt-mon-1").check_output(f"/usr/local/sbin/make-repo.sh {REPO} " + " ".join(map(shlex.quote, versions_)))


def secret(kind: str, name: str) -> str:
    return (ENV_STATE / "secrets" / kind / name).read_text().strip()


def records() -> dict[str, dict]:
    folder = ENV_STATE / "patch" / "run" / "hosts"
    return {p.stem: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))}


def audit() -> list[dict]:
    log = ENV_STATE / "audit.log"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def state_secrets() -> dict[str, str]:
    """Every secret the environment's state holds (passwords, private keys)."""
    return _state_secrets(minimum=8, root=ENV_STATE)


def prom(path: str, **params):
    r = requests.get(PROMETHEUS + path, params=params, auth=("admin", secret("monitoring", "prometheus-admin")),
                     timeout=10)
    r.raise_for_status()
    return r.json()["data"]


def am(path: str, **params):
    r = requests.get(ALERTMANAGER + path, params=params,
                     auth=("admin", secret("monitoring", "alertmanager-admin")), timeout=10)
    r.raise_for_status()
    return r.json()


def firing(alertname: str, **labels) -> list[dict]:
    return [a for a in prom("/api/v1/alerts")["alerts"]
            if a["labels"].get("alertname") == alertname and a["state"] == "firing"
            and all(a["labels"].get(k) == v for k, v in labels.items())]


def deliveries() -> list[dict]:
    """Every alert the sink received: at (unix time), receiver path, status, labels."""
    sink = host(MONITOR).file(SINK_LOG)
    out = []
    for line in (sink.content_string if sink.exists else "").splitlines():
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
    result = subprocess.run([str(Path(sys.executable).parent / "quantbot-infra"), "status", "--prometheus",
                             PROMETHEUS, "--password-file", str(ENV_STATE / "secrets" / "monitoring" / "prometheus-admin"),
                             "--json"], capture_output=True, text=True, timeout=60)
    return result.returncode, json.loads(result.stdout)


def pg_primary() -> str:
    for name in ("pt-pg-1", "pt-pg-2"):
        if host(name).run("su postgres -c \"psql -XAtc 'SELECT pg_is_in_recovery()'\"").stdout.strip() == "f":
            return name
    raise AssertionError("no running PostgreSQL primary")


def redis_primary() -> str:
    out = host("pt-redis-1").check_output(
        f"REDISCLI_AUTH={shlex.quote(secret('redis', 'sentinel-auth'))} redis-cli --no-auth-warning "
        f"-h {IP['pt-redis-1']} -p 26379 SENTINEL get-master-addr-by-name quantbot")
    return next(name for name, ip in IP.items() if ip == out.split()[0])
