"""Run playbooks programmatically through ansible-runner and get a typed result back.

    from quantbot_infra.runner import run_playbook
    result = run_playbook("site", env="dev", limit="class_pg", check=True)
    if not result.ok:
        for failure in result.failed_tasks:
            print(failure.host, failure.task, failure.message)

Secrets: pass them as ``secret_vars`` (written to a 0600 file outside the artifact directory
and deleted after the run) or keep them in Ansible Vault; tasks that use them set ``no_log``.
ansible-runner's env files, which would hold variables in clear, are never written.
"""

from __future__ import annotations

import getpass
import json
import os
import shlex
import socket
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import ansible_runner

from quantbot_infra import paths

EventCallback = Callable[[dict[str, Any]], None]

_STAT_KEYS = ("ok", "changed", "failures", "dark", "skipped", "rescued", "ignored")


@dataclass
class HostSummary:
    ok: int = 0
    changed: int = 0
    failed: int = 0
    unreachable: int = 0
    skipped: int = 0
    rescued: int = 0
    ignored: int = 0


@dataclass
class FailedTask:
    host: str
    task: str
    message: str
    unreachable: bool = False


@dataclass
class RunResult:
    playbook: str
    env: str
    status: str  # successful | failed | timeout | canceled
    rc: int
    hosts: dict[str, HostSummary]
    failed_tasks: list[FailedTask]
    duration: float
    artifact_dir: str
    check: bool = False
    facts: dict[str, dict[str, Any]] = field(default_factory=dict)
    # why a run stopped before any task (no host matched, a syntax error): Ansible's own words
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "successful" and self.rc == 0

    @property
    def changed(self) -> int:
        return sum(h.changed for h in self.hosts.values())

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["ok"] = self.ok
        data.pop("facts")
        return data


class RunError(RuntimeError):
    """A run could not be started (bad arguments); nothing was executed."""


def _host_summaries(stats: Mapping[str, Mapping[str, int]] | None) -> dict[str, HostSummary]:
    hosts: dict[str, HostSummary] = {}
    if not stats:
        return hosts
    for key in _STAT_KEYS:
        for host, count in (stats.get(key) or {}).items():
            h = hosts.setdefault(host, HostSummary())
            attr = {"failures": "failed", "dark": "unreachable"}.get(key, key)
            setattr(h, attr, count)
    return dict(sorted(hosts.items()))


def _failure_message(res: Mapping[str, Any]) -> str:
    if res.get("censored"):
        return str(res["censored"])
    for item in res.get("results") or []:
        if isinstance(item, dict) and item.get("failed"):
            label = item.get("_ansible_item_label", item.get("item", ""))
            return f"item {label}: {_failure_message(item)}"
    for key in ("msg", "stderr", "module_stderr", "reason"):
        value = res.get(key)
        if value:
            return str(value).strip().splitlines()[-1][:500] if key != "msg" else str(value)[:500]
    return "failed"


def _event_failure(event: Mapping[str, Any]) -> FailedTask | None:
    kind = event.get("event")
    data = event.get("event_data") or {}
    if kind == "runner_on_failed" and not data.get("ignore_errors"):
        unreachable = False
    elif kind == "runner_on_unreachable":
        unreachable = True
    else:
        return None
    return FailedTask(
        host=str(data.get("host", "?")),
        task=str(data.get("task", "?")),
        message=_failure_message(data.get("res") or {}),
        unreachable=unreachable,
    )


def _ansible_errors(stdout: str) -> list[str]:
    """Ansible's own error lines ('[ERROR]: …' / 'ERROR! …') in a run's output."""
    out = []
    for line in stdout.splitlines():
        line = line.strip()
        for mark in ("[ERROR]:", "ERROR!"):
            if line.startswith(mark):
                out.append(line[len(mark):].strip())
    return out


def _early_error(errors: list[str], *, limit: str | None, inventory: Path) -> str:
    """Why a run ended before touching any host, in the user's terms."""
    if any("no hosts to target" in e or "no hosts matched" in e for e in errors):
        if limit:
            return f"--limit {limit!r} matches no host of {inventory}: nothing was run"
        return f"the playbook's host pattern matches no host of {inventory}: nothing was run"
    return "; ".join(errors) or "the run ended before any host was contacted (see the artifacts)"


def _vault_password_file(state: Path) -> Path | None:
    explicit = os.environ.get("QB_VAULT_PASSWORD_FILE")
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise RunError(f"QB_VAULT_PASSWORD_FILE={explicit}: file not found")
        return path
    generated = state / "vault-pass"
    return generated if generated.is_file() else None


