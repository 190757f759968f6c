"""Host firewall: group allow-lists, default deny, and a ruleset checked before it lands."""

from __future__ import annotations

from conftest import SITE_IP, WAN_IP, flat, host, listen, playbook, tcp_open


def test_allowed_port_is_reachable_from_an_allowed_peer_only():
    listen("vpn-node-b", "0.0.0.0", 9100)  # noqa: S104 - the firewall is what limits it
    # the service answers on the host itself
    assert tcp_open("vpn-node-b", "127.0.0.1", 9100)
    # monitoring may scrape exporters: allowed, across the VPN
    assert tcp_open("vpn-mon", SITE_IP["vpn-node-b"], 9100)
    # a trading host may not, though its packets reach node-b through the same gateways
    assert not tcp_open("vpn-node-a", SITE_IP["vpn-node-b"], 9100)


def test_application_hosts_reach_postgresql_port_from_the_other_site():
    listen("vpn-node-b", "0.0.0.0", 5432)  # noqa: S104
    assert tcp_open("vpn-node-a", SITE_IP["vpn-node-b"], 5432)


def test_default_deny_for_a_port_nothing_allows():
    listen("vpn-node-b", "0.0.0.0", 9999)  # noqa: S104
    assert tcp_open("vpn-node-b", "127.0.0.1", 9999)
    for src in ("vpn-mon", "vpn-node-a"):
        assert not tcp_open(src, SITE_IP["vpn-node-b"], 9999)
    listen("vpn-gw-a", "0.0.0.0", 9999)  # noqa: S104
    assert not tcp_open("vpn-outside", WAN_IP["vpn-gw-a"], 9999)
    assert not tcp_open("vpn-mon", WAN_IP["vpn-gw-a"], 9999)


def test_wireguard_udp_only_from_peers():
    rules = host("vpn-gw-a").check_output("nft list chain inet qb_filter input")
    line = next(x for x in rules.splitlines() if 'comment "wireguard"' in x)
    assert "udp dport 51820" in line
    assert WAN_IP["vpn-outside"] not in line and "10.241.0.0/24" not in line
    for peer in ("vpn-gw-b", "vpn-mon"):
        assert WAN_IP[peer] in line or "10.241.0.11-10.241.0.13" in line


def test_a_ruleset_that_fails_nft_check_never_lands():
    before = host("vpn-gw-a").check_output("sha256sum /etc/nftables.conf")
    running = host("vpn-gw-a").check_output("nft list table inet qb_filter")
    result = playbook("network.yml", "--limit", "vpn-gw-a", "--tags", "firewall",
                      "-e", "firewall_log_rate=sometimes", check=False)
    assert result.returncode != 0
    assert "failed to validate" in flat(result)
    assert host("vpn-gw-a").check_output("sha256sum /etc/nftables.conf") == before
    assert host("vpn-gw-a").check_output("nft list table inet qb_filter") == running
