"""Induced faults: each alert really fires in Prometheus, reaches Alertmanager, is delivered to
the webhook sink and resolves after the repair. Prints the time from fault to delivery."""

from __future__ import annotations

import itertools
import subprocess
import time

from conftest import am, delivered, firing, host, status_cli, wait_for

PRIMARY, REPLICA = "pt-pg-1", "pt-pg-2"


def test_watchdog_is_delivered_continuously():
    """The Watchdog's route ticks every interval (10 s here) and re-sends it at the first tick
    after the interval has passed: every two intervals, or three when a tick lands just short of
    it. A dead-man's switch that pages after four intervals of silence must never be woken while
    the pipeline works. The gaps are measured between deliveries: the first one's delay from an
    arbitrary start says nothing of the silence before it."""
    start = time.time()
    got = wait_for("three Watchdog deliveries", lambda: len(delivered("Watchdog", start, path="/watchdog")) >= 3
                   and delivered("Watchdog", start, path="/watchdog"), timeout=130)
    gaps = [b["at"] - a["at"] for a, b in itertools.pairwise(got)]
    # for the record: the silence across the start, from the last delivery before it (the
    # tests before this one reconverge the monitoring host)
    before = [d["at"] for d in delivered("Watchdog", 0, path="/watchdog") if d["at"] < start]
    across = f"{got[0]['at'] - max(before):.1f} s after the one before it" if before else "the first ever"
    print(f"\nWatchdog: first delivery {got[0]['at'] - start:.1f} s after the start ({across}), then gaps "
          f"{[round(g, 1) for g in gaps]} s")
    assert max(gaps) < 40, f"the Watchdog went unsent for {max(gaps):.0f} s (four intervals)"
    assert not delivered("Watchdog", start, path="/page")


def test_node_exporter_stopped_pages_host_down_then_resolves():
    node = host(REPLICA)
    start = time.time()
    node.run("systemctl stop prometheus-node-exporter")
    try:
        wait_for("HostDown firing in Prometheus", lambda: firing("HostDown", host=REPLICA), timeout=90)
        got = wait_for("HostDown delivered", lambda: delivered("HostDown", start, path="/page", host=REPLICA),
                       timeout=60)
        print(f"\nnode exporter stopped -> HostDown delivered to the pager after {got[0]['at'] - start:.1f} s")
        rc, status = status_cli()
        assert rc == 3
        assert f"{REPLICA}/node" in status["targets_down"]
        assert {"alertname": "HostDown", "severity": "critical", "host": REPLICA} in [
            {k: a[k] for k in ("alertname", "severity", "host")} for a in status["alerts"]]
    finally:
        node.run("systemctl start prometheus-node-exporter")
    repaired = time.time()
    got = wait_for("HostDown resolved", lambda: delivered("HostDown", repaired, status="resolved", host=REPLICA),
                   timeout=90)
    print(f"node exporter started -> resolved delivered after {got[0]['at'] - repaired:.1f} s")


def test_replica_postgresql_stopped_pages_replication_broken_then_resolves():
    replica = host(REPLICA)
    start = time.time()
    replica.run("systemctl stop postgresql@15-main")
    try:
        got = wait_for("PostgreSQLReplicationBroken delivered",
                       lambda: delivered("PostgreSQLReplicationBroken", start, path="/page", host=PRIMARY),
                       timeout=120)
        print(f"\nreplica stopped -> PostgreSQLReplicationBroken (on {PRIMARY}) delivered after "
              f"{got[0]['at'] - start:.1f} s")
        assert firing("PostgreSQLDown", host=REPLICA)
    finally:
        replica.run("systemctl start postgresql@15-main")
    repaired = time.time()
    got = wait_for("PostgreSQLReplicationBroken resolved",
                   lambda: delivered("PostgreSQLReplicationBroken", repaired, status="resolved", host=PRIMARY),
                   timeout=120)
    print(f"replica started -> resolved delivered after {got[0]['at'] - repaired:.1f} s")


def test_a_host_down_silences_its_service_alerts():
    """The whole replica host frozen: HostDown pages; its exporters' and probes' alerts fire in
    Prometheus but Alertmanager holds them back (inhibited by HostDown on the same host)."""
    start = time.time()
    subprocess.run(["docker", "pause", REPLICA], check=True)
    try:
        wait_for("HostDown delivered", lambda: delivered("HostDown", start, path="/page", host=REPLICA), timeout=120)
        wait_for("TargetDown firing in Prometheus", lambda: firing("TargetDown", host=REPLICA), timeout=60)

        def inhibited():
            alerts = am("/api/v2/alerts", filter=f'host="{REPLICA}"')
            held = [a for a in alerts if a["labels"]["alertname"] != "HostDown"]
            return held if held and all(a["status"]["inhibitedBy"] for a in held) else None
        held = wait_for("the host's other alerts inhibited", inhibited, timeout=60)
        print(f"\nhost down: inhibited in Alertmanager: {sorted({a['labels']['alertname'] for a in held})}")
        time.sleep(10)
        leaked = [d for d in delivered("TargetDown", start, host=REPLICA)
                  + delivered("EndpointDown", start, host=REPLICA) + delivered("PgBouncerDown", start, host=REPLICA)]
        assert not leaked, leaked
    finally:
        subprocess.run(["docker", "unpause", REPLICA], check=True)
    repaired = time.time()
    wait_for("HostDown resolved", lambda: delivered("HostDown", repaired, status="resolved", host=REPLICA),
             timeout=120)
