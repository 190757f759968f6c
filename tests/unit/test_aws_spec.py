"""The AWS provider's pure parts: what a topology asks for, and the plan against what exists."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from quantbot_infra.aws import spec
from quantbot_infra.aws.observe import Found, Observed
from quantbot_infra.aws.plan import plan_down, plan_up
from quantbot_infra.topology import TopologyError, build_inventory, parse_topology

ROOT = Path(__file__).resolve().parents[2]
PROD = yaml.safe_load((ROOT / "inventories" / "prod" / "topology.yml").read_text())
IMAGES = {
    "eu-west-1": {"id": "ami-1", "root_device": "/dev/xvda"},
    "eu-central-1": {"id": "ami-2", "root_device": "/dev/xvda"},
}


def topo(change=None):
    data = copy.deepcopy(PROD)
    if change:
        change(data)
    return parse_topology(data)


def wanted(t, rules=None):
    return spec.desired(build_inventory(t), rules or {}, IMAGES, "ssh-ed25519 AAAA test")


def test_subnets_split_the_vpc_per_az_private_low_public_high():
    cidrs = spec.subnet_cidrs(topo())
    assert str(cidrs[("eu-west-1a", "private")]) == "10.10.0.0/19"
    assert str(cidrs[("eu-west-1c", "private")]) == "10.10.64.0/19"
    assert str(cidrs[("eu-west-1a", "public")]) == "10.10.128.0/19"


def test_two_regions_share_the_vpc_cidr_without_overlap():
    def two(d):
        d["regions"].append({"name": "eu-central-1", "azs": ["eu-central-1a"]})
        d["classes"].append(
            {"name": "standby", "count": 1, "region": "eu-central-1", "instance_type": "m6i.large"}
        )

    t = topo(two)
    regions = spec.region_cidrs(t)
    assert [str(regions[r]) for r in ("eu-west-1", "eu-central-1")] == ["10.10.0.0/17", "10.10.128.0/17"]
    nets = list(spec.subnet_cidrs(t).values())
    assert all(not a.overlaps(b) for i, a in enumerate(nets) for b in nets[i + 1 :])
    vpcs = [r for r in wanted(t) if r.kind == "vpc"]
    assert [r.key for r in vpcs] == ["vpc/eu-west-1", "vpc/eu-central-1"]


def test_prod_asks_for_one_of_each_per_az_and_an_instance_per_slot():
    res = wanted(topo())
    kinds = {}
    for r in res:
        kinds[r.kind] = kinds.get(r.kind, 0) + 1
    assert kinds == {
        "vpc": 1,
        "igw": 1,
        "subnet": 6,
        "eip": 3,
        "nat": 3,
        "rtb": 4,
        "sg": 7,
        "placement": 1,
        "instance": 16,
    }
    inst = {r.name: r for r in res if r.kind == "instance"}
    assert inst["prod-pg-01"].attrs["volume"] == {"size_gb": spec_default(), "type": "gp3"}
    assert inst["prod-trading-01"].attrs["volume"] is None
    assert inst["prod-trading-01"].attrs["placement"] == "placement/trading"
    assert inst["prod-bastion-01"].attrs["subnet"] == "subnet/eu-west-1a/public"
    assert inst["prod-pg-02"].attrs["subnet"] == "subnet/eu-west-1b/private"
    assert all(r.attrs["termination_protection"] for r in inst.values())
    assert inst["prod-redis-03"].tags("prod")["qb:slot"] == "03"


def spec_default():
    from quantbot_infra.topology import DEFAULT_DATA_VOLUME_GB

    return DEFAULT_DATA_VOLUME_GB


def test_one_nat_per_region_when_asked_and_no_protection_outside_prod():
    def change(d):
        d["aws"]["nat"] = "per_region"
        d["environment"] = "dr"

    res = wanted(topo(change))
    assert [r.key for r in res if r.kind == "nat"] == ["nat/eu-west-1a"]
    assert {r.attrs.get("nat") for r in res if r.key.endswith("/private") and r.kind == "rtb"} == {
        "nat/eu-west-1a"
    }
    assert not any(r.attrs["termination_protection"] for r in res if r.kind == "instance")


def test_spot_is_for_classes_without_data():
    t = topo(lambda d: d["classes"][2].update(spot=True))  # gpu
    assert all(r.attrs["spot"] for r in wanted(t) if r.kind == "instance" and "gpu" in r.name)
    with pytest.raises(TopologyError, match=r"classes\[3\].spot: a class holding data \(postgresql\)"):
        topo(lambda d: d["classes"][3].update(spot=True))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["aws"].update(vpc_cidr="10.10.0.0/27"), "expected an IPv4 network of /24 or larger"),
        (lambda d: d["classes"][0].update(volume={"size_gb": 0}), "classes[0].volume.size_gb"),
        (lambda d: d["aws"].update(nat="sometimes"), "aws.nat: expected one of"),
    ],
)
def test_bad_aws_settings_name_the_field(change, message):
    with pytest.raises(TopologyError) as err:
        topo(change)
    assert message in str(err.value)


def test_user_data_makes_the_login_with_the_key():
    import base64

    text = base64.b64decode(spec.user_data("ansible", "ssh-ed25519 AAAA k\n")).decode()
    assert text.startswith("#cloud-config\n")
    assert "  - name: ansible\n" in text and "      - ssh-ed25519 AAAA k\n" in text


def test_security_group_rules_come_from_the_catalogue_view():
    rules = spec.security_group_rules(
        [
            {
                "name": "postgresql",
                "proto": "tcp",
                "ports": ["5432", "6432"],
                "from_classes": ["trading"],
                "from_cidrs": ["10.110.0.0/24"],
            },
            {"name": "range", "proto": "udp", "ports": ["8000-8010"], "from_classes": [], "from_cidrs": []},
        ]
    )
    assert [r.identity() for r in rules] == [
        ("tcp", 5432, 5432, "10.110.0.0/24"),
        ("tcp", 5432, 5432, "sg:trading"),
        ("tcp", 6432, 6432, "10.110.0.0/24"),
        ("tcp", 6432, 6432, "sg:trading"),
    ]


def _observed_from(res, env="prod"):
    obs = Observed(env)
    for i, r in enumerate(res):
        attrs = dict(r.attrs)
        if r.kind == "instance":
            attrs.update(private_ip=f"10.10.0.{i}", public_ip="")
        obs.owned[r.key] = Found(r.kind, f"id-{i}", r.region, r.key, r.name, attrs)
    return obs


def test_plan_keeps_what_matches_updates_rules_and_destroys_dropped_slots():
    res = wanted(topo())
    obs = _observed_from([r for r in res if r.kind != "placement"])
    assert {
        s.action for s in plan_up("prod", "AWS", [r for r in res if r.kind != "placement"], obs).steps
    } == {"keep"}
    # two slots fewer, one rule more, termination protection found off, a foreign group
    smaller = wanted(topo(lambda d: d["classes"][1].update(count=2)))
    pg = next(r for r in smaller if r.key == "sg/pg")
    more = spec.Resource(
        "sg",
        pg.key,
        pg.region,
        pg.name,
        {**pg.attrs, "rules": [spec.Rule("tcp", 1, 1, "sg:pg")]},
        pg.compare,
        pg.extra_tags,
    )
    smaller = [more if r.key == "sg/pg" else r for r in smaller if r.kind != "placement"]
    obs.owned["instance/prod-pg-01"].attrs["termination_protection"] = False
    obs.foreign.append(Found("sg", "sg-theirs", "eu-west-1", name="theirs", attrs={"vpc_id": "id-0"}))
    plan = plan_up("prod", "AWS", smaller, obs)
    by = {(s.action, s.key or s.id) for s in plan.steps if s.action != "keep"}
    assert by == {
        ("destroy", "instance/prod-trading-03"),
        ("destroy", "instance/prod-trading-04"),
        ("update", "sg/pg"),
        ("update", "instance/prod-pg-01"),
        ("foreign", "sg-theirs"),
    }
    assert "foreign, kept" in plan.render()


def test_drift_that_cannot_change_in_place_is_reported_not_applied():
    res = [r for r in wanted(topo()) if r.kind != "placement"]
    obs = _observed_from(res)
    obs.owned["instance/prod-gpu-01"].attrs["instance_type"] = "g5.2xlarge"
    plan = plan_up("prod", "AWS", res, obs)
    drift = plan.of("drift")
    assert [s.key for s in drift] == ["instance/prod-gpu-01"]
    assert "instance_type g5.2xlarge -> g5.xlarge" in drift[0].detail
    assert not plan.changes


def test_down_keeps_the_vpc_around_foreign_resources():
    res = [r for r in wanted(topo()) if r.kind != "placement"]
    obs = _observed_from(res)
    for f in obs.owned.values():
        f.attrs.setdefault("vpc_id", "id-0")
    obs.foreign.append(Found("sg", "sg-theirs", "eu-west-1", attrs={"vpc_id": "id-0"}))
    plan = plan_down("prod", "AWS", obs)
    kept = {s.kind for s in plan.of("keep")}
    assert kept == {"vpc", "igw", "subnet", "rtb"}
    assert {s.kind for s in plan.of("destroy")} == {"instance", "sg", "nat", "eip"}
    assert [s.id for s in plan.of("foreign")] == ["sg-theirs"]


def test_a_backup_class_brings_the_bucket_and_the_profile_only_its_hosts_carry():
    t = topo()
    res = spec.desired(build_inventory(t), {}, IMAGES, "k", account="123456789012")
    by_kind = {r.kind: r for r in res}
    assert by_kind["bucket"].name == "qb-prod-backup-123456789012-eu-west-1"
    assert by_kind["bucket"].attrs == {
        "versioning": "Enabled",
        "encryption": "aws:kms",
        "public_access": True,
        "lifecycle": 30,
    }
    statements = by_kind["profile"].attrs["policy"]["Statement"]
    assert {s["Resource"] for s in statements} == {
        "arn:aws:s3:::qb-prod-backup-123456789012-eu-west-1",
        "arn:aws:s3:::qb-prod-backup-123456789012-eu-west-1/*",
    }
    assert {r.name for r in res if r.kind == "instance" and r.attrs["profile"]} == {"prod-monitoring-01"}
    no_backup = topo(lambda d: d["classes"][6].update(groups=["monitoring"]))
    assert not [
        r
        for r in spec.desired(build_inventory(no_backup), {}, IMAGES, "k", account="1")
        if r.kind in ("bucket", "profile")
    ]
