"""`quantbot-infra status`: the fleet built from Prometheus' answers (the live path is proved
by the patching scenario's monitoring checks)."""

from __future__ import annotations

from quantbot_infra import cli, status

UP = [
    {"metric": {"__name__": "up", "job": "node", "host": "dev-pg-01", "instance": "10.0.0.11:9100"},
     "value": [1795600000.0, "1"]},
    {"metric": {"__name__": "up", "job": "postgres", "host": "dev-pg-01", "instance": "10.0.0.11:9187"},
     "value": [1795600000.0, "0"]},
    {"metric": {"__name__": "up", "job": "node", "host": "dev-monitoring-01", "instance": "10.0.0.2:9100"},
     "value": [1795600000.0, "1"]},
]
ALERTS = [
    {"labels": {"alertname": "Watchdog", "severity": "none", "service": "monitoring"},
     "annotations": {"summary": "works"}, "state": "firing", "activeAt": "2026-11-25T10:00:00Z"},
    {"labels": {"alertname": "TargetDown", "severity": "warning", "service": "postgres", "host": "dev-pg-01"},
     "annotations": {"summary": "The postgres exporter on dev-pg-01 does not answer scrapes."},
     "state": "firing", "activeAt": "2026-11-25T10:01:00Z"},
    {"labels": {"alertname": "HostDown", "severity": "critical", "service": "host", "host": "dev-gpu-01"},
     "annotations": {"summary": "down"}, "state": "pending", "activeAt": "2026-11-25T10:02:00Z"},
]


def test_fleet_from_the_api_answers():
    fleet = status.from_api("http://10.0.0.2:9090", UP, ALERTS)
    assert fleet.hosts == {"dev-monitoring-01": {"node": True},
                           "dev-pg-01": {"node": True, "postgres": False}}
    assert (fleet.targets_up, fleet.targets_total, fleet.targets_down) == (2, 3, ["dev-pg-01/postgres"])
    # pending alerts are not firing; the most severe first
    assert [a["alertname"] for a in fleet.alerts] == ["TargetDown", "Watchdog"]
    text = status.render(fleet)
    assert "targets up 2/3" in text and "dev-pg-01/postgres" in text and "postgres:DOWN" in text


def test_targets_discovered_but_not_scraped_yet_are_counted_as_pending():
    targets = [
        {"labels": {"job": "node", "host": "dev-pg-01"}, "health": "up"},
        {"labels": {"job": "blackbox_ssh", "host": "dev-pg-01"}, "health": "unknown"},
        {"labels": {"job": "blackbox_ssh", "host": "dev-gpu-01"}, "health": "unknown"},
        {"labels": {"job": "other"}, "health": "unknown"},  # not one of the project's (no host)
    ]
    fleet = status.from_api("http://10.0.0.2:9090", UP, [], targets)
    assert (fleet.targets_up, fleet.targets_total) == (2, 5)
    assert fleet.targets_pending == ["dev-gpu-01/blackbox_ssh", "dev-pg-01/blackbox_ssh"]
    assert fleet.targets_down == ["dev-pg-01/postgres"]
    text = status.render(fleet)
    assert "blackbox_ssh:pending" in text and "not scraped yet: dev-gpu-01/blackbox_ssh" in text


def test_status_without_a_password_says_where_it_looked(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("QB_PROMETHEUS_PASSWORD_FILE", str(tmp_path / "missing"))
    assert cli.main(["status", "--env", "dev"]) == 1
    err = capsys.readouterr().err
    assert "missing: no Prometheus admin password" in err


def test_status_names_a_prometheus_that_does_not_answer(tmp_path, capsys):
    secret = tmp_path / "pw"
    secret.write_text("x")
    # a closed port on loopback
    assert cli.main(["status", "--prometheus", "http://127.0.0.1:9", "--password-file", str(secret)]) == 1
    assert "Prometheus at http://127.0.0.1:9 does not answer" in capsys.readouterr().err
