"""One patch run of the whole scenario, as an operator lives it: a bad release on the canary
breaks its node exporter, the gate halts the run with no other host touched and leaves a resume
point; after the repair --resume completes it - the PostgreSQL replica, a switchover with a
live writer losing no acknowledged commit, the old primary; the Redis replicas, a sentinel
failover, the old primary last - restarting only the service that runs replaced code."""

import json
import shlex
import sys
from pathlib import Path

from conftest import HOSTS, IP, cli_json, host, records, secret, versions, wait_for

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "_shared"))
from pgwriter import Writer

CANARY = "pt-trading-1"
MARKER = "/etc/qb-demo/break-node-exporter"


def psql(sql: str, on: str = "pt-pg-1") -> str:
    return host(on).check_output(f"su postgres -c {shlex.quote(f'psql -X -At -d marketdata -c {shlex.quote(sql)}')}")


def test_a_bad_release_on_the_canary_halts_the_run_with_no_other_host_touched():
    host(CANARY).check_output(f"mkdir -p /etc/qb-demo && touch {MARKER}")
    rc, out = cli_json("patch")
    assert rc == 2, json.dumps(out["run"])[-2000:]
    summary = out["summary"]
    print("halted run:", json.dumps(summary["batches"][:2]))
    assert summary["hosts_failed"] == [CANARY] and summary["hosts_patched"] == []
    assert len(summary["hosts_not_reached"]) == len(HOSTS) - 1
    assert "node exporter of pt-trading-1" in records()[CANARY]["why"]
    assert out["resume"]["left"][0] == CANARY and len(out["resume"]["left"]) == len(HOSTS)
    now = versions()
    assert now.pop(CANARY) == "1.1" and set(now.values()) == {"1.0"}, now
    assert host(CANARY).run("systemctl is-active prometheus-node-exporter").stdout.strip() != "active"


def test_resume_completes_the_run_replica_first_under_a_live_writer():
    # the repair: the release's trigger removed, the exporter started again
    host(CANARY).check_output(f"rm -f {MARKER} && systemctl start prometheus-node-exporter")
    psql("CREATE TABLE IF NOT EXISTS market.patch_drill (id bigint PRIMARY KEY); "
         "GRANT INSERT, SELECT ON market.patch_drill TO marketdata")
    writer = Writer("pt-trading-2", IP["pt-pg-2"], "market.patch_drill", seconds=900,
                    password=secret("postgresql", "marketdata"), unit="qb-patch-writer")
    wait_for("the writer's first commits", lambda: len(writer.acked()) >= 5, timeout=60)
    rc, out = cli_json("patch", "--resume")
    acked = writer.stop()
    assert rc == 0, json.dumps(out["run"])[-3000:]
    summary = out["summary"]
    for batch in summary["batches"]:
        print(f"batch {batch['index']} ({batch['kind']}, {batch['action']}): {batch['hosts']} {batch['wall_s']} s")
    assert summary["result"] == "patched" and sorted(summary["hosts_patched"]) == sorted(HOSTS)
    assert set(versions().values()) == {"1.1"}

    # the order: the canary again (its gates), then as planned; the primaries after their switchovers
    plan = out["plan"]
    assert plan["batches"][0]["hosts"] == [CANARY] and plan["batches"][0]["kind"] == "canary"
    order = plan["order"]
    assert order.index("pt-pg-2") < order.index("pt-pg-1")
    assert order.index("pt-redis-2") < order.index("pt-redis-1") and order.index("pt-redis-3") < order.index("pt-redis-1")
    recs = records()
    started = sorted(recs, key=lambda h: recs[h]["started"])
    assert started == order, started

    # PostgreSQL: the switchover lost no acknowledged commit
    pg = next(s for s in out["switchovers"] if "rto_seconds" in s)
    assert (pg["old_primary"], pg["new_primary"]) == ("pt-pg-1", "pt-pg-2")
    stored = {int(x) for x in psql("SELECT id FROM market.patch_drill", on="pt-pg-2").split()}
    lost = {i for i, _ in acked} - stored
    print(f"switchover pt-pg-1 -> pt-pg-2: RTO {pg['rto_seconds']} s, rows lost (dr report) {pg['rpo_rows']}, "
          f"writer: {len(acked)} acknowledged commits, {len(lost)} missing")
    assert len(acked) > 20 and not lost and str(pg["rpo_rows"]) == "0"
    assert psql("SELECT pg_is_in_recovery()", on="pt-pg-1") == "t"

    # Redis: the old primary was patched as a replica, after the failover
    redis = next(s for s in out["switchovers"] if "seconds" in s)
    print(f"redis failover {redis['from']} -> {redis['to']}: {redis['seconds']} s")
    assert redis["from"] == "pt-redis-1" and redis["to"] in ("pt-redis-2", "pt-redis-3")

    # restarts only where replaced code ran; no reboot on a container
    for name, rec in recs.items():
        assert rec["result"] == "patched" and not rec["rebooted"], rec
        if name != CANARY:  # the canary was restarted by the halted run
            assert rec["services_restarted"] == ["qb-demo.service"], rec
        assert rec["packages"] == [{"name": "qb-demo-service", "before": "1.0" if name != CANARY else "1.1",
                                    "after": "1.1"}], rec
        assert "node exporter scraped again" in rec["gates_passed"]
    assert "postgresql replication and pgBouncer" in recs["pt-pg-1"]["gates_passed"]
    assert "redis role, link and sentinels" in recs["pt-redis-1"]["gates_passed"]
    assert "last healthy gateway" in recs["pt-vpn-1"]["gates_passed"]


def test_a_second_run_finds_nothing_to_do():
    rc, out = cli_json("patch", "--plan")
    assert rc == 0 and out["plan"]["batches"] == [] and sorted(out["plan"]["up_to_date"]) == sorted(HOSTS)
