"""Helpers for the db_ha checks: hosts by name, the scenario's generated secrets, and the
project's playbooks run against the scenario's inventory."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest
import testinfra

INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
STATE = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])
PROJECT = Path(os.environ["MOLECULE_PROJECT_DIRECTORY"])
IP = {
    "dbha-pg-1": "10.240.97.11", "dbha-pg-2": "10.240.97.12", "dbha-redis-1": "10.240.97.21",
    "dbha-redis-2": "10.240.97.22", "dbha-redis-3": "10.240.97.23", "dbha-app-1": "10.240.97.31",
}
ENV = {
    **os.environ,
    "ANSIBLE_INVENTORY_ENABLED": "ansible.builtin.yaml,ansible.builtin.ini",
    "ANSIBLE_ROLES_PATH": str(PROJECT / "roles"),
    "ANSIBLE_LIBRARY": str(PROJECT / "plugins" / "modules"),
    "ANSIBLE_MODULE_UTILS": str(PROJECT / "plugins" / "module_utils"),
    "ANSIBLE_FILTER_PLUGINS": str(PROJECT / "plugins" / "filter"),
    "ANSIBLE_LOOKUP_PLUGINS": str(PROJECT / "plugins" / "lookup"),
    "ANSIBLE_NOCOLOR": "1",
    "ANSIBLE_FORCE_COLOR": "0",
}


def host(name: str):
    return testinfra.get_host(f"ansible://{name}?ansible_inventory={INVENTORY}")


def secret(kind: str, name: str) -> str:
    return (STATE / "secrets" / kind / name).read_text().strip()


def playbook(name: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    cmd = ["ansible-playbook", "-i", INVENTORY, str(PROJECT / "playbooks" / name), *args]
    result = subprocess.run(cmd, capture_output=True, text=True, env=ENV, cwd=PROJECT, timeout=900)
    if check:
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    return result


def flat(result: subprocess.CompletedProcess) -> str:
    """A playbook's output with its line wrapping undone (messages may be folded)."""
    return " ".join((result.stdout + "\n" + result.stderr).split())


def recap(output: str) -> dict[str, dict[str, int]]:
    """PLAY RECAP counters by host."""
    out = {}
    for line in output.splitlines():
        m = re.match(r"^(\S+)\s+:\s+(.*)$", line)
        if m and "ok=" in m.group(2):
            out[m.group(1)] = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m.group(2))}
    return out


def module(hostname: str, name: str, args: str, *extra: str) -> dict:
    """Run one module ad hoc and return its result."""
    cmd = ["ansible", "-i", INVENTORY, hostname, "-m", name, "-a", args, *extra]
    env = {**ENV, "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1", "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json"}
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=PROJECT, timeout=120)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    return json.JSONDecoder().raw_decode(result.stdout[result.stdout.index("{"):])[0]["plays"][0]["tasks"][0]["hosts"][hostname]


def psql(on: str, sql: str, *, host_ip: str, port: int = 5432, user: str = "marketdata",
         db: str = "marketdata", password: str | None = None, sslmode: str = "require"):
    """psql from host `on` over the network; returns testinfra's CommandResult."""
    conninfo = f"host={host_ip} port={port} dbname={db} user={user} sslmode={sslmode} connect_timeout=5"
    pw = "" if password is None else f"PGPASSWORD={shlex.quote(password)} "
    return host(on).run(f"{pw}psql -X -q -At -w {shlex.quote(conninfo)} -c {shlex.quote(sql)}")


def local_sql(on: str, sql: str, db: str = "marketdata") -> str:
    """SQL as the postgres superuser over the member's own socket."""
    return host(on).check_output(f"su postgres -c {shlex.quote(f'psql -X -At -d {db} -c {shlex.quote(sql)}')}")


def rcli(on: str, target: str, *args: str, user: str | None = "admin", password: str | None = None,
         port: int = 6379):
    auth = ""
    if user:
        auth = f"REDISCLI_AUTH={shlex.quote(password or secret('redis', user))} "
    userflag = f"--user {user} " if user else ""
    cmd = f"{auth}redis-cli --no-auth-warning -h {target} -p {port} {userflag}" + " ".join(shlex.quote(a) for a in args)
    return host(on).run(cmd)


@pytest.fixture(scope="session")
def app_password():
    return secret("postgresql", "marketdata")
