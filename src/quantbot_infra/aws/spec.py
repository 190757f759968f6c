"""The AWS resources a topology asks for: pure, deterministic, no API call.

Every resource has a stable ``key`` (``vpc/eu-west-1``, ``subnet/eu-west-1a/private``,
``instance/prod-pg-01``) carried as the ``qb:key`` tag, so a later run finds it again by key
(instances: by slot), never by counting. Ownership is the pair of tags ``qb:env`` and
``qb:managed-by``; nothing without both is ever changed.
"""

from __future__ import annotations

import base64
import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from quantbot_infra.topology import (
    Inventory,
    Topology,
    _subnet_bits,
    cloud_regions,
    data_volume,
    provisioned_classes,
)

MANAGED_BY = "quantbot-infra"
TAG_ENV, TAG_MANAGED, TAG_KEY = "qb:env", "qb:managed-by", "qb:key"
TAG_CLASS, TAG_SLOT = "qb:class", "qb:slot"
LOWLATENCY_GROUP = "lowlatency"
# creation order; destruction runs it backwards (instances before the SGs and subnets they use)
KINDS = ("bucket", "profile", "vpc", "igw", "subnet", "eip", "nat", "rtb", "sg", "placement", "instance")


@dataclass(frozen=True)
class Resource:
    kind: str
    key: str
    region: str
    name: str
    # what it is made with; ``compare`` names the attributes a kept resource must still match
    attrs: Mapping[str, Any] = field(default_factory=dict)
    compare: tuple[str, ...] = ()
    extra_tags: Mapping[str, str] = field(default_factory=dict)

    def tags(self, env: str) -> dict[str, str]:
        return {
            "Name": self.name,
            TAG_ENV: env,
            TAG_MANAGED: MANAGED_BY,
            TAG_KEY: self.key,
            **self.extra_tags,
        }


@dataclass(frozen=True)
class Rule:
    """One ingress permission: a port range from another class's group or from a network."""

    proto: str
    from_port: int
    to_port: int
    source: str  # "sg:<class>" or a CIDR
    service: str = ""

    def identity(self) -> tuple[str, int, int, str]:
        return (self.proto, self.from_port, self.to_port, self.source)


def region_cidrs(topo: Topology) -> dict[str, ipaddress.IPv4Network]:
    """Each region's share of ``aws.vpc_cidr`` (the whole of it for one region)."""
    vpc = ipaddress.ip_network(topo.aws.vpc_cidr)
    regions = cloud_regions(topo)
    bits = max(0, (len(regions) - 1).bit_length())
    blocks = list(vpc.subnets(prefixlen_diff=bits)) if bits else [vpc]
    return {r.name: blocks[i] for i, r in enumerate(regions)}


def subnet_cidrs(topo: Topology) -> dict[tuple[str, str], ipaddress.IPv4Network]:
    """(AZ, "private"|"public") -> CIDR: private subnets take the lower half of the region's
    blocks, public ones the upper, so adding an AZ (up to the half's size) moves no subnet."""
    regions = cloud_regions(topo)
    region_bits = max(0, (len(regions) - 1).bit_length())
    az_bits = _subnet_bits(regions) - region_bits
    out = {}
    for region in regions:
        blocks = list(region_cidrs(topo)[region.name].subnets(prefixlen_diff=az_bits))
        half = len(blocks) // 2
        for i, az in enumerate(region.azs):
            out[(az, "private")] = blocks[i]
            out[(az, "public")] = blocks[half + i]
    return out


def security_group_name(env: str, node_class: str) -> str:
    return f"qb-{env}-{node_class}"


def security_group_rules(services: Sequence[Mapping[str, Any]]) -> list[Rule]:
    """Rules from the firewall catalogue's view of one class (``firewall`` role,
    ``tasks/security_groups.yml``): ``[{name, proto, ports, from_classes, from_cidrs}]``."""
    rules = set()
    for svc in services:
        for spec in svc["ports"]:
            low, _, high = str(spec).partition("-")
            sources = [f"sg:{c}" for c in svc.get("from_classes", [])] + list(svc.get("from_cidrs", []))
            for source in sources:
                rules.add(Rule(svc["proto"], int(low), int(high or low), source, svc["name"]))
    return sorted(rules, key=lambda r: (r.identity(), r.service))


