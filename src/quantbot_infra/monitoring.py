"""The monitoring tier's configuration, computed once on the controller: Prometheus' file_sd
targets from inventory groups, Alertmanager's routing tree (severity, service, market hours,
inhibition, receivers) and the bcrypt hashes of the web logins.

The `qb_monitoring` filter plugin is a thin shim over these functions; they are unit-tested here
and their output is checked by Prometheus' and Alertmanager's own tools (promtool, amtool)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

# the labels every target carries, from the inventory's host variables
TARGET_LABELS = {"env": "qb_env", "region": "qb_region", "az": "qb_az", "class": "qb_class"}
JOB_RE = re.compile(r"^[a-z][a-z0-9_]*$")
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
TIME_RE = re.compile(r"^([01]\d|2[0-4]):[0-5]\d$")
SEVERITIES = ("critical", "warning", "info")


def _job_hosts(job: Mapping[str, Any], groups: Mapping[str, Sequence[str]]) -> list[str]:
    group = job.get("group", "all")
    hosts = set()
    for name in [group] if isinstance(group, str) else group:
        hosts.update(groups.get(name, ()))
    return sorted(hosts)


def file_sd(jobs: Sequence[Mapping[str, Any]], groups: Mapping[str, Sequence[str]],
            hostvars: Mapping[str, Mapping[str, Any]]) -> dict[str, list[dict]]:
    """'<job>/<host>.json' -> the file_sd document of that host's target in that job.

    A job is {name, group (a group or a list), port, role (label; default: the group)}. The
    target is the host's private address; labels: host, env, region, az, class, role."""
    out: dict[str, list[dict]] = {}
    for job in jobs:
        name = job.get("name", "")
        if not JOB_RE.match(str(name)):
            raise ValueError(f"prometheus_scrape_jobs: job name {name!r} must match {JOB_RE.pattern}")
        try:
            port = int(job.get("port"))
        except (TypeError, ValueError):
            port = 0
        if not 0 < port < 65536:
            raise ValueError(f"prometheus_scrape_jobs[{name}].port: expected a port number, "
                             f"got {job.get('port')!r}")
        group = job.get("group", "all")
        for host in _job_hosts(job, groups):
            hv = hostvars.get(host, {})
            address = hv.get("qb_private_ip")
            if not address:
                raise ValueError(f"host {host} (job {name}) has no qb_private_ip to scrape")
            labels = {"host": host, "job": name}
            labels.update({label: str(hv[var]) for label, var in TARGET_LABELS.items()
                           if hv.get(var) is not None})
            role = job.get("role") or (group if isinstance(group, str) and group != "all"
                                       else ",".join(hv.get("qb_role_groups") or []) or "host")
            labels["role"] = role
            labels.update({k: str(v) for k, v in (job.get("labels") or {}).items()})
            out[f"{name}/{host}.json"] = [{"targets": [f"{address}:{port}"], "labels": labels}]
    return out


def file_sd_files(jobs, groups, hostvars) -> dict[str, str]:
    """file_sd() as file contents (JSON), ready to be written."""
    return {path: json.dumps(doc, indent=2, sort_keys=True) + "\n"
            for path, doc in file_sd(jobs, groups, hostvars).items()}


def blackbox_jobs(probes: Sequence[Mapping[str, Any]]) -> list[dict]:
    """Blackbox probes as scrape jobs: job `blackbox_<name>`, labelled service and module."""
    out = []
    for probe in probes:
        if not probe.get("name") or not probe.get("module"):
            raise ValueError("prometheus_blackbox_probes: each probe needs a name and a module, "
                             f"got {dict(probe)}")
        out.append({"name": f"blackbox_{probe['name']}", "group": probe.get("group", "all"),
                    "port": probe.get("port"), "role": probe.get("role"),
                    "labels": {"service": probe["name"], "module": probe["module"]}})
    return out


