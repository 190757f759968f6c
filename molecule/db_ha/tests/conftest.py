"""Helpers for the db_ha checks: hosts by name, the scenario's generated secrets, and the
project's playbooks run against the scenario's inventory."""

from __future__ import annotations

import itertools
import re
import shlex
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "_shared"))
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


class Writer:
    """A client on the app host that inserts one row at a time through a pgBouncer with the
    application's login (password in a 0600 .pgpass, never on a command line or in an
    environment) and records each acknowledged commit with the time it was acknowledged.
    Each attempt gives up after 3 s. The loop stops at the end of the commit in flight when told
    (`finish`: once writes have resumed after the fault), or by itself after `seconds`."""

    def __init__(self, table: str, via: str, seconds: int, password: str, unit: str = "qb-drill-writer"):
        self.app, self.table, self.unit = host("dbha-app-1"), table, unit
        self.log, self.stop_file = f"/root/{unit}.acked", f"/root/{unit}.stop"
        ok = psql("dbha-app-1", f"CREATE TABLE IF NOT EXISTS {table} (id bigint PRIMARY KEY); TRUNCATE {table}",
                  host_ip=self._primary_ip(), password=password)
        assert ok.rc == 0, ok.stderr
        self.app.check_output(f"umask 077; printf '%s' {shlex.quote(f'*:6432:marketdata:marketdata:{password}')}"
                              " > /root/.pgpass")
        loop = (
            f"i=0; end=$((SECONDS + {seconds})); while [ $SECONDS -lt $end ] && [ ! -e {self.stop_file} ]; "
            f"do i=$((i + 1)); "
            f"timeout 3 psql -X -q -At -w 'host={IP[via]} port=6432 dbname=marketdata user=marketdata "
            f"sslmode=require connect_timeout=2' -c \"INSERT INTO {table} VALUES ($i)\" >/dev/null 2>&1 "
            f"&& echo \"$i $(date +%s.%N)\" >> {self.log}; sleep 0.1; done"
        )
        self.app.check_output(f"rm -f {self.log} {self.stop_file}; printf '%s' {shlex.quote(loop)} > /root/{unit}.sh")
        self.app.check_output(f"systemd-run --unit {unit} --collect /bin/bash /root/{unit}.sh")

    @staticmethod
    def _primary_ip() -> str:
        for name in ("dbha-pg-1", "dbha-pg-2"):
            if host(name).run("su postgres -c \"psql -XAtc 'SELECT pg_is_in_recovery()'\"").stdout.strip() == "f":
                return IP[name]
        raise AssertionError("no running primary")

    def acked(self) -> list[tuple[int, float]]:
        out = self.app.run(f"cat {self.log}").stdout.split("\n")
        return [(int(i), float(t)) for i, t in (line.split() for line in out if line.strip())]

    def finish(self, after: float, writes: int = 15, timeout: float = 60) -> list[tuple[int, float]]:
        """Stop once `writes` commits were acknowledged after `after` (the app host's clock),
        or after `timeout` s; the acknowledged commits."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and sum(t > after for _, t in self.acked()) < writes:
            time.sleep(1)
        self.app.check_output(f"touch {self.stop_file}")
        return self.wait()

    def wait(self) -> list[tuple[int, float]]:
        for _ in range(300):
            if self.app.run(f"systemctl is-active {self.unit}").stdout.strip() != "active":
                break
            time.sleep(1)
        return self.acked()

    def outage(self, since: float) -> float:
        """The client's recovery time: the longest wait between two acknowledged commits from
        the last one before `since` on (a commit in flight at the fault may still be
        acknowledged right after it; the gap that follows is the outage)."""
        times = sorted(t for _, t in self.acked())
        before = [t for t in times if t <= since]
        after = [t for t in times if t > since]
        assert after, "no write was acknowledged after the fault"
        window = before[-1:] + after
        if len(window) == 1:
            return round(after[0] - since, 2)
        return round(max(b - a for a, b in itertools.pairwise(window)), 2)


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
