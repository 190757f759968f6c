"""What the account holds for an environment: read-only calls, grouped by resource key.

A resource is the environment's when it carries both ownership tags (``qb:env`` = the
environment, ``qb:managed-by`` = quantbot-infra). Anything else inside the environment's VPCs is
*foreign*: listed, never changed. Volumes, addresses and interfaces that instances left behind
carry the ownership tags too (they are tagged at launch), so a sweep finds them by tag alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from quantbot_infra.aws import session as aws_session
from quantbot_infra.aws.session import Session, paginate, translated
from quantbot_infra.aws.spec import MANAGED_BY, TAG_CLASS, TAG_ENV, TAG_KEY, TAG_MANAGED, Rule

LIVE_INSTANCE_STATES = ["pending", "running", "stopping", "stopped"]


@dataclass
class Found:
    kind: str
    id: str
    region: str
    key: str = ""
    name: str = ""
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass
class Observed:
    env: str
    owned: dict[str, Found] = field(default_factory=dict)  # key -> resource
    foreign: list[Found] = field(default_factory=list)  # inside the environment's VPCs
    leftovers: list[Found] = field(default_factory=list)  # owned, unattached, keyless
    unsupported: dict[str, str] = field(default_factory=dict)  # API -> what is skipped

    def ids(self) -> dict[str, str]:
        return {k: f.id for k, f in self.owned.items()}


def _tags(item: Mapping[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in item.get("Tags", item.get("TagSet", [])) or []}


def _owned(tags: Mapping[str, str], env: str) -> bool:
    return tags.get(TAG_ENV) == env and tags.get(TAG_MANAGED) == MANAGED_BY


def _env_filter(env: str) -> list[dict[str, Any]]:
    return [
        {"Name": f"tag:{TAG_ENV}", "Values": [env]},
        {"Name": f"tag:{TAG_MANAGED}", "Values": [MANAGED_BY]},
    ]


def _rules(permissions: Iterable[Mapping[str, Any]], class_of_group: Mapping[str, str]) -> list[Rule]:
    out = set()
    for perm in permissions:
        proto = perm.get("IpProtocol", "-1")
        low, high = perm.get("FromPort", 0), perm.get("ToPort", 65535)
        for pair in perm.get("UserIdGroupPairs", []):
            gid = pair.get("GroupId", "")
            out.add(Rule(proto, low, high, f"sg:{class_of_group.get(gid, '?' + gid)}"))
        for rng in perm.get("IpRanges", []):
            out.add(Rule(proto, low, high, rng["CidrIp"]))
        for rng in perm.get("Ipv6Ranges", []):
            out.add(Rule(proto, low, high, rng["CidrIpv6"]))
    return sorted(out, key=Rule.identity)


def observe(sess: Session, env: str, regions: Iterable[str], *, placement: bool = True) -> Observed:
    """Everything the environment owns in ``regions``, plus the foreign resources in its VPCs."""
    obs = Observed(env)
    regions = list(regions)
    for region in regions:
        with translated(sess, f"reading {env}'s resources in {region}"):
            _observe_region(sess, obs, region, placement)
    if regions:
        with translated(sess, f"reading {env}'s backup bucket"):
            _observe_buckets(sess, obs, regions[0])
    return obs


def _observe_buckets(sess: Session, obs: Observed, region: str) -> None:
    from quantbot_infra.aws import bucket

    s3 = sess.client("s3", region)
    prefix = f"qb-{obs.env}-backup-"
    for b in s3.list_buckets().get("Buckets", []):
        if not b["Name"].startswith(prefix):
            continue
        where = s3.get_bucket_location(Bucket=b["Name"]).get("LocationConstraint") or "us-east-1"
        tags, settings = bucket.read(sess.client("s3", where), b["Name"])
        _add(obs, "bucket", b["Name"], where, tags, **settings)
    from quantbot_infra.aws import profile

    role = profile.read(sess.client("iam", region), f"qb-{obs.env}-backup")
    if role is not None:
        _add(obs, "profile", f"qb-{obs.env}-backup", region, role[0], **role[1])


def _add(obs: Observed, kind: str, rid: str, region: str, tags: Mapping[str, str], **attrs: Any) -> Found:
    found = Found(kind, rid, region, tags.get(TAG_KEY, ""), tags.get("Name", ""), dict(attrs))
    if not _owned(tags, obs.env):
        obs.foreign.append(found)
    elif found.key and found.key not in obs.owned:
        obs.owned[found.key] = found
    else:
        obs.leftovers.append(found)
    return found


def _observe_region(sess: Session, obs: Observed, region: str, placement: bool) -> None:
    ec2 = sess.client("ec2", region)
    env = obs.env
    vpcs = paginate(ec2, "describe_vpcs", "Vpcs", Filters=_env_filter(env))
    vpc_ids = [v["VpcId"] for v in vpcs]
    for v in vpcs:
        _add(obs, "vpc", v["VpcId"], region, _tags(v), cidr=v["CidrBlock"])
    in_vpcs = [{"Name": "vpc-id", "Values": vpc_ids}]

    subnet_key: dict[str, str] = {}
    instances: list[Mapping[str, Any]] = []
    if vpc_ids:
        for s in paginate(ec2, "describe_subnets", "Subnets", Filters=in_vpcs):
            f = _add(
                obs,
                "subnet",
                s["SubnetId"],
                region,
                _tags(s),
                cidr=s["CidrBlock"],
                az=s["AvailabilityZone"],
                vpc_id=s["VpcId"],
            )
            subnet_key[s["SubnetId"]] = f.key
        for g in paginate(
            ec2,
            "describe_internet_gateways",
            "InternetGateways",
            Filters=[{"Name": "attachment.vpc-id", "Values": vpc_ids}],
        ):
            _add(
                obs,
                "igw",
                g["InternetGatewayId"],
                region,
                _tags(g),
                vpc_ids=[a["VpcId"] for a in g.get("Attachments", [])],
            )
        for n in paginate(
            ec2,
            "describe_nat_gateways",
            "NatGateways",
            Filters=[*in_vpcs, {"Name": "state", "Values": ["pending", "available"]}],
        ):
            _add(
                obs,
                "nat",
                n["NatGatewayId"],
                region,
                _tags(n),
                subnet_id=n["SubnetId"],
                vpc_id=n["VpcId"],
                enis=[
                    a["NetworkInterfaceId"]
                    for a in n.get("NatGatewayAddresses", [])
                    if a.get("NetworkInterfaceId")
                ],
            )
        for t in paginate(ec2, "describe_route_tables", "RouteTables", Filters=in_vpcs):
            assoc = t.get("Associations", [])
            if any(a.get("Main") for a in assoc):
                continue  # the VPC's main table goes with the VPC
            _add(
                obs,
                "rtb",
                t["RouteTableId"],
                region,
                _tags(t),
                vpc_id=t["VpcId"],
                subnets=sorted(
                    subnet_key.get(a["SubnetId"], a["SubnetId"]) for a in assoc if a.get("SubnetId")
                ),
                associations={
                    a["SubnetId"]: a["RouteTableAssociationId"] for a in assoc if a.get("SubnetId")
                },
            )
        groups = [
            g
            for g in paginate(ec2, "describe_security_groups", "SecurityGroups", Filters=in_vpcs)
            if g["GroupName"] != "default"
        ]
        class_of = {
            g["GroupId"]: _tags(g).get(TAG_CLASS, "?" + g["GroupId"]) for g in groups if _owned(_tags(g), env)
        }
        for g in groups:
            _add(
                obs,
                "sg",
                g["GroupId"],
                region,
                _tags(g),
                group_name=g["GroupName"],
                vpc_id=g["VpcId"],
                rules=_rules(g.get("IpPermissions", []), class_of),
                references=sorted(
                    {
                        p["GroupId"]
                        for perm in g.get("IpPermissions", [])
                        for p in perm.get("UserIdGroupPairs", [])
                    }
                ),
                raw_permissions=g.get("IpPermissions", []),
            )
        for r in paginate(
            ec2,
            "describe_instances",
            "Reservations",
            Filters=[*in_vpcs, {"Name": "instance-state-name", "Values": LIVE_INSTANCE_STATES}],
        ):
            instances.extend(r["Instances"])
    # instances are found by their tags too: one whose VPC lost its tags is still the environment's
    for r in paginate(
        ec2,
        "describe_instances",
        "Reservations",
        Filters=[*_env_filter(env), {"Name": "instance-state-name", "Values": LIVE_INSTANCE_STATES}],
    ):
        instances.extend(
            i for i in r["Instances"] if i["InstanceId"] not in {x["InstanceId"] for x in instances}
        )
    for i in instances:
        tags = _tags(i)
        protected = False
        if _owned(tags, env):
            protected = ec2.describe_instance_attribute(
                InstanceId=i["InstanceId"], Attribute="disableApiTermination"
            )["DisableApiTermination"]["Value"]
        _add(
            obs,
            "instance",
            i["InstanceId"],
            region,
            tags,
            instance_type=i["InstanceType"],
            vpc_id=i.get("VpcId", ""),
            az=i["Placement"]["AvailabilityZone"],
            state=i["State"]["Name"],
            private_ip=i.get("PrivateIpAddress", ""),
            public_ip=i.get("PublicIpAddress", ""),
            termination_protection=protected,
            slot=tags.get("qb:slot", ""),
        )
    owned_instances = {i["InstanceId"] for i in instances if _owned(_tags(i), env)}
    # a NAT gateway's interface goes with the gateway
    gateway_enis = {
        e
        for f in [*obs.owned.values(), *obs.foreign]
        if f.kind == "nat" and f.region == region
        for e in f.attrs["enis"]
    }
    if vpc_ids:
        for e in paginate(ec2, "describe_network_interfaces", "NetworkInterfaces", Filters=in_vpcs):
            attached = (e.get("Attachment") or {}).get("InstanceId")
            if (
                attached in owned_instances
                or e.get("RequesterManaged")
                or e.get("InterfaceType") == "nat_gateway"
                or e["NetworkInterfaceId"] in gateway_enis
            ):
                continue  # goes with its instance or gateway
            if e.get("Status") == "available" and _owned(_tags(e), env):
                obs.leftovers.append(Found("eni", e["NetworkInterfaceId"], region, name="left behind"))
            elif not _owned(_tags(e), env):
                obs.foreign.append(
                    Found(
                        "eni",
                        e["NetworkInterfaceId"],
                        region,
                        name=_tags(e).get("Name", ""),
                        attrs={"subnet_id": e.get("SubnetId"), "vpc_id": e.get("VpcId")},
                    )
                )
    for a in ec2.describe_addresses(Filters=_env_filter(env)).get("Addresses", []):
        _add(obs, "eip", a["AllocationId"], region, _tags(a), associated=bool(a.get("AssociationId")))
    for v in paginate(
        ec2,
        "describe_volumes",
        "Volumes",
        Filters=[*_env_filter(env), {"Name": "status", "Values": ["available"]}],
    ):
        obs.leftovers.append(
            Found("volume", v["VolumeId"], region, name="left behind", attrs={"size_gb": v["Size"]})
        )
    if placement:
        try:
            groups = ec2.describe_placement_groups(Filters=_env_filter(env)).get("PlacementGroups", [])
        except Exception as exc:
            if not aws_session.missing_api(exc):
                raise
            obs.unsupported["placement"] = (
                f"{sess.where()} has no placement-group API: lowlatency classes "
                "start without a cluster placement group"
            )
        else:
            for g in groups:
                _add(obs, "placement", g["GroupName"], region, _tags(g), strategy=g.get("Strategy"))
