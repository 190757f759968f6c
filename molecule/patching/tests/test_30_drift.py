"""Drift against what site.yml would do: a configuration file changed by hand on one host and a
stopped service on another are reported with host, role, task and diff (no password in the
report); accepted drift exits 0; the drift alert fires and resolves."""

import json

import requests
from conftest import ENV_STATE, IP, STATE, cli, host, state_secrets, wait_for

PROMETHEUS = f"http://{IP['pt-mon-1']}:9090"
LIMIT = "pt-pg-1,pt-redis-2"


def drift(*args: str) -> tuple[int, dict]:
    out = cli("drift", "--limit", LIMIT, "--json", *args, timeout=900)
    assert out.stdout.strip(), out.stderr[-2000:]
    return out.returncode, json.loads(out.stdout)


def firing(alertname: str) -> set[str]:
    password = (ENV_STATE / "secrets" / "monitoring" / "prometheus-admin").read_text().strip()
    r = requests.get(f"{PROMETHEUS}/api/v1/alerts", auth=("admin", password), timeout=10)
    r.raise_for_status()
    return {a["labels"]["host"] for a in r.json()["data"]["alerts"]
            if a["labels"]["alertname"] == alertname and a["state"] == "firing"}


def test_a_converged_host_has_no_drift():
    rc, report = drift()
    assert rc == 0, report["entries"]
    assert set(report["hosts"]) == set(LIMIT.split(","))


def test_a_hand_edit_and_a_stopped_service_are_reported_without_secrets():
    host("pt-pg-1").check_output(
        "sed -i 's/^max_client_conn = .*/max_client_conn = 4242/' /etc/pgbouncer/pgbouncer.ini")
    host("pt-redis-2").check_output("systemctl stop prometheus-redis-exporter")
    rc, report = drift()
    assert rc == 2, report
    changed = {(e["host"], e["role"], e["task"]): e["detail"] for e in report["entries"] if e["state"] == "changed"}
    pool = next(v for (h, r, t), v in changed.items() if h == "pt-pg-1" and r == "postgresql" and "pgBouncer" in t)
    assert "-max_client_conn = 4242" in pool and "+max_client_conn = " in pool, pool
    exporter = next(v for (h, r, t), v in changed.items() if h == "pt-redis-2" and r == "redis" and "exporter" in t)
    assert "prometheus-redis-exporter" in exporter
    text = json.dumps(report)
    leaked = [name for name, value in state_secrets().items() if value in text]
    assert not leaked, leaked
    wait_for("ConfigurationDrift firing for both hosts",
             lambda: firing("ConfigurationDrift") >= {"pt-pg-1", "pt-redis-2"}, timeout=90, every=3)


def test_accepted_drift_exits_zero_and_the_alert_resolves():
    accepted = STATE / "drift-accepted.yml"
    accepted.write_text(
        "- {host: pt-pg-1, task: \"postgresql : Write pgBouncer's configuration*\", "
        "reason: 'drill: pool size raised by hand during the incident', expires: '2099-01-01'}\n"
        # the edit also notifies the pool's reload: the same drift, accepted with it
        "- {host: pt-pg-1, task: 'postgresql : Reload pgbouncer', "
        "reason: 'drill: follows the pool size raised by hand', expires: '2099-01-01'}\n"
        "- {host: pt-redis-2, task: 'redis : Run the exporter', "
        "reason: 'drill: exporter stopped for the drill', expires: '2099-01-01'}\n")
    rc, report = drift("--accepted", str(accepted))
    assert rc == 0, report["entries"]
    assert {e["state"] for e in report["entries"]} <= {"accepted"}
    wait_for("ConfigurationDrift to resolve", lambda: not firing("ConfigurationDrift") & {"pt-pg-1", "pt-redis-2"},
             timeout=90, every=3)
