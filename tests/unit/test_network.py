"""The network tier's pure parts: WireGuard peers and routes, firewall allow-lists, bastions."""

from __future__ import annotations

import base64
import shlex

import pytest

from quantbot_infra import bastion, firewall, wireguard


def key(n: int) -> str:
    return base64.b64encode(bytes([n]) * 32).decode()


POOL = "10.250.0.0/24"
SITES = {"a": ["10.201.1.0/24"], "b": ["10.201.2.0/24", "10.201.3.0/24"]}


def member(name, n, site, gateway=False, **extra):
    return {"name": name, "address": f"10.250.0.{n}", "endpoint": f"10.201.0.{n}", "port": 51820,
            "public_key": key(n), "site": site, "gateway": gateway, **extra}


MEMBERS = [
    member("gw-a", 1, "a", True, site_address="10.201.1.10"),
    member("gw-b", 2, "b", True, site_address="10.201.2.10"),
    member("gw-b2", 4, "b", True, site_address="10.201.2.11"),
    member("mon", 3, "core"),
]


class TestWireGuard:
    def test_pool_address_is_deterministic_and_bounded(self):
        assert wireguard.pool_address(POOL, 1) == "10.250.0.1"
        assert wireguard.pool_address(POOL, 254) == "10.250.0.254"
        with pytest.raises(wireguard.WireGuardError, match="room for 254"):
            wireguard.pool_address(POOL, 255)
        with pytest.raises(wireguard.WireGuardError, match="CIDR"):
            wireguard.pool_address("10.250.0.1/24", 1)

    def test_full_mesh_with_site_subnets_on_their_carrier_only(self):
        peers = {p["name"]: p for p in wireguard.mesh_peers("mon", MEMBERS, POOL, SITES, 25)}
        assert sorted(peers) == ["gw-a", "gw-b", "gw-b2"]
        assert peers["gw-a"]["allowed_ips"] == ["10.250.0.1/32", "10.201.1.0/24"]
        assert peers["gw-b"]["allowed_ips"] == ["10.250.0.2/32", "10.201.2.0/24", "10.201.3.0/24"]
        # a second gateway of a site is a standby: no subnet twice in one interface
        assert peers["gw-b2"]["allowed_ips"] == ["10.250.0.4/32"]
        assert peers["gw-a"]["endpoint"] == "10.201.0.1:51820"
        assert peers["gw-a"]["public_key"] == key(1)
        assert all(p["keepalive"] == 25 for p in peers.values())

    def test_a_site_is_not_routed_into_the_tunnel_from_inside_it(self):
        peers = {p["name"]: p for p in wireguard.mesh_peers("gw-b2", MEMBERS, POOL, SITES)}
        assert peers["gw-b"]["allowed_ips"] == ["10.250.0.2/32"]
        assert peers["gw-a"]["allowed_ips"] == ["10.250.0.1/32", "10.201.1.0/24"]
        assert wireguard.routed_subnets(peers.values()) == ["10.201.1.0/24"]
        assert wireguard.routed_subnets(wireguard.mesh_peers("mon", MEMBERS, POOL, SITES)) == [
            "10.201.1.0/24", "10.201.2.0/24", "10.201.3.0/24"]

    def test_every_member_sees_every_other_exactly_once(self):
        for m in MEMBERS:
            names = [p["name"] for p in wireguard.mesh_peers(m["name"], MEMBERS, POOL, SITES)]
            assert sorted(names) == sorted(x["name"] for x in MEMBERS if x is not m)

    @pytest.mark.parametrize(("change", "message"), [
        ({"public_key": "not-a-key"}, "is not a WireGuard key"),
        ({"public_key": key(1)}, "share a public key"),
        ({"address": "10.250.0.1"}, "share tunnel address"),
        ({"address": "10.9.9.9"}, "outside the VPN pool"),
        ({"endpoint": ""}, "'endpoint' is missing"),
    ])
    def test_bad_members_are_named(self, change, message):
        bad = [*MEMBERS[:3], {**MEMBERS[3], **change}]
        with pytest.raises(wireguard.WireGuardError, match=message):
            wireguard.mesh_peers("gw-a", bad, POOL, SITES)

    def test_overlapping_sites_and_unknown_self_are_refused(self):
        with pytest.raises(wireguard.WireGuardError, match="overlaps"):
            wireguard.check_sites(POOL, {"a": ["10.201.0.0/16"], "b": ["10.201.2.0/24"]})
        with pytest.raises(wireguard.WireGuardError, match=r"overlaps .* the VPN pool"):
            wireguard.check_sites(POOL, {"a": ["10.250.0.0/25"]})
        with pytest.raises(wireguard.WireGuardError, match="not a member"):
            wireguard.mesh_peers("nobody", MEMBERS, POOL, SITES)
        with pytest.raises(wireguard.WireGuardError, match="declares no subnets"):
            wireguard.mesh_peers("mon", MEMBERS, POOL, {"a": ["10.201.1.0/24"]})

    def test_site_hosts_route_the_pool_and_other_sites_via_their_gateway(self):
        routes = wireguard.site_routes("a", MEMBERS, POOL, SITES)
        assert routes == {"gateway": "gw-a", "via": "10.201.1.10",
                          "subnets": [POOL, "10.201.2.0/24", "10.201.3.0/24"]}
        assert wireguard.site_routes("b", MEMBERS, POOL, SITES)["via"] == "10.201.2.10"
        assert wireguard.site_routes("elsewhere", MEMBERS, POOL, SITES) == {}
        assert wireguard.remote_networks(POOL, SITES, "b") == [POOL, "10.201.1.0/24"]
        assert wireguard.remote_networks(POOL, SITES, "core") == [POOL, *SITES["a"], *SITES["b"]]

    def test_members_come_from_inventory_variables(self):
        hv = {"g": {"qb_vpn_address": "10.250.0.1", "qb_private_ip": "10.1.0.1",
                    "qb_vpn_endpoint": "192.0.2.1", "qb_vpn_site": "a"},
              "m": {"qb_vpn_address": "10.250.0.2", "qb_private_ip": "10.9.0.2", "qb_region": "r1"}}
        out = wireguard.members_from_hostvars(["m", "g"], hv, ["g"], 51820, {"g": key(1)})
        assert [m["name"] for m in out] == ["g", "m"]
        assert out[0] == {"name": "g", "address": "10.250.0.1", "endpoint": "192.0.2.1",
                          "site_address": "10.1.0.1", "port": 51820, "site": "a", "gateway": True,
                          "public_key": key(1)}
        assert out[1]["endpoint"] == "10.9.0.2" and out[1]["site"] == "r1" and out[1]["public_key"] == ""
        assert not out[1]["gateway"]

    def test_public_key_shape(self):
        assert wireguard.valid_public_key(key(7))
        assert not wireguard.valid_public_key(key(7)[:-2])
        assert not wireguard.valid_public_key(None)
        assert not wireguard.valid_public_key(base64.b64encode(b"x" * 31).decode() + "=")