def user_data(login: str, public_key: str) -> str:
    """cloud-config creating the automation login with the environment's key (base64)."""
    text = "\n".join(
        [
            "#cloud-config",
            "users:",
            "  - default",
            f"  - name: {login}",
            "    shell: /bin/bash",
            "    sudo: ALL=(ALL) NOPASSWD:ALL",
            "    lock_passwd: true",
            "    ssh_authorized_keys:",
            f"      - {public_key.strip()}",
            "",
        ]
    )
    return base64.b64encode(text.encode()).decode()


ROOT_VOLUME_GB = 16


def desired(
    inv: Inventory,
    rules: Mapping[str, Sequence[Mapping[str, Any]]],
    images: Mapping[str, Mapping[str, str]],
    public_key: str,
    account: str = "",
) -> list[Resource]:
    """Every resource of the environment, in creation order.

    ``rules``: class -> its services from the firewall catalogue; ``images``: region -> the
    image's ``id`` and ``root_device``; ``account``: the account id (names the backup bucket)."""
    from quantbot_infra.aws import bucket

    topo = inv.topology
    env = topo.environment
    aws = topo.aws
    out: list[Resource] = []
    backups = bucket.wanted(topo, account) if account else None
    if backups is not None:
        from quantbot_infra.aws import profile

        out += [backups, profile.wanted(env, backups)]
    subnets = subnet_cidrs(topo)
    for region in cloud_regions(topo):
        r = region.name
        out.append(
            Resource("vpc", f"vpc/{r}", r, f"qb-{env}-{r}", {"cidr": str(region_cidrs(topo)[r])}, ("cidr",))
        )
        out.append(Resource("igw", f"igw/{r}", r, f"qb-{env}-{r}", {"vpc": f"vpc/{r}"}))
        for az in region.azs:
            for tier in ("private", "public"):
                out.append(
                    Resource(
                        "subnet",
                        f"subnet/{az}/{tier}",
                        r,
                        f"qb-{env}-{az}-{tier}",
                        {
                            "vpc": f"vpc/{r}",
                            "cidr": str(subnets[(az, tier)]),
                            "az": az,
                            "public": tier == "public",
                        },
                        ("cidr", "az"),
                    )
                )
        nat_azs = region.azs if aws.nat == "per_az" else region.azs[:1]
        for az in nat_azs:
            out.append(Resource("eip", f"eip/{az}", r, f"qb-{env}-nat-{az}"))
            out.append(
                Resource(
                    "nat",
                    f"nat/{az}",
                    r,
                    f"qb-{env}-{az}",
                    {"subnet": f"subnet/{az}/public", "eip": f"eip/{az}"},
                )
            )
        out.append(
            Resource(
                "rtb",
                f"rtb/{r}/public",
                r,
                f"qb-{env}-{r}-public",
                {
                    "vpc": f"vpc/{r}",
                    "gateway": f"igw/{r}",
                    "subnets": [f"subnet/{az}/public" for az in region.azs],
                },
                ("subnets",),
            )
        )
        for az in region.azs:
            nat = f"nat/{az}" if aws.nat == "per_az" else f"nat/{region.azs[0]}"
            out.append(
                Resource(
                    "rtb",
                    f"rtb/{az}/private",
                    r,
                    f"qb-{env}-{az}-private",
                    {"vpc": f"vpc/{r}", "nat": nat, "subnets": [f"subnet/{az}/private"]},
                    ("subnets",),
                )
            )
    class_region = {c.name: (c.region or topo.regions[0].name) for c in topo.classes}
    # existing machines have no group to name: their addresses stand for them
    machines = {c.name: sorted({f"{m.inside_ip}/32" for m in c.existing}) for c in topo.classes if c.existing}
    made = {c.name: c for c in provisioned_classes(topo)}
    for cls in made.values():
        r = class_region[cls.name]
        sg_rules = set()
        for rule in security_group_rules(rules.get(cls.name, [])):
            source = rule.source[3:] if rule.source.startswith("sg:") else None
            if source in machines:
                sg_rules |= {
                    Rule(rule.proto, rule.from_port, rule.to_port, cidr, rule.service)
                    for cidr in machines[source]
                }
            elif source is None or class_region.get(source) == r:
                sg_rules.add(rule)
        sg_rules = sorted(sg_rules, key=lambda x: (x.identity(), x.service))
        out.append(
            Resource(
                "sg",
                f"sg/{cls.name}",
                r,
                security_group_name(env, cls.name),
                {"vpc": f"vpc/{r}", "rules": sg_rules},
                ("rules",),
                {TAG_CLASS: cls.name},
            )
        )
        if LOWLATENCY_GROUP in cls.groups:
            out.append(
                Resource(
                    "placement",
                    f"placement/{cls.name}",
                    r,
                    f"qb-{env}-{cls.name}",
                    {"strategy": "cluster"},
                    extra_tags={TAG_CLASS: cls.name},
                )
            )
    for host in inv.hosts:
        cls = made.get(host.node_class)
        if cls is None:
            continue
        bastion = "bastion" in cls.groups
        tier = "public" if bastion else "private"
        volume = data_volume(cls)
        out.append(
            Resource(
                "instance",
                f"instance/{host.name}",
                host.region,
                host.name,
                {
                    "instance_type": cls.instance_type,
                    "az": host.az,
                    "subnet": f"subnet/{host.az}/{tier}",
                    "public": bastion,
                    "sg": f"sg/{cls.name}",
                    "image": images.get(host.region, {}).get("id", ""),
                    "root_device": images.get(host.region, {}).get("root_device", "/dev/xvda"),
                    "spot": cls.spot,
                    "placement": f"placement/{cls.name}" if LOWLATENCY_GROUP in cls.groups else None,
                    "volume": {"size_gb": volume.size_gb, "type": volume.type} if volume else None,
                    "termination_protection": env == "prod",
                    "profile": backups is not None and bucket.BACKUP_GROUP in cls.groups,
                    "user_data": user_data(aws.ssh_user, public_key),
                },
                ("instance_type", "az", "termination_protection"),
                {TAG_CLASS: cls.name, TAG_SLOT: f"{host.index:02d}"},
            )
        )
    return out


