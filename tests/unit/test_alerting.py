"""The alert rules and the Alertmanager routing, checked by Prometheus' and Alertmanager's own
tools (promtool, amtool: the Debian versions the monitoring hosts run, unpacked by `make
setup` into .tools/). No host is needed."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import jinja2
import pytest
import yaml

from quantbot_infra import monitoring

ROOT = Path(__file__).resolve().parents[2]
ROLE = ROOT / "roles" / "prometheus"
TESTS = ROOT / "tests" / "rules"
TOOLS = ROOT / ".tools" / "bin"
DEFAULTS = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
# always firing: it has no time at which it must not fire yet
NO_PENDING = {"Watchdog"}


def tool(name: str) -> str:
    path = TOOLS / name
    if not path.exists():
        pytest.fail(f"{path} is missing: run 'make setup' "
                    "(it unpacks promtool and amtool from Debian's packages)")
    return str(path)


def render_rules(dest: Path) -> dict[str, str]:
    """Render the role's rule files with its defaults, as the role does ([[ ]] delimiters)."""
    env = jinja2.Environment(  # noqa: S701 - YAML, not HTML
                             loader=jinja2.FileSystemLoader(ROLE / "templates" / "rules"),
                             variable_start_string="[[", variable_end_string="]]",
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    values = {k: v for k, v in DEFAULTS.items() if k.startswith("prometheus_alert_")}
    values["ansible_managed"] = "rendered by tests/unit/test_alerting.py"
    out = {}
    for name in DEFAULTS["prometheus_alert_rule_files"]:
        text = env.get_template(f"{name}.yml.j2").render(**values)
        assert "[[" not in text
        (dest / f"{name}.yml").write_text(text)
        out[name] = text
    return out


@pytest.fixture(scope="module")
def rules(tmp_path_factory) -> Path:
    dest = tmp_path_factory.mktemp("rules")
    render_rules(dest)
    return dest


@pytest.fixture(scope="module")
def rules_for_tests(rules, tmp_path_factory) -> Path:
    """The rendered rules without their annotations, next to the unit tests: promtool compares
    annotations verbatim, which would make each test a copy of the texts. The texts are checked
    by promtool check rules and by the test below that every alert has them."""
    dest = tmp_path_factory.mktemp("rules_for_tests")
    for path in rules.glob("*.yml"):
        doc = yaml.safe_load(path.read_text())
        for group in doc["groups"]:
            for rule in group["rules"]:
                rule.pop("annotations", None)
        (dest / path.name).write_text(yaml.safe_dump(doc, sort_keys=False))
    for test in TESTS.glob("*.test.yml"):
        shutil.copy(test, dest / test.name)
    return dest


def alerts_of(rules_dir: Path) -> dict[str, dict]:
    out = {}
    for path in sorted(rules_dir.glob("*.yml")):
        if path.name.endswith(".test.yml"):
            continue
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    out[rule["alert"]] = rule
    return out


def test_rules_pass_promtool_check(rules):
    files = sorted(str(p) for p in rules.glob("*.yml") if not p.name.endswith(".test.yml"))
    result = subprocess.run([tool("promtool"), "check", "rules", *files], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_rule_unit_tests_pass(rules_for_tests):
    tests = sorted(str(p) for p in rules_for_tests.glob("*.test.yml"))
    assert len(tests) == len(DEFAULTS["prometheus_alert_rule_files"])
    result = subprocess.run([tool("promtool"), "test", "rules", *tests], capture_output=True, text=True,
                            cwd=rules_for_tests)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]


def test_every_alert_has_severity_runbook_and_both_test_cases(rules):
    alerts = alerts_of(rules)
    assert len(alerts) >= 30
    cases: dict[str, dict[str, int]] = {}
    for path in TESTS.glob("*.test.yml"):
        for test in yaml.safe_load(path.read_text())["tests"]:
            for case in test.get("alert_rule_test", []):
                seen = cases.setdefault(case["alertname"], {"fires": 0, "quiet": 0})
                if case.get("exp_alerts"):
                    assert all(a.get("exp_labels") for a in case["exp_alerts"]), case
                    seen["fires"] += 1
                else:
                    seen["quiet"] += 1
    problems = []
    for name, rule in alerts.items():
        labels, notes = rule.get("labels", {}), rule.get("annotations", {})
        if labels.get("severity") not in ("critical", "warning", "info", "none"):
            problems.append(f"{name}: severity {labels.get('severity')!r}")
        if not labels.get("service"):
            problems.append(f"{name}: no service label")
        if len(notes.get("runbook", "")) < 30 or not notes.get("summary"):
            problems.append(f"{name}: summary and a runbook that says what to do are required")
        if name not in NO_PENDING and "for" not in rule:
            problems.append(f"{name}: no `for:`")
        seen = cases.get(name, {"fires": 0, "quiet": 0})
        if not seen["fires"] or (name not in NO_PENDING and not seen["quiet"]):
            problems.append(f"{name}: needs a test where it fires and one where it does not yet ({seen})")
    assert not problems, "\n".join(problems)


def test_for_durations_are_the_roles_variables():
    """Every `for:` comes from prometheus_alert_for, so tests and environments can change it."""
    for path in (ROLE / "templates" / "rules").glob("*.yml.j2"):
        for line in path.read_text().splitlines():
            if line.strip().startswith("for:"):
                assert "[[ prometheus_alert_for." in line, f"{path.name}: {line.strip()}"


# --- Alertmanager ---------------------------------------------------------------------------

RECEIVERS = [
    {"name": "pager", "type": "pagerduty"},
    {"name": "chat", "type": "slack", "channel": "#trading-ops"},
    {"name": "dba", "type": "webhook", "url": "http://10.0.0.9:9999/dba"},
    {"name": "deadman", "type": "webhook", "url": "http://10.0.0.9:9999/watchdog"},
    {"name": "mail", "type": "email", "to": "ops@example.org", "from": "am@example.org",
     "smarthost": "10.0.0.9:587", "auth_username": "am"},
]
SECRETS = {"pager": "routing-key-from-vault", "chat": "https://hooks.invalid/T000/B000", "mail": "pw"}
ROUTING = {"critical": "pager", "warning": "chat", "info": "mail", "watchdog": "deadman",
           "services": {"postgresql": {"warning": "dba", "critical": "pager"}}}
VENUES = [{"name": "XNYS", "timezone": "America/New_York", "open": "09:30", "close": "16:00"},
          {"name": "XTKS", "timezone": "Asia/Tokyo", "open": "09:00", "close": "15:00",
           "weekdays": ["monday:friday"]}]
TIMING = {"group_wait": "30s", "group_interval": "5m", "repeat_interval": "4h", "watchdog_interval": "1m"}


@pytest.fixture(scope="module")
def am_config(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("am") / "alertmanager.yml"
    config = monitoring.alertmanager_config(RECEIVERS, SECRETS, ROUTING, VENUES, TIMING)
    path.write_text(yaml.safe_dump(config))
    return path


def test_alertmanager_config_passes_amtool(am_config):
    result = subprocess.run([tool("amtool"), "check-config", str(am_config)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(("labels", "receiver"), [
    (["alertname=Watchdog", "severity=none", "service=monitoring"], "deadman"),
    (["alertname=HostDown", "severity=critical", "service=host", "host=pg-1"], "pager"),
    (["alertname=PostgreSQLReplicationBroken", "severity=critical", "service=postgresql"], "pager"),
    (["alertname=PostgreSQLReplicationLagging", "severity=warning", "service=postgresql"], "dba"),
    (["alertname=RedisDown", "severity=critical", "service=redis"], "pager"),
    (["alertname=TargetDown", "severity=warning", "service=redis"], "chat"),
    (["alertname=RebootRequired", "severity=info", "service=host"], "mail"),
    # an alert with an unknown severity still pages rather than vanish
    (["alertname=Custom", "severity=bogus"], "pager"),
])
def test_routes_reach_the_right_receiver(am_config, labels, receiver):
    result = subprocess.run([tool("amtool"), "config", "routes", "test", f"--config.file={am_config}",
                             f"--verify.receivers={receiver}", *labels], capture_output=True, text=True)
    assert result.returncode == 0, f"{labels}: {result.stdout.strip()} {result.stderr.strip()}"


def test_warnings_wait_for_market_hours_criticals_do_not(am_config):
    routes = yaml.safe_load(am_config.read_text())["route"]["routes"]
    by_match = {r["matchers"][0]: r for r in routes}
    assert "active_time_intervals" not in by_match['severity="critical"']
    assert by_match['severity="warning"']["active_time_intervals"] == ["market_hours"]
    interval = yaml.safe_load(am_config.read_text())["time_intervals"][0]
    assert interval["name"] == "market_hours"
    assert interval["time_intervals"][0] == {"times": [{"start_time": "09:30", "end_time": "16:00"}],
                                             "weekdays": ["monday:friday"], "location": "America/New_York"}


@pytest.mark.parametrize(("weekdays", "written"), [
    (["monday:sunday"], ["monday:saturday", "sunday"]),
    (["friday:monday"], ["friday:saturday", "sunday:monday"]),
    (["saturday:sunday"], ["saturday", "sunday"]),
    (["sunday:saturday", "monday"], ["sunday:saturday", "monday"]),
])
def test_week_ranges_past_saturday_become_ranges_alertmanager_accepts(tmp_path, weekdays, written):
    """Alertmanager's week starts on Sunday and refuses 'monday:sunday' ("start day cannot be
    before end day"); the venue keeps meaning what it says."""
    venue = {"name": "X", "timezone": "UTC", "open": "08:00", "close": "17:00", "weekdays": weekdays}
    config = monitoring.alertmanager_config(RECEIVERS, SECRETS, ROUTING, [venue], TIMING)
    assert config["time_intervals"][0]["time_intervals"][0]["weekdays"] == written
    path = tmp_path / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config))
    result = subprocess.run([tool("amtool"), "check-config", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_host_down_inhibits_the_hosts_other_alerts(am_config):
    rules = yaml.safe_load(am_config.read_text())["inhibit_rules"]
    assert {"source_matchers": ['alertname="HostDown"', 'host=~".+"'],
            "target_matchers": ['alertname!="HostDown"', 'alertname!="Watchdog"'], "equal": ["host"]} in rules
    # the dead-man's switch is a target of no inhibition, whatever else fires
    watchdog = {"alertname": "Watchdog", "severity": "none", "service": "monitoring"}
    assert not [r for r in rules if all(_matches(m, watchdog) for m in r["target_matchers"])]


def _matches(matcher: str, labels: dict[str, str]) -> bool:
    import re

    name, op, value = re.fullmatch(r'(\w+)(=~|!~|!=|=)"(.*)"', matcher).groups()
    have = labels.get(name, "")
    return {"=": have == value, "!=": have != value, "=~": bool(re.fullmatch(value, have)),
            "!~": not re.fullmatch(value, have)}[op]


@pytest.mark.parametrize(("change", "message"), [
    ({"routing": {**ROUTING, "warning": "nobody"}}, "receiver 'nobody' is not in alertmanager_receivers"),
    ({"venues": [{"name": "X", "timezone": "UTC", "open": "16:00", "close": "09:30"}]},
     "must be before close"),
    ({"venues": [{"name": "X", "timezone": "UTC", "open": "9h", "close": "16:00"}]}, "expected HH:MM"),
    ({"venues": [{"name": "X", "timezone": "UTC", "open": "09:00", "close": "16:00", "weekdays": ["mon"]}]},
     "is not a weekday"),
    ({"venues": [{"name": "X", "timezone": "UTC", "open": "09:00", "close": "16:00",
                  "weekdays": ["monday:tuesday:friday"]}]}, "is not a weekday"),
    ({"receivers": [*RECEIVERS[1:]]}, "PagerDuty receiver"),
    ({"secrets": {}}, "needs its routing key"),
])
def test_bad_alertmanager_input_is_refused_by_name(change, message):
    args = {"receivers": RECEIVERS, "secrets": SECRETS, "routing": ROUTING, "venues": VENUES,
            "timing": TIMING}
    args.update(change)
    if "receivers" in change:
        args["receivers"] = [{"name": "pager", "type": "pagerduty"}] + change["receivers"]
        args["secrets"] = {}
    with pytest.raises(ValueError, match=message):
        monitoring.alertmanager_config(**args)