def run_playbook(
    playbook: str,
    env: str,
    *,
    limit: str | None = None,
    tags: list[str] | str | None = None,
    skip_tags: list[str] | str | None = None,
    extra_vars: Mapping[str, Any] | None = None,
    secret_vars: Mapping[str, Any] | None = None,
    check: bool = False,
    diff: bool = False,
    inventory: str | Path | None = None,
    on_event: EventCallback | None = None,
    quiet: bool = True,
    verbosity: int = 0,
    forks: int | None = None,
    timeout: int | None = None,
) -> RunResult:
    """Run ``playbook`` against environment ``env`` and return its :class:`RunResult`."""
    root = paths.project_dir()
    playbook_file = paths.playbook_path(playbook, root)
    inv = Path(inventory) if inventory else paths.inventory_dir(env, root)
    if not inv.exists():
        raise RunError(f"inventory {inv} not found")

    ident = time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
    # $QB_STATE_DIR relocates it, as it does the rest of the state
    state = paths.state_dir(env)
    private_dir = state / "runs"
    private_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(private_dir, 0o700)

    cmdline: list[str] = []
    vault_file = _vault_password_file(state)
    if vault_file:
        cmdline += ["--vault-password-file", str(vault_file)]
    if check:
        cmdline.append("--check")
    if diff:
        cmdline.append("--diff")
    for flag, names in (("--tags", tags), ("--skip-tags", skip_tags)):
        if names:
            cmdline += [flag, names if isinstance(names, str) else ",".join(names)]

    secret_file = None
    if secret_vars:
        fd, secret_file = tempfile.mkstemp(prefix="qb-secret-", suffix=".json")
        with os.fdopen(fd, "w") as fh:  # mkstemp makes it 0600
            json.dump(dict(secret_vars), fh)
        cmdline += ["-e", f"@{secret_file}"]

    facts: dict[str, dict[str, Any]] = {}
    failures: list[FailedTask] = []
    errors: list[str] = []

    def handle(event: dict[str, Any]) -> bool:
        failure = _event_failure(event)
        if failure:
            failures.append(failure)
        if event.get("event") == "verbose":
            errors.extend(_ansible_errors(event.get("stdout") or ""))
        data = event.get("event_data") or {}
        if event.get("event") == "runner_on_ok":
            res = data.get("res") or {}
            published = res.get("ansible_facts", {}).get("qb_report")
            if published is not None:
                facts.setdefault(str(data.get("host")), {}).update(published)
        if on_event:
            on_event(event)
        return True

    venv_bin = str(Path(sys.executable).parent)
    envvars = {
        "ANSIBLE_CONFIG": str(root / "ansible.cfg"),
        "PATH": venv_bin + os.pathsep + os.environ.get("PATH", ""),
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_NOCOLOR": "1",
    }
    started = time.monotonic()
    try:
        r = ansible_runner.run(
            private_data_dir=str(private_dir),
            project_dir=str(root),
            ident=ident,
            playbook=str(playbook_file),
            inventory=str(inv.resolve()),
            limit=limit,
            extravars=dict(extra_vars) if extra_vars else None,
            cmdline=shlex.join(cmdline) or None,
            envvars=envvars,
            suppress_env_files=True,
            event_handler=handle,
            quiet=quiet,
            verbosity=verbosity or None,
            forks=forks,
            timeout=timeout,
            rotate_artifacts=50,
        )
    finally:
        if secret_file:
            Path(secret_file).unlink(missing_ok=True)

    result = RunResult(
        playbook=str(playbook_file.relative_to(root)),
        env=env,
        status=r.status,
        rc=r.rc,
        hosts=_host_summaries(r.stats),
        failed_tasks=failures,
        duration=round(time.monotonic() - started, 2),
        artifact_dir=str(r.config.artifact_dir),
        check=check,
        facts=facts,
    )
    if not result.ok and not result.hosts:
        result.error = _early_error(errors, limit=limit, inventory=inv)
    _audit(result, state / "audit.log", limit=limit, tags=tags, skip_tags=skip_tags, extra_vars=extra_vars,
           secret_names=sorted(secret_vars or {}), inventory=inv)
    return result


def _audit(result: RunResult, log: Path, **request: Any) -> None:
    """Append one JSON line per run to .state/<env>/audit.log: who ran what, where, and how it
    went. Extra variables are recorded, secret ones by name only."""
    record = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "user": getpass.getuser(),
        "controller": socket.gethostname(),
        "env": result.env,
        "playbook": result.playbook,
        "inventory": str(request.pop("inventory")),
        "check": result.check,
        **{k: v for k, v in request.items() if v},
        "status": result.status,
        "rc": result.rc,
        "changed": result.changed,
        "failed_hosts": sorted({f.host for f in result.failed_tasks}),
        "error": result.error,
        "duration": result.duration,
        "artifact_dir": result.artifact_dir,
    }
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(fd, "a") as fh:
        fh.write(json.dumps(record, default=str) + "\n")

