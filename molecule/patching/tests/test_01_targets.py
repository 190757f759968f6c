"""Every inventory host is scraped and up, the rules load and evaluate, and only the monitoring
tier and the admin login get in."""

from __future__ import annotations

import re
import shutil
import ssl
from pathlib import Path

import requests
import yaml
from conftest import (
    ALERTMANAGER,
    ENV_STATE,
    INVENTORY,
    IP,
    MONITOR,
    PROMETHEUS,
    host,
    playbook,
    prom,
    secret,
    status_cli,
    wait_for,
)

PG = {"pt-pg-1", "pt-pg-2"}
REDIS = {"pt-redis-1", "pt-redis-2", "pt-redis-3"}
JOBS = {
    "node": set(IP),
    "postgres": PG,
    "redis": REDIS,
    "prometheus": {MONITOR},
    "alertmanager": {MONITOR},
    "blackbox_ssh": set(IP),
    "blackbox_pgbouncer": PG,
    "blackbox_postgresql": PG,
    # the pgBackRest TLS servers: the database hosts and the repository (the backup group)
    "blackbox_pgbackrest_tls": PG | {MONITOR},
    "blackbox_redis": REDIS,
}


def test_every_inventory_host_is_a_target_and_up():
    def all_up():
        targets = prom("/api/v1/targets", state="active")["activeTargets"]
        seen = {}
        for t in targets:
            seen.setdefault(t["labels"]["job"], {})[t["labels"]["host"]] = (t["health"], t["lastError"])
        ok = all(set(seen.get(job, {})) == hosts and all(h == "up" for h, _ in seen[job].values())
                 for job, hosts in JOBS.items())
        return (ok, targets) if ok else None
    _, targets = wait_for("every target up", all_up, timeout=90)
    by = {(t["labels"]["job"], t["labels"]["host"]): t for t in targets}
    # labels from the inventory
    assert by["node", "pt-pg-2"]["labels"] == {
        "host": "pt-pg-2", "job": "node", "instance": f"{IP['pt-pg-2']}:9100", "env": "molecule",
        "region": "local", "az": "local-b", "class": "pg", "role": "postgresql"}
    assert by["node", MONITOR]["labels"]["role"] == "monitoring,wireguard,backup"
    assert by["postgres", "pt-pg-1"]["labels"]["role"] == "postgresql"
    assert by["redis", "pt-redis-3"]["labels"]["class"] == "redis"
    assert by["blackbox_ssh", "pt-pg-1"]["labels"]["service"] == "ssh"
    assert by["node", "pt-pg-1"]["scrapeUrl"] == f"http://{IP['pt-pg-1']}:9100/metrics"


def scraped_hosts() -> set[str]:
    return {t["labels"]["host"] for t in prom("/api/v1/targets", state="active")["activeTargets"]}


def test_a_host_that_leaves_the_inventory_stops_being_scraped(tmp_path):
    """The monitoring host converged from an inventory without pt-pg-2: every file_sd file of
    that host is removed and Prometheus drops its targets; the full inventory brings them back."""
    gone = "pt-pg-2"
    inventory = Path(shutil.copytree(Path(INVENTORY).parent, tmp_path / "inventory"))
    doc = yaml.safe_load((inventory / "ansible_inventory.yml").read_text())
    for group in doc.values():
        (group.get("hosts") or {}).pop(gone, None)
    (inventory / "ansible_inventory.yml").write_text(yaml.safe_dump(doc))
    for stale in (inventory / "host_vars").glob(f"{gone}*"):
        stale.unlink()
    converge = ("monitoring.yml", "--tags", "prometheus_targets", "--limit", MONITOR)
    try:
        playbook(*converge, inventory=str(inventory / "ansible_inventory.yml"))
        left = host(MONITOR).run(f"find /etc/prometheus/file_sd -name '{gone}.json'").stdout.split()
        assert left == []
        wait_for(f"{gone}'s targets dropped", lambda: gone not in scraped_hosts(), timeout=60)
    finally:
        playbook(*converge)
    wait_for(f"{gone}'s targets back", lambda: scraped_hosts() == set(IP), timeout=60)
    back = host(MONITOR).run(f"find /etc/prometheus/file_sd -name '{gone}.json'").stdout.split()
    assert len(back) == sum(gone in hosts for hosts in JOBS.values())


def test_rules_are_loaded_and_evaluate_without_errors():
    def evaluated():
        groups = prom("/api/v1/rules")["groups"]
        rules = [r for g in groups for r in g["rules"]]
        return groups if rules and all(r.get("lastEvaluation", "").startswith("20") for r in rules) else None
    groups = wait_for("every rule evaluated", evaluated, timeout=60)
    assert {g["name"] for g in groups} == {"self", "host", "postgresql", "redis", "wireguard", "blackbox"}
    errors = [(r["name"], r.get("lastError")) for g in groups for r in g["rules"] if r.get("health") != "ok"]
    assert not errors