GROUPS = {"all": ["db1", "app1", "mon1", "bastion1"], "postgresql": ["db1"], "trading": ["app1"],
          "monitoring": ["mon1"], "bastion": ["bastion1"], "wireguard": ["db1", "mon1"]}
ADDRS = {"db1": ["10.0.0.11", "10.250.0.1"], "app1": ["10.0.0.12"], "mon1": ["10.0.0.13", "10.250.0.3"],
         "bastion1": ["10.0.0.5"]}
SERVICES = {
    "postgresql": {"ports": [5432, 6432], "on_groups": ["postgresql"], "from_groups": ["trading"],
                   "from_cidrs": ["10.250.0.0/24"]},
    "node_exporter": {"ports": [9100], "on_groups": ["all"], "from_groups": ["monitoring"]},
    "ssh": {"ports": [22], "on_groups": ["all"], "from_groups": ["bastion"], "from_cidrs": []},
    "wireguard": {"ports": [51820], "proto": "udp", "on_groups": ["wireguard"], "from_groups": ["wireguard"]},
    "off": {"ports": [1], "on_groups": ["all"], "enabled": False},
}


class TestFirewall:
    def rules(self, host_groups, services=SERVICES):
        return {r["name"]: r for r in firewall.allow_rules(services, host_groups=host_groups,
                                                            groups=GROUPS, addresses=ADDRS)}

    def test_rules_follow_group_membership(self):
        db = self.rules(["postgresql", "wireguard"])
        assert sorted(db) == ["node_exporter", "postgresql", "ssh", "wireguard"]
        assert db["postgresql"]["ports"] == ["5432", "6432"]
        assert db["postgresql"]["ip"] == ["10.0.0.12/32", "10.250.0.0/24"]
        assert db["node_exporter"]["ip"] == ["10.0.0.13/32", "10.250.0.3/32"]
        assert db["ssh"]["ip"] == ["10.0.0.5/32"]
        assert db["wireguard"]["proto"] == "udp"
        assert db["wireguard"]["ip"] == ["10.0.0.11/32", "10.0.0.13/32", "10.250.0.1/32", "10.250.0.3/32"]
        app = self.rules(["trading"])
        assert sorted(app) == ["node_exporter", "ssh"]

    def test_empty_sources_stay_empty_and_ranges_collapse(self):
        svc = {"x": {"ports": ["8000-8010", 7000], "on_groups": ["all"], "from_cidrs": [
            "10.1.0.0/25", "10.1.0.128/25", "fd00::1"]},
               "y": {"ports": [1], "on_groups": ["all"]}}
        rules = self.rules([], svc)
        assert rules["x"]["ports"] == ["7000", "8000-8010"]
        assert rules["x"]["ip"] == ["10.1.0.0/24"]
        assert rules["x"]["ip6"] == ["fd00::1/128"]
        assert rules["y"]["ip"] == [] and rules["y"]["ip6"] == []

    @pytest.mark.parametrize(("svc", "message"), [
        ({"ports": [0], "on_groups": ["all"]}, "out of range"),
        ({"ports": ["http"], "on_groups": ["all"]}, "not a number"),
        ({"ports": [], "on_groups": ["all"]}, "at least one port"),
        ({"ports": [1], "on_groups": ["all"], "proto": "sctp"}, "proto must be"),
        ({"ports": [1], "on_groups": ["all"], "from_groups": ["nope"]}, "unknown group 'nope'"),
        ({"ports": [1], "on_groups": ["all"], "from_cidrs": ["10.0.0.300/8"]}, "not an address"),
        ({"ports": [1]}, "'on_groups' must name"),
        ({"ports": [1], "on_groups": ["all"], "port": 2}, "unknown key"),
    ])
    def test_catalogue_mistakes_name_the_service(self, svc, message):
        with pytest.raises(firewall.FirewallError, match=f"service 'bad'.*{message}"):
            self.rules([], {"bad": svc})

    def test_admits_matches_address_port_and_protocol(self):
        rules = firewall.allow_rules(SERVICES, host_groups=["postgresql", "wireguard"], groups=GROUPS,
                                     addresses=ADDRS)
        assert firewall.admits(rules, "10.0.0.5", 22)
        assert not firewall.admits(rules, "10.0.0.12", 22)
        assert firewall.admits(rules, "10.250.0.77", 6432)
        assert not firewall.admits(rules, "10.250.0.77", 6433)
        assert firewall.admits(rules, "10.0.0.13", 51820, "udp")
        assert not firewall.admits(rules, "10.0.0.13", 51820, "tcp")
        assert not firewall.admits(rules, "not-an-ip", 22)
        ranged = firewall.allow_rules({"r": {"ports": ["8000-8010"], "on_groups": ["all"],
                                             "from_cidrs": ["fd00::/64"]}}, host_groups=[], groups=GROUPS,
                                      addresses=ADDRS)
        assert firewall.admits(ranged, "fd00::5", 8005)
        assert not firewall.admits(ranged, "fd00::5", 8011)

    def test_host_addresses_skip_unset_values(self):
        hv = {"a": {"qb_private_ip": "10.0.0.1", "qb_vpn_address": "10.250.0.1"}, "b": {"qb_private_ip": ""}}
        assert firewall.host_addresses(hv, ["a", "b", "c"]) == {
            "a": ["10.0.0.1", "10.250.0.1"], "b": [], "c": []}


