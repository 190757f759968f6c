"""One patch run of the whole scenario, as an operator lives it: a bad release on the canary
breaks its node exporter, the gate halts the run with no other host touched and leaves a resume
point; after the repair --resume completes it - the PostgreSQL replica, a switchover with a
live writer losing no acknowledged commit, the old primary; the Redis replicas, a sentinel
failover, the old primary last - restarting only the service that runs replaced code."""

import json
import shlex
import sys
from pathlib import Path

from conftest import (
    HOSTS,
    IP,
    cli_json,
    host,
    installed,
    pg_primary,
    records,
    redis_primary,
    secret,
    versions,
    wait_for,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "_shared"))
from pgwriter import Writer

from quantbot_infra.cli import _patch_plan_text, _patch_summary_text

CANARY = "pt-trading-1"
MARKER = "/etc/qb-demo/break-node-exporter"
RUN = {}  # what the halted run planned, for the resumed one


def psql(sql: str, on: str) -> str:
    return host(on).check_output(f"su postgres -c {shlex.quote(f'psql -X -At -d marketdata -c {shlex.quote(sql)}')}")


def test_a_bad_release_on_the_canary_halts_the_run_with_no_other_host_touched():
    host(CANARY).check_output(f"mkdir -p /etc/qb-demo && touch {MARKER}")
    old = installed()
    rc, out = cli_json("patch")
    assert rc == 2, json.dumps(out["run"])[-2000:]
    new = out["plan"]["hosts"][CANARY]["upgrades"][0]["candidate"]
    RUN.update(old=old, new=new, plan=out["plan"], pg_primary=pg_primary(), redis_primary=redis_primary())
    summary = out["summary"]
    # the whole run's plan, as `quantbot-infra patch` shows it before touching a host
    print(_patch_plan_text(out["plan"]))
    print("halted run:", json.dumps(summary["batches"][:2]))
    assert summary["hosts_failed"] == [CANARY] and summary["hosts_patched"] == []
    assert len(summary["hosts_not_reached"]) == len(HOSTS) - 1
    assert "node exporter of pt-trading-1" in records()[CANARY]["why"]
    assert out["resume"]["left"][0] == CANARY and len(out["resume"]["left"]) == len(HOSTS)
    now = versions()
    assert now.pop(CANARY) == new and set(now.values()) == {old}, now
    assert host(CANARY).run("systemctl is-active prometheus-node-exporter").stdout.strip() != "active"


def test_resume_completes_the_run_replica_first_under_a_live_writer():
    # the repair: the release's trigger removed, the exporter started again
    host(CANARY).check_output(f"rm -f {MARKER} && systemctl start prometheus-node-exporter")
    psql("CREATE TABLE IF NOT EXISTS market.patch_drill (id bigint PRIMARY KEY); TRUNCATE market.patch_drill; "
         "GRANT INSERT, SELECT ON market.patch_drill TO marketdata", on=pg_primary())
    # through the replica's pgBouncer: the member the switchover promotes
    replica = ({"pt-pg-1", "pt-pg-2"} - {pg_primary()}).pop()
    writer = Writer("pt-trading-2", IP[replica], "market.patch_drill", seconds=900,
                    password=secret("postgresql", "marketdata"), unit="qb-patch-writer")
    wait_for("the writer's first commits", lambda: len(writer.acked()) >= 5, timeout=60)
    rc, out = cli_json("patch", "--resume")
    acked = writer.stop()
    assert rc == 0, json.dumps(out["run"])[-3000:]
    summary = out["summary"]
    print(_patch_summary_text(out))
    assert summary["result"] == "patched" and sorted(summary["hosts_patched"]) == sorted(HOSTS)
    old, new = RUN["old"], RUN["new"]
    assert installed() == new

    # the order: the canary again (its gates), then as planned; the primaries after their switchovers
    plan = out["plan"]
    assert plan["batches"][0]["hosts"] == [CANARY] and plan["batches"][0]["kind"] == "canary"
    order = [name for batch in plan["batches"] for name in batch["hosts"]]
    pg_old, redis_old = RUN["pg_primary"], RUN["redis_primary"]
    assert all(order.index(n) < order.index(pg_old) for n in ("pt-pg-1", "pt-pg-2") if n != pg_old)
    assert all(order.index(n) < order.index(redis_old) for n in ("pt-redis-1", "pt-redis-2", "pt-redis-3")
               if n != redis_old)
    recs = records()
    print(f"the record of {pg_old}:", json.dumps(recs[pg_old], indent=1))
    started = sorted(recs, key=lambda h: recs[h]["started"])
    assert started == order, started

    # PostgreSQL: the switchover lost no acknowledged commit
    pg = next(s for s in out["switchovers"] if "rto_seconds" in s)
    assert pg["old_primary"] == RUN["pg_primary"] and pg["new_primary"] != pg["old_primary"]
    stored = {int(x) for x in psql("SELECT id FROM market.patch_drill", on=pg["new_primary"]).split()}
    lost = {i for i, _ in acked} - stored
    print(f"switchover {pg['old_primary']} -> {pg['new_primary']}: RTO {pg['rto_seconds']} s, rows lost (dr report) {pg['rpo_rows']}, "
          f"writer: {len(acked)} acknowledged commits, {len(lost)} missing")
    assert len(acked) > 20 and not lost and str(pg["rpo_rows"]) == "0"
    assert psql("SELECT pg_is_in_recovery()", on=pg["old_primary"]) == "t"

    # Redis: the old primary was patched as a replica, after the failover
    redis = next(s for s in out["switchovers"] if "seconds" in s)
    print(f"redis failover {redis['from']} -> {redis['to']}: {redis['seconds']} s")
    assert redis["from"] == RUN["redis_primary"] and redis["to"] != redis["from"]
    assert redis_primary() == redis["to"]

    # restarts only where replaced code ran; no reboot on a container
    for name, rec in recs.items():
        assert rec["result"] == "patched" and not rec["rebooted"], rec
        assert rec["services_restarted"] == ["qb-demo.service"], rec
        # exactly what the first plan listed (the canary's from its first turn, kept on resume)
        planned = [(u["name"], u["current"], u["candidate"]) for u in RUN["plan"]["hosts"][name]["upgrades"]]
        assert planned == [("qb-demo-service", old, new)]
        assert [(p["name"], p["before"], p["after"]) for p in rec["packages"]] == planned, rec
        assert "node exporter scraped again" in rec["gates_passed"]
    assert "postgresql replication and pgBouncer" in recs[pg_old]["gates_passed"]
    assert "redis role, link and sentinels" in recs[redis_old]["gates_passed"]
    assert "last healthy gateway" in recs["pt-vpn-1"]["gates_passed"]


def test_a_second_run_finds_nothing_to_do():
    rc, out = cli_json("patch", "--plan")
    assert rc == 0 and out["plan"]["batches"] == [] and sorted(out["plan"]["up_to_date"]) == sorted(HOSTS)
