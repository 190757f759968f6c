"""Failover drill: promote the replica while a client keeps writing; no committed row is lost."""

import re
import shlex
import time

from conftest import IP, flat, host, local_sql, module, playbook, psql

WRITER = "qb-drill-writer"


def test_failover_refused_without_confirmation():
    refused = playbook("dr_failover.yml", check=False)
    assert refused.returncode != 0
    assert "-e dr_confirm=failover" in flat(refused)
    assert local_sql("dbha-pg-1", "SELECT pg_is_in_recovery()").strip() == "f"


def test_failover_drill_loses_no_committed_row(app_password):
    app = host("dbha-app-1")
    ok = psql("dbha-app-1", "CREATE TABLE IF NOT EXISTS market.drill (id bigint PRIMARY KEY); TRUNCATE market.drill",
              host_ip=IP["dbha-pg-1"], password=app_password)
    assert ok.rc == 0, ok.stderr
    # the client writes through the replica's pgBouncer and records each acknowledged commit;
    # each attempt gives up after 3 s, and the client stops by itself after 150 s
    app.run(f"umask 077; printf '%s' '{app_password}' > /root/.drillpw")
    loop = (
        "i=0; end=$((SECONDS + 150)); while [ $SECONDS -lt $end ]; do i=$((i + 1)); "
        f"PGPASSWORD=$(cat /root/.drillpw) timeout 3 psql -X -q -At -w 'host={IP['dbha-pg-2']} port=6432 dbname=marketdata "
        "user=marketdata sslmode=require connect_timeout=2' -c \"INSERT INTO market.drill VALUES ($i)\" "
        ">/dev/null 2>&1 && echo $i >> /root/acked; sleep 0.1; done"
    )
    app.check_output(f"rm -f /root/acked; printf '%s' {shlex.quote(loop)} > /root/drill.sh")
    app.check_output(f"systemd-run --unit {WRITER} --collect /bin/bash /root/drill.sh")
    time.sleep(5)

    result = playbook("dr_failover.yml", "-e", "dr_confirm=failover", "-e", "dr_rpo_table=marketdata.market.drill")
    m = re.search(r"failover dbha-pg-1 -> dbha-pg-2: RTO ([\d.]+) s, RPO (\d+) committed rows \((\d+) WAL bytes\) lost",
                  flat(result))
    assert m, result.stdout[-3000:]
    print(f"drill: RTO {m.group(1)} s, RPO {m.group(2)} rows / {m.group(3)} WAL bytes")
    assert m.group(2) == "0" and m.group(3) == "0"
    acked_at_failover = len(app.run("cat /root/acked").stdout.split())

    # the writer goes on against the new primary
    for _ in range(180):
        if app.run(f"systemctl is-active {WRITER}").stdout.strip() != "active":
            break
        time.sleep(1)
    acked = [int(x) for x in app.check_output("cat /root/acked").split()]
    app.run("rm -f /root/.drillpw")
    assert len(acked) > acked_at_failover > 0, "writes resumed after the failover"
    stored = {int(x) for x in local_sql("dbha-pg-2", "SELECT id FROM market.drill").split()}
    missing = set(acked) - stored
    assert not missing, f"{len(missing)} acknowledged commits lost"

    # new roles: pg-2 primary with pg-1 as its synchronous replica (rejoined with pg_rewind)
    primary = module("dbha-pg-2", "qb_pg_replication_facts", "data_directory=/var/lib/postgresql/15/main")
    assert primary["replication"]["role"] == "primary"
    assert primary["replication"]["sync_replicas"] == ["dbha-pg-1"]
    replica = module("dbha-pg-1", "qb_pg_replication_facts", "data_directory=/var/lib/postgresql/15/main")
    assert replica["replication"]["role"] == "replica" and replica["replication"]["streaming"]
    assert replica["replication"]["timeline"] == primary["replication"]["timeline"] >= 2
    assert local_sql("dbha-pg-1", "SELECT count(*) FROM market.drill").strip() == str(len(stored))


def test_pgbouncers_point_at_the_new_primary(app_password):
    for via in ("dbha-pg-1", "dbha-pg-2"):
        out = psql("dbha-app-1", "SELECT host(inet_server_addr())", host_ip=IP[via], port=6432,
                   password=app_password)
        assert out.rc == 0, out.stderr
        assert out.stdout.strip() == IP["dbha-pg-2"]