class TestBastion:
    def test_hosts_get_a_bastion_of_their_region_spread_round_robin(self):
        hosts = {
            "b1": {"groups": ["bastion"], "region": "r1"}, "b2": {"groups": ["bastion"], "region": "r1"},
            "b3": {"groups": ["bastion"], "region": "r2"},
            "h1": {"groups": [], "region": "r1"}, "h2": {"groups": [], "region": "r1"},
            "h3": {"groups": [], "region": "r2"}, "h4": {"groups": [], "region": "r3"},
        }
        out = bastion.assign_bastions(hosts)
        assert set(out) == {"h1", "h2", "h3", "h4"}
        assert {out["h1"], out["h2"]} == {"b1", "b2"}
        assert out["h3"] == "b3"
        assert out["h4"] in {"b1", "b2", "b3"}
        assert bastion.assign_bastions({"h": {"groups": []}}) == {}

    def test_proxy_command_carries_the_hop_options(self):
        opt = bastion.proxy_command("ansible", "10.0.0.5", 2222, ssh_options=["-i", "/k ey"])
        argv = shlex.split(opt)
        assert argv[0] == "-o"
        assert argv[1].startswith("ProxyCommand=")
        inner = shlex.split(argv[1].split("=", 1)[1])
        assert inner == ["ssh", "-W", "%h:%p", "-q", "-p", "2222", "-i", "/k ey", "ansible@10.0.0.5"]
        with pytest.raises(bastion.BastionError):
            bastion.proxy_command("", "10.0.0.5")
        with pytest.raises(bastion.BastionError):
            bastion.proxy_command("u", "10.0.0.5", 70000)