HOURS_PER_MONTH = 730


def monthly_usage(wanted: Sequence[Resource]) -> dict[str, Any]:
    """What the environment runs for in a month, for a cost estimate against the region's price
    list: instance hours per type (on demand and spot apart), NAT gateway hours, EBS GiB-months."""
    hours: dict[str, int] = {}
    ebs: dict[str, int] = {}
    for r in wanted:
        if r.kind != "instance":
            continue
        kind = r.attrs["instance_type"] + (" (spot)" if r.attrs["spot"] else "")
        hours[kind] = hours.get(kind, 0) + HOURS_PER_MONTH
        ebs["gp3"] = ebs.get("gp3", 0) + ROOT_VOLUME_GB
        if r.attrs["volume"]:
            vt = r.attrs["volume"]["type"]
            ebs[vt] = ebs.get(vt, 0) + r.attrs["volume"]["size_gb"]
    nats = sum(1 for r in wanted if r.kind == "nat")
    return {
        "instance_hours": dict(sorted(hours.items())),
        "nat_gateway_hours": nats * HOURS_PER_MONTH,
        "ebs_gib_months": dict(sorted(ebs.items())),
        "public_ipv4_hours": HOURS_PER_MONTH
        * (nats + sum(1 for r in wanted if r.kind == "instance" and r.attrs["public"])),
    }


def render_usage(usage: Mapping[str, Any]) -> str:
    inst = ", ".join(f"{t} {h:,} h" for t, h in usage["instance_hours"].items())
    ebs = ", ".join(f"{t} {g:,} GiB" for t, g in usage["ebs_gib_months"].items())
    return (
        f"a month of this environment ({HOURS_PER_MONTH} h): instances {inst}; NAT gateways "
        f"{usage['nat_gateway_hours']:,} h; public IPv4 {usage['public_ipv4_hours']:,} h; EBS {ebs} "
        "(price them with the region's list)"
    )
