"""Crash drills under a live writer that commits through pgBouncer with the application's login
and records every acknowledged commit: the primary's postmaster killed with SIGKILL (failover,
then rejoin with pg_rewind), the only replica killed while writes go on, and the primary's
whole host killed (failover without it, rejoin when it returns). Each prints the
client's recovery time and the acknowledged commits lost (zero with synchronous replication)."""

import subprocess
import time

from conftest import IP, Writer, failover, host, lost, module, now, playbook, psql

DATA = "data_directory=/var/lib/postgresql/15/main"
MEMBERS = ("dbha-pg-1", "dbha-pg-2")


def roles() -> tuple[str, str]:
    """(primary, replica) as the members themselves say."""
    facts = {m: module(m, "qb_pg_replication_facts", DATA)["replication"] for m in MEMBERS}
    primary = next(m for m, f in facts.items() if f["role"] == "primary")
    return primary, next(m for m in MEMBERS if m != primary)


def kill_postmaster(member: str) -> float:
    at = now(member)
    host(member).check_output("kill -KILL $(head -1 /var/lib/postgresql/15/main/postmaster.pid)")
    return at


def assert_in_sync(primary: str, replica: str) -> None:
    p = module(primary, "qb_pg_replication_facts", DATA)["replication"]
    r = module(replica, "qb_pg_replication_facts", DATA)["replication"]
    assert p["role"] == "primary" and p["sync_replicas"] == [replica], p
    assert r["role"] == "replica" and r["streaming"] and r["timeline"] == p["timeline"], r


def test_sigkill_of_the_primary_fails_over_rejoins_and_loses_no_acknowledged_commit(app_password):
    primary, replica = roles()
    writer = Writer("market.drill_sigkill", via=replica, seconds=120, password=app_password)
    time.sleep(5)
    killed_at = kill_postmaster(primary)
    time.sleep(1)
    # a crashed member is a state, not an error: stale socket, pg_control still "in production"
    down = module(primary, "qb_pg_replication_facts", DATA)["replication"]
    assert down["state"] == "down" and down["down_reason"] == "crashed", down
    assert down["cluster_state"] == "in production"

    report = failover()
    assert (report["old"], report["new"], report["state"]) == (primary, replica, "crashed")
    assert report["transactions"].isdigit() and report["wal_bytes"].isdigit(), report
    acked = writer.finish(after=now("dbha-app-1"))
    missing = lost(acked, replica, writer.table)
    outage = writer.outage(killed_at)
    print(f"drill SIGKILL primary postmaster: client RTO {outage} s (playbook: {report['rto']} s from its "
          f"start), {len(missing)} of {len(acked)} acknowledged commits lost; pg_rewind discarded "
          f"{report['transactions']} unacknowledged transactions ({report['wal_bytes']} WAL bytes)")
    assert not missing, f"{len(missing)} acknowledged commits lost"
    assert sum(t > killed_at + outage for _, t in acked) > 10, "writes resumed on the new primary"
    # the crashed member was rewound in the same run and follows as the synchronous replica
    assert_in_sync(replica, primary)


def test_only_replica_killed_writes_wait_for_it_and_none_is_lost(app_password):
    """With one synchronous replica (ANY 1), commits wait while it is down: no write is
    acknowledged that only the primary holds. (With two replicas a commit needs either one and
    writes go on; see the postgresql role's README.)"""
    primary, replica = roles()
    writer = Writer("market.drill_replica", via=primary, seconds=45, password=app_password)
    time.sleep(5)
    killed_at = kill_postmaster(replica)
    time.sleep(10)
    stalled = [i for i, t in writer.acked() if killed_at + 3.5 < t]
    restarted_at = now(replica)
    host(replica).check_output("systemctl start postgresql@15-main")
    acked = writer.finish(after=restarted_at, writes=10)
    missing = lost(acked, primary, writer.table)
    resumed = round(min(t for _, t in acked if t > restarted_at) - restarted_at, 2)
    print(f"drill SIGKILL only replica: {len(stalled)} commits acknowledged while it was down, writes resumed "
          f"{resumed} s after its restart, {len(missing)} of {len(acked)} acknowledged commits lost")
    assert not stalled, "a commit was acknowledged without its synchronous replica"
    assert not missing
    assert_in_sync(primary, replica)


def test_primary_host_killed_fails_over_and_the_returned_host_rejoins(app_password):
    """The primary's whole host dies (its container killed): the failover goes on without it, the
    new primary takes writes on its own (postgresql_synchronous_strict off), and when the host
    returns - booting its old primary on the old timeline - a rejoin rewinds it into a replica."""
    primary, replica = roles()
    writer = Writer("market.drill_host", via=replica, seconds=75, password=app_password)
    time.sleep(5)
    killed_at = now(replica)
    subprocess.run(["docker", "kill", primary], check=True, capture_output=True)
    report = failover()
    assert (report["old"], report["new"], report["state"]) == (primary, replica, "unreachable")
    assert report["rest"].startswith(", rejoin it"), report
    acked = writer.finish(after=now("dbha-app-1"))
    missing = lost(acked, replica, writer.table)
    outage = writer.outage(killed_at)
    print(f"drill primary host killed: client RTO {outage} s (playbook: {report['rto']} s from its start), "
          f"{len(missing)} of {len(acked)} acknowledged commits lost")
    assert not missing, f"{len(missing)} acknowledged commits lost"

    # the host comes back: its server restarts as a primary of the old timeline
    subprocess.run(["docker", "start", primary], check=True, capture_output=True)
    host(primary).run("systemctl is-system-running --wait")
    returned_at = now(replica)
    rejoin = playbook("dr_failover.yml", "-e", "dr_confirm=failover", "-e", "dr_action=rejoin")
    assert "failed=0" in rejoin.stdout
    print(f"drill primary host killed: the returned host rejoined as a replica in {now(replica) - returned_at:.1f} s")
    assert_in_sync(replica, primary)
    for via in MEMBERS:
        out = psql("dbha-app-1", "SELECT host(inet_server_addr())", host_ip=IP[via], port=6432,
                   password=app_password)
        assert out.rc == 0 and out.stdout.strip() == IP[replica], out.stdout + out.stderr
