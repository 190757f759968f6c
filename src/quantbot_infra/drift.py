"""Drift: what a check + diff run of the site playbook says would change, per host, role and task.

Each task result is one of:
- changed: the run would change it (with its diff, secrets redacted);
- unknown: check mode could not evaluate it (a command that would have run, a module without
  check mode, a task skipped because it only runs for real) - never counted as clean;
- failed / unreachable;
- accepted: a changed or unknown entry an accepted-drift file covers (pattern, reason, expiry).

Exit codes: 0 clean (nothing left but accepted entries), 2 drift, 1 error (a failed or unreachable
host: the report is incomplete). Pure: the CLI feeds it ansible-runner's events.
"""

from __future__ import annotations

import difflib
import fnmatch
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import yaml

CLEAN, ERROR, DRIFT = 0, 1, 2
_SECRET_KEY = re.compile(
    r"(?i)\b([\w.-]*(?:password|passwd|secret|token|private_?key|presharedkey|psk|api_?key|requirepass|masterauth)[\w.-]*)"
    r"(\s*[:=]\s*|\s+)(['\"]?)([^\s'\"]+)")
_UNKNOWN_MESSAGES = ("would have run if not in check mode", "does not support check mode",
                     "check mode is not supported")


class DriftError(ValueError):
    """An accepted-drift file that cannot be read; the message names the file and entry."""


@dataclass(frozen=True)
class Acceptance:
    host: str
    task: str
    reason: str
    expires: date

    def covers(self, host: str, role: str, task: str) -> bool:
        label = f"{role} : {task}" if role else task
        return fnmatch.fnmatchcase(host, self.host) and (
            fnmatch.fnmatchcase(label, self.task) or fnmatch.fnmatchcase(task, self.task))


def load_accepted(text: str, where: str) -> list[Acceptance]:
    """The accepted-drift file: a list of {host, task, reason, expires} (patterns: fnmatch; task
    matches 'role : task name' or the bare task name)."""
    try:
        data = yaml.safe_load(text) or []
    except yaml.YAMLError as exc:
        raise DriftError(f"{where}: not YAML ({exc.__class__.__name__})") from None
    if not isinstance(data, list):
        raise DriftError(f"{where}: expected a list of entries (host, task, reason, expires)")
    out = []
    for i, entry in enumerate(data):
        if not isinstance(entry, dict):
            raise DriftError(f"{where}: entry {i + 1} is not a mapping")
        missing = [k for k in ("host", "task", "reason", "expires") if not entry.get(k)]
        if missing:
            raise DriftError(f"{where}: entry {i + 1} lacks {', '.join(missing)} (every accepted "
                             "drift says why, and until when)")
        expires = entry["expires"]
        if not isinstance(expires, date):
            try:
                expires = date.fromisoformat(str(expires))
            except ValueError:
                raise DriftError(f"{where}: entry {i + 1} expires {expires!r}: not a date like "
                                 "2027-01-31") from None
        out.append(Acceptance(str(entry["host"]), str(entry["task"]), str(entry["reason"]), expires))
    return out


def redact(text: str, secrets=()) -> str:
    """Values of secret-looking keys, and every known secret value, replaced by ********."""
    out = _SECRET_KEY.sub(lambda m: f"{m.group(1)}{m.group(2)}{m.group(3)}********", text)
    for secret in sorted({s for s in secrets if s and len(s) >= 6}, key=len, reverse=True):
        out = out.replace(secret, "********")
    return out


def _one_diff(res: dict) -> str:
    """One result's change as text: its diffs, else what a service module says it would do."""
    diffs = res.get("diff")
    if isinstance(diffs, dict):
        diffs = [diffs]
    parts = []
    for d in diffs or []:
        if not isinstance(d, dict):
            continue
        if d.get("prepared"):
            parts.append(str(d["prepared"]))
            continue
        before, after = d.get("before"), d.get("after")
        # the after header of a template is the controller's temporary file: name the target
        path = d.get("before_header") or d.get("after_header") or ""
        if isinstance(before, str) and isinstance(after, str):
            parts.append("".join(difflib.unified_diff(
                before.splitlines(True), after.splitlines(True), f"{path} (on the host)",
                f"{path} (wanted)")).rstrip("\n"))
        elif before is not None or after is not None:
            parts.append(f"{path}: {before!r} -> {after!r}" if path else f"{before!r} -> {after!r}")
    if not parts and res.get("state") and (res.get("name") or res.get("path")):
        status = res.get("status") or {}
        now = status.get("ActiveState") or status.get("SubState")
        parts.append(f"{res.get('name') or res.get('path')}: {now + ' -> ' if now else ''}{res['state']}")
    return "\n".join(p for p in parts if p)