def bcrypt_hash(password: str, context: str, rounds: int = 12) -> str:
    """bcrypt of `password` with a salt derived from the password and `context`, so that the same
    secret renders the same web config on every run (idempotent) while two logins, or two
    services, never share a hash."""
    import bcrypt  # imported here: only the monitoring hosts' converge needs it

    if not password:
        raise ValueError(f"{context}: the password is empty")
    digest = hmac.new(password.encode(), f"quantbot-web:{context}".encode(), hashlib.sha256).digest()[:16]
    # bcrypt's base64 alphabet and its 22-character salt
    std = base64.b64encode(digest).decode().rstrip("=")
    salt = std.translate(str.maketrans(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
        "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"))[:22]
    # the last salt character carries only 2 significant bits: keep it canonical
    salt = salt[:21] + "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"[
        "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789".index(salt[21]) & 0x30]
    return bcrypt.hashpw(password.encode(), f"$2b${rounds:02d}${salt}".encode()).decode()


def _venue_interval(venue: Mapping[str, Any], where: str) -> dict:
    for key in ("name", "timezone", "open", "close"):
        if not venue.get(key):
            raise ValueError(f"{where}: '{key}' is required "
                             "(a venue is name, timezone, open, close, weekdays)")
    for key in ("open", "close"):
        if not TIME_RE.match(str(venue[key])):
            raise ValueError(f"{where}.{key}: expected HH:MM (24h), got {venue[key]!r}")
    if str(venue["open"]) >= str(venue["close"]):
        raise ValueError(f"{where}: open {venue['open']} must be before close {venue['close']} "
                         "(a session past midnight is two venues)")
    days = [r for day in venue.get("weekdays", ["monday:friday"])
            for r in _weekday_ranges(str(day), f"{where}.weekdays")]
    return {"times": [{"start_time": str(venue["open"]), "end_time": str(venue["close"])}],
            "weekdays": days, "location": str(venue["timezone"])}


def _weekday_ranges(day: str, where: str) -> list[str]:
    """A weekday or range as Alertmanager takes it. Alertmanager's week starts on Sunday and it
    refuses a range that wraps past Saturday ('monday:sunday', 'friday:monday'), so such a range
    is written as the two ranges it means."""
    parts = day.split(":")
    if len(parts) > 2 or any(part not in WEEKDAYS for part in parts):
        raise ValueError(f"{where}: {day!r} is not a weekday or range (monday:friday)")
    if len(parts) == 1:
        return [day]
    order = ("sunday", *WEEKDAYS[:-1])
    start, end = (order.index(part) for part in parts)
    if start <= end:
        return [day]
    tail = order[start] if start == 6 else f"{order[start]}:saturday"
    head = "sunday" if end == 0 else f"sunday:{order[end]}"
    return [tail, head]


def _receiver(spec: Mapping[str, Any], where: str) -> dict:
    kind = spec.get("type")
    name = spec.get("name")
    if not name:
        raise ValueError(f"{where}: 'name' is required")
    out: dict[str, Any] = {"name": name}
    send_resolved = bool(spec.get("send_resolved", True))
    if kind == "webhook":
        if not spec.get("url"):
            raise ValueError(f"{where} ({name}): a webhook needs 'url'")
        out["webhook_configs"] = [{"url": spec["url"], "send_resolved": send_resolved}]
    elif kind == "email":
        for key in ("to", "from", "smarthost"):
            if not spec.get(key):
                raise ValueError(f"{where} ({name}): an email receiver needs '{key}'")
        cfg = {"to": spec["to"], "from": spec["from"], "smarthost": spec["smarthost"],
               "send_resolved": send_resolved, "require_tls": bool(spec.get("require_tls", True))}
        if spec.get("auth_username"):
            cfg["auth_username"] = spec["auth_username"]
            cfg["auth_password"] = spec.get("secret", "")
        out["email_configs"] = [cfg]
    elif kind == "pagerduty":
        if not spec.get("secret"):
            raise ValueError(f"{where} ({name}): a PagerDuty receiver needs its routing key "
                             "(alertmanager_receiver_secrets, from Vault)")
        out["pagerduty_configs"] = [{"routing_key": spec["secret"], "send_resolved": send_resolved}]
    elif kind == "slack":
        if not spec.get("secret"):
            raise ValueError(f"{where} ({name}): a Slack receiver needs its webhook URL "
                             "(alertmanager_receiver_secrets, from Vault)")
        out["slack_configs"] = [{"api_url": spec["secret"], "channel": spec.get("channel", "#alerts"),
                                 "send_resolved": send_resolved,
                                 "title": '{{ .CommonLabels.alertname }} ({{ .Status }})',
                                 "text": '{{ range .Alerts }}{{ .Annotations.summary }}\n'
                                         'runbook: {{ .Annotations.runbook }}\n{{ end }}'}]
    elif kind == "null":
        pass
    else:
        raise ValueError(f"{where} ({name}): type {kind!r} is not one of "
                         "webhook, email, pagerduty, slack, null")
    return out


