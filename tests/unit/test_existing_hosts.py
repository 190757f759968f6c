"""Existing machines in a topology: validated like the rest, named and grouped like the rest,
and left out of what a cloud provider makes."""

from __future__ import annotations

import copy

import pytest

from quantbot_infra.aws import spec
from quantbot_infra.topology import (
    TopologyError,
    build_inventory,
    cloud_regions,
    inventory_data,
    parse_topology,
)

MIXED = {
    "plugin": "quantbot_topology",
    "environment": "staging",
    "provider": "aws",
    "aws": {"vpc_cidr": "10.20.0.0/16"},
    "regions": [
        {"name": "eu-west-1", "azs": ["eu-west-1a", "eu-west-1b"]},
        {"name": "ld4", "azs": ["ld4-hall-1"]},
    ],
    "classes": [
        {"name": "bastion", "count": 1, "groups": ["bastion"], "instance_type": "t3.small"},
        {
            "name": "colo",
            "count": 2,
            "groups": ["trading", "lowlatency"],
            "region": "ld4",
            "existing": [
                {"address": "192.0.2.10", "trading_nic": "enp65s0f0", "vars": {"colo_rack": "r12"}},
                {"address": "trd-02.ld4.internal", "port": 2222, "private_ip": "192.0.2.11"},
            ],
        },
        {"name": "pg", "count": 2, "groups": ["postgresql"], "instance_type": "r6i.xlarge"},
    ],
}


def mixed(change=None):
    data = copy.deepcopy(MIXED)
    if change:
        change(data)
    return parse_topology(data, "topology.yml")


def test_existing_machines_get_names_groups_and_their_addresses():
    inv = build_inventory(mixed())
    hosts = {h.name: h for h in inv.hosts}
    one, two = hosts["staging-colo-01"], hosts["staging-colo-02"]
    assert one.vars["ansible_host"] == "192.0.2.10" and one.vars["ansible_port"] == 22
    assert one.vars["qb_private_ip"] == "192.0.2.10" and one.vars["qb_trading_nic"] == "enp65s0f0"
    assert one.vars["colo_rack"] == "r12" and one.vars["qb_existing"] is True
    assert two.vars["ansible_host"] == "trd-02.ld4.internal" and two.vars["ansible_port"] == 2222
    assert two.vars["qb_private_ip"] == "192.0.2.11"
    assert "lowlatency" in one.groups and "region_ld4" in one.groups
    # reached at their own address, not through the cloud's bastion
    assert (
        "qb_ssh_bastion" not in one.vars
        and hosts["staging-pg-01"].vars["qb_ssh_bastion"] == "staging-bastion-01"
    )
    data = inventory_data(inv)
    assert {h[0] for h in data["hosts"]} == set(hosts)


def test_the_cloud_part_alone_is_provisioned():
    t = mixed()
    assert [r.name for r in cloud_regions(t)] == ["eu-west-1"]
    rules = {
        "pg": [
            {
                "name": "postgresql",
                "proto": "tcp",
                "ports": ["5432"],
                "from_classes": ["colo", "pg"],
                "from_cidrs": [],
            }
        ]
    }
    res = spec.desired(
        build_inventory(t), rules, {"eu-west-1": {"id": "ami-1", "root_device": "/dev/xvda"}}, "k"
    )
    assert sorted(r.name for r in res if r.kind == "instance") == [
        "staging-bastion-01",
        "staging-pg-01",
        "staging-pg-02",
    ]
    assert not [r for r in res if r.kind in ("sg", "placement") and "colo" in r.key]
    assert [r.key for r in res if r.kind == "vpc"] == ["vpc/eu-west-1"]
    pg = next(r for r in res if r.key == "sg/pg")
    # the colocation hosts have no group to name: their addresses stand for them
    assert {x.source for x in pg.attrs["rules"]} == {"sg:pg", "192.0.2.10/32", "192.0.2.11/32"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda d: d["classes"][1].update(count=3),
            "classes[1].existing: 2 machines listed but count is 3: list one machine per slot",
        ),
        (
            lambda d: d["classes"][1]["existing"][1].update(address="192.0.2.10", port=22, private_ip=None),
            "classes[1].existing[1].address: 192.0.2.10:22 is already classes[1].existing[0]",
        ),
        (
            lambda d: d["classes"][1]["existing"][1].update(private_ip="192.0.2.10"),
            "classes[1].existing[1].private_ip: 192.0.2.10 is already the private address of "
            "classes[1].existing[0]",
        ),
        (
            lambda d: d["classes"][1]["existing"][0].update(address="not an address!"),
            "classes[1].existing[0].address: expected an IP address or a DNS name, got 'not an address!'",
        ),
        (
            lambda d: d["classes"][1]["existing"][1].pop("private_ip"),
            "private_ip is required when address is a DNS name ('trd-02.ld4.internal')",
        ),
        (
            lambda d: d["classes"][1]["existing"][0].update(trading_nic="eth0 with spaces"),
            "classes[1].existing[0].trading_nic",
        ),
        (lambda d: d["classes"][1]["existing"][0].update(rack=3), "unknown key 'rack'"),
        (
            lambda d: d["classes"][1].update(spot=True, groups=["trading"]),
            "classes[1].spot: not allowed for existing machines",
        ),
        (
            lambda d: d.update(provider="existing", aws=None) or d.pop("aws"),
            "classes[0].existing: required when provider is 'existing'",
        ),
    ],
)
def test_bad_existing_machines_are_one_line_naming_the_field(change, message):
    with pytest.raises(TopologyError) as err:
        mixed(change)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_a_topology_of_existing_machines_only():
    def only(d):
        d["provider"] = "existing"
        d.pop("aws")
        d["classes"] = [d["classes"][1]]

    inv = build_inventory(mixed(only))
    assert [h.name for h in inv.hosts] == ["staging-colo-01", "staging-colo-02"]


def test_the_provisioned_state_gives_addresses_and_the_backup_bucket():
    from quantbot_infra.topology import build_inventory as build

    t = mixed()
    made = {
        "backup_bucket": {"name": "qb-staging-backup-1-eu-west-1", "region": "eu-west-1"},
        "hosts": {
            "staging-bastion-01": {
                "instance_id": "i-1",
                "private_ip": "10.20.128.4",
                "public_ip": "198.51.100.7",
            },
            "staging-pg-01": {"instance_id": "i-2", "private_ip": "10.20.0.4", "public_ip": None},
        },
    }
    hosts = {h.name: h.vars for h in build(t, made).hosts}
    assert hosts["staging-bastion-01"]["ansible_host"] == "198.51.100.7"
    assert hosts["staging-pg-01"]["ansible_host"] == hosts["staging-pg-01"]["qb_private_ip"] == "10.20.0.4"
    assert "ansible_host" not in hosts["staging-pg-02"]  # not made yet
    assert hosts["staging-colo-01"]["ansible_host"] == "192.0.2.10"  # existing: its own
    assert {v["qb_backup_bucket"] for v in hosts.values()} == {"qb-staging-backup-1-eu-west-1"}
