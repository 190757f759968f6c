"""Topology validation and expansion (pure Python, no Ansible)."""

import copy
from pathlib import Path

import pytest
import yaml

from quantbot_infra.topology import (
    TopologyError,
    build_inventory,
    load_inventory,
    load_topology,
    parse_topology,
)

ROOT = Path(__file__).resolve().parents[2]

BASE = {
    "plugin": "quantbot_topology",
    "environment": "dev",
    "provider": "local",
    "local": {"network": "qb-t", "subnet": "10.240.50.0/24", "ssh_port_base": 24000},
    "regions": [{"name": "local", "azs": ["local-a", "local-b"]}],
    "classes": [
        {"name": "pg", "count": 3, "groups": ["postgresql"]},
        {"name": "mon", "count": 1, "groups": ["monitoring"], "azs": ["local-b"]},
    ],
}


VPN = {"pool": "10.250.0.0/24", "sites": [{"name": "local", "subnets": ["10.240.50.0/24"]}]}


def variant(**changes):
    data = copy.deepcopy(BASE)
    for path, value in changes.items():
        target = data
        keys = path.split("__")
        for k in keys[:-1]:
            target = target[int(k)] if k.isdigit() else target[k]
        last = keys[-1]
        if value is DELETE:
            del target[last]
        elif last.isdigit():
            target[int(last)] = value
        else:
            target[last] = value
    return data


DELETE = object()

MALFORMED = [
    ("unknown top-level key", variant(colour="blue"), "colour", "unknown key 'colour'"),
    ("unknown class key", variant(classes__0__cnt=2), "classes[0].cnt", "unknown key 'cnt'"),
    ("count is a string", variant(classes__0__count="two"), "classes[0].count", "expected an integer"),
    ("count negative", variant(classes__0__count=-1), "classes[0].count", "from 0 to 9999"),
    ("count too large", variant(classes__0__count=10000), "classes[0].count", "from 0 to 9999"),
    ("local class past its port block", variant(classes__0__count=100, local__subnet="10.240.0.0/16"),
     "classes[0].count", "the local provider gives each class a block of 100 SSH ports"),
    ("count is a bool", variant(classes__0__count=True), "classes[0].count", "expected an integer"),
    ("duplicate class", variant(classes__1__name="pg"), "classes[1].name", "duplicate class 'pg'"),
    ("unknown group", variant(classes__0__groups=["postgres"]), "classes[0].groups[0]",
     "unknown group 'postgres'"),
    ("AZ not in region", variant(classes__1__azs=["eu-west-1a"]), "classes[1].azs[0]",
     "not in region 'local'"),
    ("unknown region", variant(classes__0__region="mars"), "classes[0].region", "unknown region"),
    ("bad environment", variant(environment="qa"), "environment", "expected one of"),
    ("bad provider", variant(provider="gcp"), "provider", "expected one of"),
    ("missing classes", variant(classes=DELETE), "classes", "required field is missing"),
    ("empty classes", variant(classes=[]), "classes", "must not be empty"),
    ("groups not a list", variant(classes__0__groups="postgresql"), "classes[0].groups",
     "expected a list"),
    ("bad class name", variant(classes__0__name="Pg_1"), "classes[0].name", "lowercase name"),
    ("local section missing", variant(local=DELETE), "local", "required when provider is 'local'"),
    ("aws section with local provider", variant(aws={"vpc_cidr": "10.0.0.0/16"}), "aws",
     "only allowed when provider is 'aws'"),
    ("bad subnet", variant(local__subnet="10.240.50.1/24"), "local.subnet", "CIDR"),
    ("port base too low", variant(local__ssh_port_base=22), "local.ssh_port_base", "1024 to 60000"),
    ("duplicate AZ", variant(regions__0__azs=["local-a", "local-a"]), "regions[0].azs",
     "duplicate AZ"),
    ("AZ in two regions", variant(regions=[{"name": "r1", "azs": ["x"]}, {"name": "r2", "azs": ["x"]}]),
     "regions[1].azs[0]", "already declared in region 'r1'"),
    ("class vars not a mapping", variant(classes__0__vars=["a"]), "classes[0].vars", "expected a mapping"),
    ("bad var name", variant(classes__0__vars={"bad-name": 1}), "classes[0].vars", "not a valid identifier"),
    ("redeclared builtin group", variant(groups={"redis": "mine"}), "groups.redis", "built-in"),
    ("mesh member without vpn", variant(classes__1__groups=["monitoring", "wireguard"]), "classes[1].groups",
     "need a 'vpn:' section"),
    ("gateway outside the mesh", variant(vpn=VPN, classes__1__groups=["vpn_gateway"]), "classes[1].groups",
     "must also be in 'wireguard'"),
    ("vpn pool not a network", variant(vpn={**VPN, "pool": "10.250.0.1/24"}), "vpn.pool", "CIDR"),
    ("vpn pool too small", variant(vpn={**VPN, "pool": "10.250.0.0/30"}), "vpn.pool", "/28 or larger"),
    ("site overlaps pool", variant(vpn={**VPN, "sites": [{"name": "a", "subnets": ["10.250.0.0/25"]}]}),
     "vpn.sites", "overlaps"),
    ("unknown site", variant(vpn=VPN, classes__0__site="moon"), "classes[0].site", "unknown site 'moon'"),
    ("unknown vpn key", variant(vpn={**VPN, "mtu": 1}), "vpn.mtu", "unknown key 'mtu'"),
]


