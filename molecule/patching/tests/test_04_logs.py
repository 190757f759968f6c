"""Every host's journal reaches the collector over RELP with mutual TLS; nothing is lost while
the collector is away; a client without a certificate of the environment's CA is refused."""

from __future__ import annotations

import time
import uuid

from conftest import IP, MONITOR, host, wait_for

COLLECTOR = MONITOR
STORE = "/var/log/quantbot-hosts"


def collected(source: str, marker: str) -> int:
    out = host(COLLECTOR).run(f"cat {STORE}/{source}/*.log 2>/dev/null | grep -c -- {marker} || true")
    return int(out.stdout.strip() or 0)


def test_a_journal_line_reaches_the_collector():
    for source in IP:
        marker = f"qb-ship-{uuid.uuid4().hex}"
        start = time.monotonic()
        host(source).run(f"logger -t qbtest {marker}")
        wait_for(f"{source}'s line on the collector", lambda m=marker, s=source: collected(s, m) == 1, timeout=60)
        print(f"\n{source}: journal line on the collector after {time.monotonic() - start:.1f} s")
    listing = host(COLLECTOR).run(f"ls {STORE}").stdout.split()
    assert set(IP) <= set(listing)


AWAY = 20  # seconds: longer than the clients' retry interval, so lines wait in their queues


def test_lines_written_while_the_collector_is_away_all_arrive():
    marker = f"qb-outage-{uuid.uuid4().hex}"
    source = host("pt-pg-1")
    asked = time.monotonic()
    host(COLLECTOR).run("systemctl stop rsyslog.service syslog.socket")
    stopped = time.monotonic()
    print(f"\ncollector's rsyslog stopped {stopped - asked:.1f} s after it was asked to")
    # it stopped by itself, not killed at systemd's stop timeout (a collector shipping to its
    # own stopped listener retries until then)
    assert host(COLLECTOR).run("systemctl show -p Result --value rsyslog.service").stdout.strip() == "success"
    written = 0
    try:
        while time.monotonic() - stopped < AWAY:
            assert source.run(f"logger -t qbtest {marker} {written}").rc == 0
            written += 1
            time.sleep(0.5)
    finally:
        host(COLLECTOR).run("systemctl start rsyslog.service")
    restarted = time.monotonic()
    wait_for(f"{written} lines after the outage", lambda: collected("pt-pg-1", marker) >= written, timeout=180)
    got = collected("pt-pg-1", marker)
    print(f"\ncollector away {AWAY} s: {written} lines written, {got} arrived "
          f"({written - got} lost), all in {time.monotonic() - restarted:.1f} s after the restart")
    assert got == written


def relp_open(client, cert_args: str) -> str:
    """Open a RELP session over TLS from `client` with the given openssl certificate options;
    returns what the collector answered (empty when it refused)."""
    offers = "relp_version=0\nrelp_software=qbtest\ncommands=syslog"
    frame = f"1 open {len(offers)} {offers}\n".replace("\n", "\\n")
    # s_client -quiet keeps the session open after its input ends: the collector's answer
    # arrives at once, the timeout ends the session
    cmd = (f"printf '{frame}' | timeout 5 openssl s_client -quiet -connect {IP[COLLECTOR]}:2514 "
           f"-CAfile /etc/quantbot/pki/ca.crt {cert_args} 2>/dev/null")
    return client.run(cmd).stdout


def test_only_clients_with_an_environment_certificate_get_in():
    client = host("pt-pg-2")
    # the host's own certificate: the session opens
    assert "200 OK" in relp_open(client, "-cert /etc/quantbot/pki/host.crt -key /etc/quantbot/pki/host.key")
    # no certificate at all, and a self-signed one with a permitted name: refused
    assert relp_open(client, "") == ""
    client.run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 "
               "-subj /CN=pt-pg-2 -keyout /tmp/rogue.key -out /tmp/rogue.crt")
    assert relp_open(client, "-cert /tmp/rogue.crt -key /tmp/rogue.key") == ""


def test_the_collector_keeps_host_logs_for_the_retention_days_only():
    """The daily retention removes a host's files older than log_shipping_retention_days (30)."""
    collector = host(COLLECTOR)
    folder = f"{STORE}/pt-pg-1"
    old, recent = f"{folder}/2000-01-01.log", f"{folder}/2000-02-01.log"
    collector.check_output(f"touch -d '40 days ago' {old} && touch -d '20 days ago' {recent}")
    try:
        assert collector.service("qb-log-retention.timer").is_running
        assert collector.run("systemctl start qb-log-retention.service").rc == 0
        assert not collector.file(old).exists
        assert collector.file(recent).exists
        # today's file, being written, stays
        assert collector.run(f"ls {folder}/$(date +%Y-%m-%d).log").rc == 0
    finally:
        collector.run(f"rm -f {old} {recent}")
