"""A live writer for the scenarios' PostgreSQL drills: a client on an application host that
inserts one row at a time through a pgBouncer with the application's login (password in a 0600
.pgpass, never on a command line or in an environment) and records each acknowledged commit with
the time it was acknowledged. Each attempt gives up after 3 s. The loop stops at the end of the
commit in flight when told (`finish`: once writes have resumed after the fault, or `stop`), or by
itself after `seconds`."""

from __future__ import annotations

import itertools
import shlex
import time

from qbmolecule import root_host as host


class Writer:
    def __init__(self, app: str, target_ip: str, table: str, seconds: int, password: str,
                 unit: str = "qb-drill-writer", db: str = "marketdata", user: str = "marketdata"):
        self.app, self.table, self.unit = host(app), table, unit
        self.log, self.stop_file = f"/root/{unit}.acked", f"/root/{unit}.stop"
        self.app.check_output(f"umask 077; printf '%s' {shlex.quote(f'*:6432:{db}:{user}:{password}')}"
                              " > /root/.pgpass")
        loop = (
            f"i=0; end=$((SECONDS + {seconds})); while [ $SECONDS -lt $end ] && [ ! -e {self.stop_file} ]; "
            f"do i=$((i + 1)); "
            f"timeout 3 psql -X -q -At -w 'host={target_ip} port=6432 dbname={db} user={user} "
            f"sslmode=require connect_timeout=2' -c \"INSERT INTO {table} VALUES ($i)\" >/dev/null 2>&1 "
            f"&& echo \"$i $(date +%s.%N)\" >> {self.log}; sleep 0.1; done"
        )
        self.app.check_output(f"rm -f {self.log} {self.stop_file}; printf '%s' {shlex.quote(loop)} > /root/{unit}.sh")
        self.app.check_output(f"systemd-run --unit {unit} --collect /bin/bash /root/{unit}.sh")

    def acked(self) -> list[tuple[int, float]]:
        out = self.app.run(f"cat {self.log}").stdout.split("\n")
        return [(int(i), float(t)) for i, t in (line.split() for line in out if line.strip())]

    def finish(self, after: float, writes: int = 15, timeout: float = 60) -> list[tuple[int, float]]:
        """Stop once `writes` commits were acknowledged after `after` (the app host's clock),
        or after `timeout` s; the acknowledged commits."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and sum(t > after for _, t in self.acked()) < writes:
            time.sleep(1)
        return self.stop()

    def stop(self) -> list[tuple[int, float]]:
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