def test_only_the_inventorys_targets_were_ever_scraped():
    """Debian's package starts Prometheus on its own configuration (localhost targets) before the
    role configures it; the role drops what that wrote, so no series without a host label (a
    HostDown that would page, and silence the Watchdog) is left in the storage."""
    assert prom("/api/v1/query", query='count_over_time(up{host=""}[1h])')["result"] == []
    assert len(prom("/api/v1/query", query='count_over_time(up{host!=""}[1h])')["result"]) == sum(map(len, JOBS.values()))


def test_every_metric_the_rules_read_is_exported_here():
    """The names in the rules exist in a live scrape (for the exporters this scenario runs)."""
    names = set(prom("/api/v1/label/__name__/values"))
    exprs = " ".join(r["query"] for g in prom("/api/v1/rules")["groups"] for r in g["rules"])
    used = set(re.findall(r"\b((?:node|pg|qb_pg|prometheus|alertmanager|probe|qb_converge|qb_reboot|qb_pgbackrest"
                          r"|qb_certificate)"
                          r"_[a-zA-Z0-9_]+)\b", exprs))
    # written only once a backup exists; the backup host reports that it asked pgBackRest
    used.discard("qb_pgbackrest_last_backup_timestamp_seconds")
    assert "qb_pgbackrest_info_success" in names
    missing = sorted(n for n in used if n not in names)
    assert not missing, f"the rules read metrics nothing exports: {missing}"


def test_every_host_reports_when_its_certificates_expire():
    """Every host's certificate from the pki role (most are used only as RELP clients, which no
    TLS probe sees), with the expiry openssl reads from the file."""
    for name in IP:
        end = host(name).run("openssl x509 -noout -enddate -in /etc/quantbot/pki/host.crt").stdout.strip()
        query = f'qb_certificate_expiry_timestamp_seconds{{host="{name}", path="/etc/quantbot/pki/host.crt"}}'
        result = wait_for(f"{name}'s certificate expiry", lambda q=query: prom("/api/v1/query", query=q)["result"],
                          timeout=60)
        assert float(result[0]["value"][1]) == ssl.cert_time_to_seconds(end.removeprefix("notAfter="))


def test_the_apis_refuse_requests_without_the_admin_login():
    for url, name in ((PROMETHEUS + "/api/v1/query?query=up", "prometheus-admin"),
                      (ALERTMANAGER + "/api/v2/status", "alertmanager-admin")):
        assert requests.get(url, timeout=5).status_code == 401
        assert requests.get(url, auth=("admin", "wrong"), timeout=5).status_code == 401
        assert requests.get(url, auth=("admin", secret("monitoring", name)), timeout=5).status_code == 200
    # the hosts keep only the bcrypt hash
    web = host(MONITOR).file("/etc/prometheus/web.yml").content_string
    assert "$2b$12$" in web and secret("monitoring", "prometheus-admin") not in web


def test_exporters_answer_the_monitoring_host_only():
    for port in (9100, 9187):
        url = f"http://{IP['pt-pg-2']}:{port}/metrics"
        assert host(MONITOR).run(f"curl -sf -m 5 -o /dev/null {url}").rc == 0
        refused = host("pt-pg-1").run(f"curl -sf -m 5 -o /dev/null {url}")
        assert refused.rc != 0, f"{url} answered a host outside the monitoring group"


def test_services_listen_on_the_private_address_only():
    listening = host(MONITOR).run("ss -Hltn").stdout
    for port in (9090, 9093):
        assert f"{IP[MONITOR]}:{port} " in listening
        assert f"0.0.0.0:{port} " not in listening and f"*:{port} " not in listening
    assert "127.0.0.1:9115 " in listening


def test_status_cli_shows_every_host_and_target_up():
    rc, status = status_cli()
    assert set(status["hosts"]) == set(IP)
    assert status["targets_total"] == sum(len(h) for h in JOBS.values())
    assert status["targets_up"] == status["targets_total"] and status["targets_down"] == []
    assert rc == (3 if any(a["severity"] == "critical" for a in status["alerts"]) else 0)


def test_make_ups_closing_summary_reads_the_live_prometheus(monkeypatch):
    """The lines `make up` / `quantbot-infra up` end with, built from this scenario's inventory."""
    from types import SimpleNamespace

    from quantbot_infra import cli

    monkeypatch.setenv("QB_PROMETHEUS_PASSWORD_FILE", str(ENV_STATE / "secrets" / "monitoring" / "prometheus-admin"))
    inv = SimpleNamespace(environment="molecule", hosts=[
        SimpleNamespace(name=name, groups=("monitoring",) if name == MONITOR else ("postgresql",),
                        vars={"qb_private_ip": ip}) for name, ip in IP.items()])
    where, targets = cli._monitoring_summary(inv)
    assert where.startswith(f"prometheus: {PROMETHEUS}  alertmanager: {ALERTMANAGER}  (login admin")
    total = sum(len(h) for h in JOBS.values())
    m = re.fullmatch(rf"targets up {total}/{total}; firing alerts: (\d+)", targets)
    # the Watchdog always fires
    assert m and int(m.group(1)) >= 1, targets
