"""Helpers for the db_ha checks: hosts by name, the scenario's generated secrets, and the
project's playbooks run against the scenario's inventory."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import pytest
import testinfra

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "_shared"))
from qbmolecule import ENV, INVENTORY, PROJECT, STATE, flat, module, playbook, recap

__all__ = ["ENV", "INVENTORY", "PROJECT", "STATE", "flat", "host", "module", "playbook", "recap"]

IP = {
    "dbha-pg-1": "10.240.97.11", "dbha-pg-2": "10.240.97.12", "dbha-redis-1": "10.240.97.21",
    "dbha-redis-2": "10.240.97.22", "dbha-redis-3": "10.240.97.23", "dbha-app-1": "10.240.97.31",
}


def host(name: str):
    """The test's own view of a host: docker exec as root, so the checks (which act as clients
    and as an attacker) never go through the sudo the playbooks use and never reach its log."""
    return testinfra.get_host(f"docker://root@{name}")


def secret(kind: str, name: str) -> str:
    return (STATE / "secrets" / kind / name).read_text().strip()


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
