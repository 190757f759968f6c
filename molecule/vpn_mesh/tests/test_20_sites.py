"""Site-to-site through the gateways, and the tunnel's addresses closed to everyone else."""

from __future__ import annotations

import re

from conftest import SITE_IP, TUNNEL, WAN_IP, host, listen, ping, public_key, tcp_open


def transfer(on: str, peer: str) -> tuple[int, int]:
    """(received, sent) bytes with one peer."""
    for line in host(on).check_output("wg show wg0 transfer").splitlines():
        key, rx, tx = line.split()
        if key == public_key(peer):
            return int(rx), int(tx)
    raise AssertionError(f"{peer} is not a peer of {on}")


def test_site_hosts_route_through_their_gateway():
    assert re.search(r"^10\.241\.2\.0/24 via 10\.241\.1\.10 ", host("vpn-node-a").check_output("ip route"), re.M)
    assert re.search(r"^10\.241\.1\.0/24 via 10\.241\.2\.10 ", host("vpn-node-b").check_output("ip route"), re.M)
    assert host("vpn-node-a").service("qb-vpn-routes").is_enabled


def test_site_a_reaches_site_b_through_the_gateways():
    before = transfer("vpn-gw-a", "vpn-gw-b")
    assert ping("vpn-node-a", SITE_IP["vpn-node-b"], count=3)
    assert ping("vpn-node-b", SITE_IP["vpn-node-a"], count=3)
    after = transfer("vpn-gw-a", "vpn-gw-b")
    # six echo requests and six replies crossed the gateways' tunnel
    assert after[0] - before[0] >= 6 * 84 and after[1] - before[1] >= 6 * 84


def test_site_hosts_reach_mesh_members_and_members_reach_sites():
    assert ping("vpn-node-a", TUNNEL["vpn-mon"])
    assert ping("vpn-mon", SITE_IP["vpn-node-b"])


def test_a_host_outside_the_vpn_cannot_reach_a_tunnel_bound_service():
    listen("vpn-gw-b", TUNNEL["vpn-gw-b"], 9100)
    # the monitoring member, through the tunnel: allowed
    assert host("vpn-mon").run(f"curl -fsS -m 5 -o /dev/null http://{TUNNEL['vpn-gw-b']}:9100/").rc == 0
    # the outside host sends to the tunnel address through the gateway's WAN address; then even
    # an allowed host is refused when it comes to the tunnel address from outside the tunnel
    for src, dev in (("vpn-outside", ""), ("vpn-mon", " dev eth0")):
        route = f"{TUNNEL['vpn-gw-b']}/32 via {WAN_IP['vpn-gw-b']}{dev}"
        host(src).check_output(f"ip route replace {route}")
        try:
            assert not tcp_open(src, TUNNEL["vpn-gw-b"], 9100), src
        finally:
            host(src).run(f"ip route del {route}")
    assert tcp_open("vpn-mon", TUNNEL["vpn-gw-b"], 9100)