@pytest.mark.parametrize("case,data,field,needle", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_topology_names_file_field_and_expectation(case, data, field, needle):
    with pytest.raises(TopologyError) as err:
        parse_topology(data, "inventories/x/topology.yml")
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("inventories/x/topology.yml: ")
    assert err.value.field == field, message
    assert needle in message, message


def test_top_level_not_a_mapping():
    with pytest.raises(TopologyError, match="expected a mapping at the top level"):
        parse_topology(["a"], "t.yml")


def test_invalid_yaml_reports_line(tmp_path):
    f = tmp_path / "topology.yml"
    f.write_text("plugin: quantbot_topology\nclasses: [\n  {name: a\n")
    with pytest.raises(TopologyError) as err:
        load_topology(f)
    assert str(err.value).startswith(f"{f}: line ")
    assert "invalid YAML" in str(err.value)


def test_duplicate_yaml_key_is_refused(tmp_path):
    f = tmp_path / "topology.yml"
    f.write_text(yaml.safe_dump(BASE) + "environment: prod\n")
    with pytest.raises(TopologyError, match="duplicate key 'environment'"):
        load_topology(f)


def test_missing_file(tmp_path):
    with pytest.raises(TopologyError, match="file not found"):
        load_topology(tmp_path / "nope")


def test_hosts_names_groups_and_spread():
    inv = build_inventory(parse_topology(BASE))
    names = [h.name for h in inv.hosts]
    assert names == ["dev-pg-01", "dev-pg-02", "dev-pg-03", "dev-mon-01"]
    assert [h.az for h in inv.hosts] == ["local-a", "local-b", "local-a", "local-b"]
    assert inv.groups["class_pg"] == ("dev-pg-01", "dev-pg-02", "dev-pg-03")
    assert inv.groups["postgresql"] == ("dev-pg-01", "dev-pg-02", "dev-pg-03")
    assert inv.groups["az_local_b"] == ("dev-mon-01", "dev-pg-02")
    assert set(inv.groups["env_dev"]) == set(names)
    assert inv.groups["region_local"] == inv.groups["env_dev"]
    # role groups exist even when no class uses them, so playbooks can always target them
    assert inv.groups["redis"] == ()


def test_local_ports_and_addresses_are_stable():
    inv = build_inventory(parse_topology(BASE))
    ports = {h.name: h.vars["ansible_port"] for h in inv.hosts}
    assert ports == {"dev-pg-01": 24001, "dev-pg-02": 24002, "dev-pg-03": 24003, "dev-mon-01": 24101}
    grown = variant(classes__0__count=5)
    ports2 = {h.name: h.vars["ansible_port"] for h in build_inventory(parse_topology(grown)).hosts}
    # growing one class moves no other host
    assert all(ports2[h] == p for h, p in ports.items())
    ips = [h.vars["qb_private_ip"] for h in inv.hosts]
    assert len(set(ips)) == len(ips)
    assert all(ip.startswith("10.240.50.") for ip in ips)
    assert all(h.vars["ansible_host"] == "127.0.0.1" for h in inv.hosts)


def test_class_vars_override_topology_vars():
    data = variant(vars={"tier": "x", "shared": 1}, classes__0__vars={"tier": "db"})
    inv = build_inventory(parse_topology(data))
    assert inv.hosts[0].vars["tier"] == "db"
    assert inv.hosts[0].vars["shared"] == 1
    assert inv.hosts[3].vars["tier"] == "x"


def test_zero_count_class_makes_no_hosts():
    inv = build_inventory(parse_topology(variant(classes__1__count=0)))
    assert [h.node_class for h in inv.hosts] == ["pg", "pg", "pg"]


@pytest.mark.parametrize("env", ["dev", "staging", "prod", "dr"])
def test_shipped_inventories_are_valid(env):
    inv = load_inventory(ROOT / "inventories" / env)
    assert inv.environment == env
    assert all(h.name.startswith(f"{env}-") for h in inv.hosts)


def test_dev_is_the_platform_in_small():
    inv = load_inventory(ROOT / "inventories" / "dev")
    counts = {}
    for h in inv.hosts:
        counts[h.node_class] = counts.get(h.node_class, 0) + 1
    assert counts == {"trading": 2, "gpu": 1, "pg": 2, "redis": 3, "vpn": 2, "monitoring": 1}
    assert len({h.vars["ansible_port"] for h in inv.hosts}) == 11
    # the backup repository is off the database hosts
    assert inv.groups["backup"] == ("dev-monitoring-01",)


@pytest.mark.parametrize("field", ["classes[1].count", "classes[0].colour", "classes[1].azs[0]",
                                   "local.subnet"])
def test_errors_in_files_name_the_line(tmp_path, field):
    text = """\
plugin: quantbot_topology
environment: dev
provider: local
local:
  network: qb-t
  subnet: 10.240.50.0/24
  ssh_port_base: 24000
regions:
  - name: local
    azs: [local-a, local-b]
classes:
  - name: pg
    count: 3
  - name: mon
    count: 1  # mon
    azs:
      - local-b
"""
    breakage = {
        "classes[1].count": ("count: 1  # mon", "count: 500  # mon"),
        "classes[0].colour": ("    count: 3\n", "    count: 3\n    colour: blue\n"),
        "classes[1].azs[0]": ("- local-b", "- eu-west-1a"),
        "local.subnet": ("subnet: 10.240.50.0/24", "subnet: 10.240.50.1/24"),
    }[field]
    broken = text.replace(*breakage)
    f = tmp_path / "topology.yml"
    f.write_text(broken)
    with pytest.raises(TopologyError) as err:
        load_topology(f)
    line = next(i for i, ln in enumerate(broken.splitlines(), 1)
                if ln.strip() == breakage[1].strip().splitlines()[-1].strip())
    assert err.value.field == field
    assert err.value.line == line, str(err.value)
    assert str(err.value).startswith(f"{f}:{line}: {field}: ")


def test_mesh_members_get_stable_tunnel_addresses_and_their_site():
    data = variant(vpn=VPN, classes__1__groups=["monitoring", "wireguard"])
    data["classes"].insert(0, {"name": "gw", "count": 1, "groups": ["wireguard", "vpn_gateway"]})
    inv = build_inventory(parse_topology(data))
    by_name = {h.name: h.vars for h in inv.hosts}
    assert by_name["dev-gw-01"]["qb_vpn_address"] == "10.250.0.1"
    assert by_name["dev-mon-01"]["qb_vpn_address"] == "10.250.0.5"
    assert "qb_vpn_address" not in by_name["dev-pg-01"]
    assert by_name["dev-pg-01"]["qb_vpn_site"] == "local"
    assert by_name["dev-pg-01"]["qb_vpn_sites"] == {"local": ["10.240.50.0/24"]}
    assert by_name["dev-pg-01"]["qb_local_gateway"] == "10.240.50.1"


@pytest.mark.parametrize("env", ["staging", "prod", "dr"])
def test_cloud_hosts_are_reached_through_their_bastion(env):
    inv = load_inventory(ROOT / "inventories" / env)
    bastions = set(inv.groups["bastion"])
    assert bastions
    for h in inv.hosts:
        if h.name in bastions:
            assert "qb_ssh_bastion" not in h.vars
        else:
            assert h.vars["qb_ssh_bastion"] in bastions


AWS = {
    "plugin": "quantbot_topology", "environment": "prod", "provider": "aws",
    "aws": {"vpc_cidr": "10.20.0.0/16"},
    "regions": [{"name": "eu-west-1", "azs": ["eu-west-1a", "eu-west-1b", "eu-west-1c"]}],
    "classes": [{"name": "app", "count": 250, "groups": []},
                {"name": "pg", "count": 2, "groups": ["postgresql"]}],
}


def test_a_cloud_class_may_hold_more_than_99_hosts():
    inv = build_inventory(parse_topology(copy.deepcopy(AWS)))
    names = [h.name for h in inv.hosts]
    assert len(names) == 252 == len(set(names))
    # slots keep two digits up to 99, so a class that grows keeps its hosts' names
    assert names[:2] == ["prod-app-01", "prod-app-02"]
    assert names[98:101] == ["prod-app-99", "prod-app-100", "prod-app-101"]
    assert names[249] == "prod-app-250" and names[250] == "prod-pg-01"
    by_name = {h.name: h for h in inv.hosts}
    assert by_name["prod-app-100"].vars["qb_index"] == 100
    assert by_name["prod-app-100"].az == "eu-west-1a" and by_name["prod-app-101"].az == "eu-west-1b"


def _merged(inv, group_vars, host_vars, host):
    out = {}
    for group in host.groups:
        out.update(group_vars.get(group, {}))
    out.update(host_vars[host.name])
    return out


@pytest.mark.parametrize("topology", ["dev", "aws", "user vars"])
def test_vars_set_on_groups_merge_back_to_every_hosts_own(topology):
    from quantbot_infra.topology import layered_vars

    if topology == "dev":
        inv = load_inventory(ROOT / "inventories" / "dev" / "topology.yml")
    elif topology == "aws":
        inv = build_inventory(parse_topology(copy.deepcopy(AWS)))
    else:
        # a topology var named like a derived one keeps the derived value, per host as before
        data = variant(vars={"qb_class": "mine", "colour": "blue"})
        data["classes"][0]["vars"] = {"qb_region": "x", "tier": "gold"}
        inv = build_inventory(parse_topology(data))
    group_vars, host_vars = layered_vars(inv)
    for host in inv.hosts:
        assert _merged(inv, group_vars, host_vars, host) == host.vars, host.name
    # what every host of a class shares is not repeated per host
    assert all("qb_env" not in v and "qb_role_groups" not in v for v in host_vars.values())
    if topology == "user vars":
        assert all("qb_class" in v and "qb_region" in v for v in host_vars.values())


def test_a_value_only_some_hosts_of_a_group_have_stays_with_those_hosts():
    import dataclasses

    from quantbot_infra.topology import layered_vars

    inv = build_inventory(parse_topology(copy.deepcopy(AWS)))
    first, *rest = inv.hosts
    # one host of class app carries a derived key the others lack
    odd = dataclasses.replace(first, vars={**first.vars, "qb_vpn_site": "eu-west-1"})
    inv = dataclasses.replace(inv, hosts=(odd, *rest))
    group_vars, host_vars = layered_vars(inv)
    assert "qb_vpn_site" not in group_vars.get("class_app", {})
    assert host_vars[odd.name]["qb_vpn_site"] == "eu-west-1"
    for host in inv.hosts:
        assert _merged(inv, group_vars, host_vars, host) == host.vars, host.name
