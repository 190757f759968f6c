"""Drift reports from a check + diff run's events (quantbot_infra.drift): changed with redacted
diffs, unknown never clean, accepted drift with expiry, exit codes, the textfile metric."""

from datetime import date

import pytest

from quantbot_infra import drift

PASSWORD = "s3cr3t-Pg-pass"


def event(kind, host, task, role="", **res):
    return {"event": f"runner_on_{kind}",
            "event_data": {"host": host, "task": task, "role": role,
                           "task_path": f"/roles/{role}/tasks/main.yml:1", "res": res}}


EVENTS = [
    {"event": "playbook_on_start", "event_data": {}},
    event("ok", "dev-pg-01", "Write pgbouncer.ini", "postgresql", changed=True, diff=[{
        "before_header": "/etc/pgbouncer/pgbouncer.ini", "after_header": "/etc/pgbouncer/pgbouncer.ini",
        "before": "[pgbouncer]\nmax_client_conn = 500\n",
        "after": f"[pgbouncer]\nmax_client_conn = 100\nauth_password = {PASSWORD}\n"}]),
    event("ok", "dev-pg-01", "Start PostgreSQL", "postgresql", changed=False),
    event("skipped", "dev-redis-01", "Reload sentinel", "redis", changed=False, skipped=True,
          msg="Command would have run if not in check mode"),
    event("skipped", "dev-redis-01", "Rotate keys", "redis", skipped=True, changed=False,
          skip_reason="Conditional result was False", false_condition="not ansible_check_mode"),
    event("skipped", "dev-redis-01", "Only on trading hosts", "base", skipped=True, changed=False,
          skip_reason="Conditional result was False", false_condition="'trading' in group_names"),
    event("ok", "dev-vpn-01", "Start wg-quick@wg0", "wireguard", changed=True,
          diff={"before": {"state": "stopped"}, "after": {"state": "started"}}),
    event("ok", "dev-vpn-01", "Write the secret", "wireguard", changed=True,
          censored="the output has been hidden"),
]


def test_changed_unknown_and_clean_tasks_per_host_with_secrets_redacted():
    result = drift.report(EVENTS, today=date(2026, 12, 6), secrets=[PASSWORD],
                          hosts=["dev-pg-01", "dev-redis-01", "dev-vpn-01", "dev-gpu-01"])
    assert result["exit_code"] == drift.DRIFT and result["status"] == "drift"
    by_task = {(e["host"], e["task"]): e for e in result["entries"]}
    pgb = by_task[("dev-pg-01", "Write pgbouncer.ini")]
    assert pgb["state"] == "changed" and pgb["role"] == "postgresql"
    assert "-max_client_conn = 500" in pgb["detail"] and "+max_client_conn = 100" in pgb["detail"]
    assert "auth_password = ********" in pgb["detail"]
    assert PASSWORD not in repr(result)
    assert by_task[("dev-redis-01", "Reload sentinel")]["state"] == "unknown"
    assert "outside check mode" in by_task[("dev-redis-01", "Rotate keys")]["detail"]
    assert ("dev-redis-01", "Only on trading hosts") not in by_task
    assert "'stopped'" in by_task[("dev-vpn-01", "Start wg-quick@wg0")]["detail"]
    assert by_task[("dev-vpn-01", "Write the secret")]["detail"] == "(hidden: the task is no_log)"
    assert result["hosts"]["dev-gpu-01"] == {"changed": 0, "unknown": 0, "accepted": 0, "failed": 0,
                                             "unreachable": 0}
    assert result["hosts"]["dev-redis-01"]["unknown"] == 2


def test_accepted_drift_until_it_expires():
    accepted = drift.load_accepted("""
- {host: "dev-pg-*", task: "postgresql : Write pgbouncer.ini", reason: "load test until Friday",
   expires: 2026-12-11}
- {host: "dev-redis-01", task: "Reload sentinel", reason: "sentinel reload is harmless", expires: 2026-12-31}
- {host: "dev-redis-01", task: "redis : Rotate keys", reason: "rotated by hand", expires: 2026-12-31}
- {host: "dev-vpn-01", task: "wireguard : *", reason: "gateway migration", expires: 2026-12-01}
""", "accepted.yml")
    result = drift.report(EVENTS[:6], accepted, today=date(2026, 12, 6))
    assert {e["state"] for e in result["entries"]} == {"accepted"}
    assert result["exit_code"] == drift.CLEAN
    assert result["entries"][0]["accepted"] == {"reason": "load test until Friday", "expires": "2026-12-11"}
    later = drift.report(EVENTS, accepted, today=date(2026, 12, 12))
    assert later["exit_code"] == drift.DRIFT
    assert ("accepted drift for dev-pg-* / postgresql : Write pgbouncer.ini expired on 2026-12-11: "
            "reported again") in later["notes"]
    assert later["hosts"]["dev-vpn-01"]["changed"] == 2     # its acceptance expired on 12-01