def _diff_text(res: dict, secrets) -> str:
    if res.get("censored") or res.get("_ansible_no_log"):
        return "(hidden: the task is no_log)"
    parts = [_one_diff(res)]
    for item in res.get("results") or []:
        if not isinstance(item, dict) or not item.get("changed"):
            continue
        if item.get("censored") or item.get("_ansible_no_log"):
            parts.append(f"{item.get('_ansible_item_label', 'an item')}: (hidden: no_log)")
        else:
            parts.append(_one_diff(item))
    return redact("\n".join(p for p in parts if p), secrets)


def _unknown(res: dict) -> str | None:
    msg = str(res.get("msg") or "")
    if any(m in msg for m in _UNKNOWN_MESSAGES):
        return msg
    if res.get("skipped") and "ansible_check_mode" in str(res.get("false_condition") or ""):
        return f"runs only outside check mode (when: {res['false_condition']})"
    return None


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _says_changed(event: dict) -> bool:
    """A no_log result is censored down to one key, without its `changed`: the event's own
    output line still says it ("changed: [host]")."""
    return _ANSI.sub("", str(event.get("stdout") or "")).lstrip().startswith("changed:")


def entries(events, secrets=()) -> list[dict]:
    """ansible-runner events -> one entry per host and task that is not clean."""
    out = []
    for event in events:
        kind = event.get("event", "")
        data = event.get("event_data") or {}
        host = data.get("host") or data.get("remote_addr")
        if not host or not kind.startswith("runner_on_") or kind == "runner_on_start":
            continue
        res = data.get("res") or {}
        base = {"host": host, "role": data.get("role") or "", "task": data.get("task") or "",
                "path": data.get("task_path") or ""}
        if kind == "runner_on_unreachable":
            out.append({**base, "state": "unreachable", "detail": redact(str(res.get("msg", "")), secrets)})
        elif kind == "runner_on_failed" and not data.get("ignore_errors"):
            out.append({**base, "state": "failed", "detail": redact(str(res.get("msg", "")), secrets)})
        elif kind in ("runner_on_ok", "runner_on_skipped"):
            why = _unknown(res)
            if why:
                out.append({**base, "state": "unknown", "detail": why})
            elif res.get("changed") or _says_changed(event):
                out.append({**base, "state": "changed", "detail": _diff_text(res, secrets)})
    return out


def report(events, accepted: list[Acceptance] = (), today: date | None = None, secrets=(),
           hosts=()) -> dict:
    """The drift report: entries with accepted ones marked, per-host counts, the exit code."""
    today = today or date.today()
    found = entries(events, secrets)
    notes = []
    for entry in found:
        if entry["state"] not in ("changed", "unknown"):
            continue
        for rule in accepted:
            if rule.covers(entry["host"], entry["role"], entry["task"]):
                if rule.expires < today:
                    notes.append(f"accepted drift for {rule.host} / {rule.task} expired on "
                                 f"{rule.expires.isoformat()}: reported again")
                    continue
                entry["accepted"] = {"reason": rule.reason, "expires": rule.expires.isoformat()}
                entry["state"] = "accepted"
                break
    counts = {h: {"changed": 0, "unknown": 0, "accepted": 0, "failed": 0, "unreachable": 0}
              for h in sorted(set(hosts) | {e["host"] for e in found})}
    for entry in found:
        counts[entry["host"]][entry["state"]] += 1
    if any(c["failed"] or c["unreachable"] for c in counts.values()):
        code = ERROR
    elif any(c["changed"] or c["unknown"] for c in counts.values()):
        code = DRIFT
    else:
        code = CLEAN
    return {"exit_code": code, "status": {CLEAN: "clean", DRIFT: "drift", ERROR: "error"}[code],
            "hosts": counts, "entries": found, "notes": sorted(set(notes))}


def textfile(host_counts: dict, timestamp: float) -> str:
    """A node-exporter textfile for one host's counts."""
    lines = ["# HELP quantbot_drift_tasks Tasks of the last drift check per state.",
             "# TYPE quantbot_drift_tasks gauge"]
    for state in ("changed", "unknown", "accepted", "failed", "unreachable"):
        lines.append(f'quantbot_drift_tasks{{state="{state}"}} {host_counts.get(state, 0)}')
    lines += ["# HELP quantbot_drift_last_check_timestamp_seconds When the last drift check ran.",
              "# TYPE quantbot_drift_last_check_timestamp_seconds gauge",
              f"quantbot_drift_last_check_timestamp_seconds {timestamp:.0f}"]
    return "\n".join(lines) + "\n"


def known_secrets(state_dir: Path) -> list[str]:
    """The secrets the project generated for an environment (its state folder's secrets/), whose
    values are scrubbed from a report wherever they appear."""
    out = []
    for path in sorted((Path(state_dir) / "secrets").rglob("*")):
        if path.is_file():
            try:
                out += [line.strip() for line in path.read_text().splitlines() if line.strip()]
            except (OSError, UnicodeDecodeError):
                continue
    return out