def _network_filters():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "plugins" / "filter" / "qb_network.py"
    spec = importlib.util.spec_from_file_location("qb_network_filters", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.FilterModule().filters()


class _CountingHostvars(dict):
    """hostvars that count how often a host's variables are read (each read templates them)."""

    reads = 0

    def get(self, key, default=None):
        type(self).reads += 1
        return super().get(key, default)


def test_firewall_rules_read_the_fleets_addresses_once_not_once_per_host():
    f = _network_filters()
    hosts = [f"app-{i:03d}" for i in range(200)] + ["pg-1", "mon-1"]
    hostvars = _CountingHostvars({h: {"qb_private_ip": f"10.1.{i // 250}.{i % 250 + 1}"}
                                  for i, h in enumerate(hosts)})
    groups = {"all": hosts, "trading": hosts[:200], "postgresql": ["pg-1"], "monitoring": ["mon-1"]}
    services = {"postgresql": {"ports": [5432], "on_groups": ["postgresql"], "from_groups": ["trading"]},
                "node": {"ports": [9100], "on_groups": ["all"], "from_groups": ["monitoring"]}}
    addresses = f["qb_firewall_addresses"](groups, hostvars)
    assert _CountingHostvars.reads == len(hosts)
    for name in hosts:
        host_groups = [g for g, members in groups.items() if name in members and g != "all"]
        rules = f["qb_firewall_rules"](services, host_groups, groups, addresses)
        by = {r["name"]: r for r in rules}
        assert "node" in by and by["node"]["ip"] == [hostvars["mon-1"]["qb_private_ip"] + "/32"]
        if name == "pg-1":
            # the 200 trading hosts, merged into as few networks as cover exactly them
            import ipaddress
            nets = [ipaddress.ip_network(n) for n in by["postgresql"]["ip"]]
            assert sum(n.num_addresses for n in nets) == 200 and len(nets) < 20
    # the rules of 202 hosts read no host's variables again
    assert _CountingHostvars.reads == len(hosts)
