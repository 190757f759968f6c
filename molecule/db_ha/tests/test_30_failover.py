"""Failover drill: promote the replica while a client keeps writing; no committed row is lost."""

import time

from conftest import IP, Writer, failover, flat, local_sql, lost, module, now, playbook, psql


def test_failover_refused_without_confirmation():
    refused = playbook("dr_failover.yml", check=False)
    assert refused.returncode != 0
    assert "-e dr_confirm=failover" in flat(refused)
    assert local_sql("dbha-pg-1", "SELECT pg_is_in_recovery()").strip() == "f"


def test_failover_drill_loses_no_committed_row(app_password):
    # the client writes through the replica's pgBouncer and records each acknowledged commit
    writer = Writer("market.drill", via="dbha-pg-2", seconds=90, password=app_password)
    time.sleep(5)
    started = now("dbha-app-1")
    report = failover("-e", "dr_rpo_table=marketdata.market.drill")
    assert (report["old"], report["new"], report["state"]) == ("dbha-pg-1", "dbha-pg-2", "running"), report
    acked = writer.finish(after=now("dbha-app-1"))
    missing = lost(acked, "dbha-pg-2", writer.table)
    print(f"drill planned failover: RTO {report['rto']} s (client: {writer.outage(started)} s), RPO {report['rows']} "
          f"rows / {report['transactions']} transactions / {report['wal_bytes']} WAL bytes, {len(missing)} of "
          f"{len(acked)} acknowledged commits lost")
    assert report["rows"] == "0" and report["transactions"] == "0" and report["wal_bytes"] == "0"
    assert not missing, f"{len(missing)} acknowledged commits lost"
    assert any(t > started for _, t in acked), "writes resumed after the failover"
    stored = {int(x) for x in local_sql("dbha-pg-2", "SELECT id FROM market.drill").split()}

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
