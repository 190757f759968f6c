"""Helpers for the db_ha checks: hosts by name, the scenario's generated secrets, and the
project's playbooks run against the scenario's inventory."""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "_shared"))
import pgwriter
from qbmolecule import ENV, INVENTORY, PROJECT, STATE, flat, module, playbook, recap
from qbmolecule import root_host as host

__all__ = ["ENV", "INVENTORY", "PROJECT", "STATE", "flat", "host", "module", "playbook", "recap"]

IP = {
    "dbha-pg-1": "10.240.97.11", "dbha-pg-2": "10.240.97.12", "dbha-redis-1": "10.240.97.21",
    "dbha-redis-2": "10.240.97.22", "dbha-redis-3": "10.240.97.23", "dbha-app-1": "10.240.97.31",
}


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


class Writer(pgwriter.Writer):
    """The shared live writer (molecule/_shared/pgwriter.py) on the app host, into a table it
    makes (emptied) on the current primary."""

    def __init__(self, table: str, via: str, seconds: int, password: str, unit: str = "qb-drill-writer"):
        ok = psql("dbha-app-1", f"CREATE TABLE IF NOT EXISTS {table} (id bigint PRIMARY KEY); TRUNCATE {table}",
                  host_ip=self._primary_ip(), password=password)
        assert ok.rc == 0, ok.stderr
        super().__init__("dbha-app-1", IP[via], table, seconds, password, unit)

    @staticmethod
    def _primary_ip() -> str:
        for name in ("dbha-pg-1", "dbha-pg-2"):
            if host(name).run("su postgres -c \"psql -XAtc 'SELECT pg_is_in_recovery()'\"").stdout.strip() == "f":
                return IP[name]
        raise AssertionError("no running primary")


REPORT = re.compile(
    r"failover (?P<old>\S+) -> (?P<new>\S+): RTO (?P<rto>[\d.]+) s, RPO (?P<rows>\S+) committed rows, "
    r"(?P<transactions>\S+) transactions \((?P<wal_bytes>\S+) WAL bytes\) lost; old primary (?P<state>\w+)(?P<rest>[^\"]*)")


def failover(*args: str) -> dict[str, str]:
    """Run dr_failover.yml (confirmed) and return the fields of the RTO/RPO line it prints."""
    result = playbook("dr_failover.yml", "-e", "dr_confirm=failover", *args)
    m = REPORT.search(flat(result))
    assert m, result.stdout[-3000:]
    return m.groupdict()


def lost(acked: list[tuple[int, float]], on: str, table: str) -> set[int]:
    """Acknowledged commits missing on member `on`."""
    stored = {int(x) for x in local_sql(on, f"SELECT id FROM {table}").split()}
    return {i for i, _ in acked} - stored


def now(on: str) -> float:
    return float(host(on).check_output("date +%s.%N"))