def alertmanager_config(receivers: Sequence[Mapping[str, Any]], secrets: Mapping[str, str],
                        routing: Mapping[str, Any], venues: Sequence[Mapping[str, Any]],
                        timing: Mapping[str, str]) -> dict:
    """Alertmanager's configuration.

    routing: {critical, warning, info, watchdog: receiver name; services: {service: {critical,
    warning, info}}}. Criticals always page; warnings and infos are delivered only during market
    hours (any venue open) and wait for the next session otherwise; the Watchdog goes to its own
    receiver, repeated often, so its silence is what pages."""
    names = []
    built = []
    for pos, spec in enumerate(receivers):
        where = f"alertmanager_receivers[{pos}]"
        spec = dict(spec)
        if spec.get("type") in ("pagerduty", "slack") or spec.get("auth_username"):
            spec["secret"] = secrets.get(spec.get("name", ""), "")
        built.append(_receiver(spec, where))
        names.append(spec["name"])
    if len(set(names)) != len(names):
        raise ValueError(f"alertmanager_receivers: receiver names repeat: {names}")

    def check(name: str, where: str) -> str:
        if name not in names:
            raise ValueError(f"{where}: receiver {name!r} is not in alertmanager_receivers "
                             f"({', '.join(names)})")
        return name

    for key in (*SEVERITIES, "watchdog"):
        check(routing.get(key, ""), f"alertmanager_routing.{key}")
    if not venues:
        raise ValueError("alertmanager_market_hours: at least one venue is needed to hold warnings "
                         "outside market hours")
    intervals = [_venue_interval(v, f"alertmanager_market_hours[{i}]") for i, v in enumerate(venues)]

    def severity_route(severity: str) -> dict:
        route: dict[str, Any] = {"matchers": [f'severity="{severity}"'], "receiver": routing[severity]}
        services = []
        for service, by_severity in sorted((routing.get("services") or {}).items()):
            if severity in (by_severity or {}):
                services.append({"matchers": [f'service="{service}"'],
                                 "receiver": check(by_severity[severity],
                                                   f"alertmanager_routing.services.{service}.{severity}")})
        if services:
            route["routes"] = services
        if severity != "critical":
            # held outside market hours; delivered when the next session opens
            route["active_time_intervals"] = ["market_hours"]
        return route

    return {
        "global": {"resolve_timeout": "5m"},
        "route": {
            "receiver": routing["critical"],
            "group_by": ["alertname", "env", "service", "host"],
            "group_wait": timing["group_wait"],
            "group_interval": timing["group_interval"],
            "repeat_interval": timing["repeat_interval"],
            "routes": [
                {"matchers": ['alertname="Watchdog"'], "receiver": routing["watchdog"],
                 "group_wait": "0s", "group_interval": timing["watchdog_interval"],
                 "repeat_interval": timing["watchdog_interval"]},
                *(severity_route(s) for s in SEVERITIES),
            ],
        },
        "inhibit_rules": [
            # a host that is down explains every alert of the services on it. Only a HostDown
            # of one of the inventory's hosts: labels absent on both sides count as equal, so a
            # HostDown without a host would silence every alert without one, the Watchdog too.
            {"source_matchers": ['alertname="HostDown"', 'host=~".+"'],
             "target_matchers": ['alertname!="HostDown"', 'alertname!="Watchdog"'],
             "equal": ["host"]},
            # a critical explains the warning of the same alert on the same host
            {"source_matchers": ['severity="critical"'], "target_matchers": ['severity="warning"'],
             "equal": ["alertname", "host"]},
        ],
        "receivers": built,
        "time_intervals": [{"name": "market_hours", "time_intervals": intervals}],
    }
