"""Two monitoring hosts make one Alertmanager cluster: they gossip silences and the notification
log, so an alert that both receive (from two Prometheus servers) is delivered once, and with one
member's host killed the other delivers alone; the returned member rejoins and does not repeat
what the survivor sent."""

from __future__ import annotations

import socket
import subprocess
import time
from datetime import UTC, datetime, timedelta

from conftest import IP, MEMBERS, api, deliveries, peers, post_alert, wait_for

GOSSIP = [f"{ip}:9094" for ip in sorted(IP.values())]


def test_the_members_form_one_cluster():
    for member in MEMBERS:
        assert wait_for(f"{member} to see both members", lambda m=member: peers(m) == GOSSIP and peers(m)), member


def test_the_gossip_port_refuses_a_host_outside_the_monitoring_group():
    # the controller is the admin network: it reaches the API, but gossip only comes from members
    for ip in IP.values():
        with socket.create_connection((ip, 9093), timeout=5):
            pass
        try:
            socket.create_connection((ip, 9094), timeout=3).close()
        except OSError:
            continue
        raise AssertionError(f"{ip}:9094 (gossip) took a connection from outside the monitoring group")


def test_a_silence_made_on_one_member_holds_on_the_other():
    now = datetime.now(UTC)
    silence = {"matchers": [{"name": "alertname", "value": "QbSilenced", "isRegex": False, "isEqual": True}],
               "startsAt": now.isoformat(), "endsAt": (now + timedelta(hours=1)).isoformat(),
               "createdBy": "molecule", "comment": "cluster drill"}
    made = api("amc-mon-1", "POST", "/silences", json=silence)["silenceID"]
    try:
        wait_for("the silence on amc-mon-2", lambda: [s for s in api("amc-mon-2", "GET", "/silences")
                                                      if s["id"] == made and s["status"]["state"] == "active"])
    finally:
        api("amc-mon-1", "DELETE", f"/silence/{made}")
    wait_for("the expiry on amc-mon-2", lambda: [s for s in api("amc-mon-2", "GET", "/silences")
                                                 if s["id"] == made and s["status"]["state"] == "expired"])


def test_an_alert_both_members_receive_is_delivered_once():
    for member in MEMBERS:
        post_alert(member, "QbClusterDedup")
    wait_for("the first delivery", lambda: deliveries("QbClusterDedup"))
    # past the second member's turn (peer timeout 15 s) and a group interval: nothing more
    time.sleep(25)
    sent = deliveries("QbClusterDedup")
    assert len(sent) == 1, sent


def test_with_a_members_host_killed_the_other_delivers_alone_and_the_returned_one_rejoins():
    sender = deliveries("QbClusterDedup")[0][0]
    survivor = next(m for m in MEMBERS if m != sender)
    subprocess.run(["docker", "kill", sender], check=True, capture_output=True)
    killed = time.time()
    try:
        post_alert(survivor, "QbClusterFailover")
        [(by, at)] = wait_for("a delivery from the survivor", lambda: deliveries("QbClusterFailover"))
        assert by == survivor
        print(f"drill {sender} host killed: {survivor} delivered a new alert alone "
              f"{at - killed:.1f} s after the kill", end=" ")
    finally:
        subprocess.run(["docker", "start", sender], check=True, capture_output=True)
    started = time.time()
    wait_for(f"{sender} to rejoin", lambda: peers(sender) == GOSSIP and peers(survivor) == GOSSIP, timeout=180)
    print(f"rejoined {time.time() - started:.1f} s after its host started", end=" ")
    # what the survivor sent is in the returned member's notification log: the same alert,
    # now sent to it as well, is not delivered again
    post_alert(sender, "QbClusterFailover")
    post_alert(survivor, "QbClusterFailover")
    time.sleep(25)
    assert len(deliveries("QbClusterFailover")) == 1, deliveries("QbClusterFailover")