def test_failed_or_unreachable_is_an_error_whatever_else():
    events = [*EVENTS, event("unreachable", "dev-gpu-01", "Gathering Facts", msg="ssh: connect timed out"),
              event("failed", "dev-pg-02", "Read", "postgresql", msg=f"password {PASSWORD} rejected")]
    result = drift.report(events, secrets=[PASSWORD])
    assert result["exit_code"] == drift.ERROR
    assert result["hosts"]["dev-gpu-01"]["unreachable"] == 1
    assert PASSWORD not in repr(result)


def test_a_clean_run_exits_zero():
    result = drift.report([event("ok", "dev-gpu-01", "Install", "base", changed=False)],
                          hosts=["dev-gpu-01"])
    assert result["exit_code"] == drift.CLEAN and result["entries"] == []


@pytest.mark.parametrize(("text", "message"), [
    ("- {host: a, task: b, reason: c}", "accepted.yml: entry 1 lacks expires"),
    ("- {host: a, task: b, reason: c, expires: someday}", "entry 1 expires 'someday': not a date"),
    ("{host: a}", "expected a list of entries"),
    ("- [a, b]", "entry 1 is not a mapping"),
    ("- {host: a\n", "accepted.yml: not YAML"),
])
def test_a_bad_accepted_file_names_the_entry(text, message):
    with pytest.raises(drift.DriftError) as caught:
        drift.load_accepted(text, "accepted.yml")
    assert message in str(caught.value)


def test_redaction_of_keys_and_known_values():
    text = "PrivateKey = aGVsbG8=\nrequirepass: hunter22\nmasterauth hunter22\ntoken='abc'\nport = 5432"
    assert "hunter22" not in drift.redact(text)   # Redis keys by name
    out = drift.redact(text, secrets=["hunter22"])
    assert "aGVsbG8" not in out and "hunter22" not in out and "abc" not in out
    assert "PrivateKey = ********" in out and "port = 5432" in out


def test_textfile_metric():
    text = drift.textfile({"changed": 2, "unknown": 1}, 1796600000.4)
    assert 'quantbot_drift_tasks{state="changed"} 2' in text
    assert 'quantbot_drift_tasks{state="unknown"} 1' in text
    assert "quantbot_drift_last_check_timestamp_seconds 1796600000" in text


def test_a_real_check_run_of_the_dev_fleet_after_hand_edits():
    """Events of `quantbot-infra drift --env dev` (site.yml in check + diff mode) after
    max_client_conn was edited by hand on dev-pg-01 and the Redis exporter stopped on
    dev-redis-02, and a line added to dev-pg-02's pgBouncer user list: a loop's item diff, a
    handler, a service, a no_log task."""
    import json
    from pathlib import Path

    events = json.loads((Path(__file__).parent / "fixtures" / "patch" / "drift-events-dev.json").read_text())
    result = drift.report(events, hosts=["dev-pg-01", "dev-redis-02", "dev-gpu-01"])
    assert result["exit_code"] == drift.DRIFT
    by_task = {(e["host"], e["role"], e["task"]): e for e in result["entries"]}
    pgb = by_task[("dev-pg-01", "postgresql", "Write pgBouncer's configuration and allow-list")]
    assert "-max_client_conn = 50" in pgb["detail"] and "+max_client_conn = 1000" in pgb["detail"]
    assert "/etc/pgbouncer/pgbouncer.ini (wanted)" in pgb["detail"]
    exporter = by_task[("dev-redis-02", "redis", "Run the exporter")]
    assert exporter["detail"] == "prometheus-redis-exporter: inactive -> started"
    assert result["hosts"]["dev-gpu-01"]["changed"] == 0
    # a no_log task's result is censored without its `changed`; its output line still says so
    userlist = by_task[("dev-pg-02", "postgresql", "Write pgBouncer's user list")]
    assert userlist["state"] == "changed" and userlist["detail"] == "(hidden: the task is no_log)"
