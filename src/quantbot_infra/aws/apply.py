"""Carry out a plan: creations and updates in dependency order, destructions in reverse.

Every call names the resource by the id the plan found or the step before made; nothing is
looked up by name or counted, and nothing without the environment's ownership tags is touched
(the plan never lists one for change). ``on_step`` hears one line per resource.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from quantbot_infra.aws import bucket, profile
from quantbot_infra.aws.plan import Plan, Step
from quantbot_infra.aws.session import Session, error_code, translated
from quantbot_infra.aws.spec import KINDS, ROOT_VOLUME_GB, Resource

Progress = Callable[[str], None]


@dataclass
class Applied:
    done: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # destructions refused by a dependency

    @property
    def complete(self) -> bool:
        return not self.kept


def _tag_spec(kind: str, res: Resource, env: str) -> list[dict[str, Any]]:
    return [{"ResourceType": kind, "Tags": [{"Key": k, "Value": v} for k, v in res.tags(env).items()]}]


def apply(sess: Session, plan: Plan, ids: dict[str, str], on_step: Progress | None = None) -> Applied:
    """Make the plan's creations, updates and destructions; ``ids``: key -> id of what exists."""
    say = on_step or (lambda _line: None)
    out = Applied()
    order = {k: i for i, k in enumerate(KINDS)}
    # by kind; within a kind, creations first (an update may name what they make)
    ahead = sorted(plan.of("create", "update"), key=lambda s: (order[s.kind], s.action != "create"))
    new_groups = [s for s in ahead if s.kind == "sg" and s.action == "create"]
    created_instances: dict[str, list[str]] = {}
    for step in ahead:
        if new_groups and order[step.kind] > order["sg"]:
            _rules_of_new_groups(sess, new_groups, ids)
            new_groups = []
        with translated(sess, f"{step.action} {step.kind} {step.key}"):
            ec2 = sess.client(_SERVICE.get(step.kind, "ec2"), step.region)
            if step.action == "create":
                rid = _CREATE[step.kind](ec2, step.resource, plan.env, ids)
                ids[step.key] = rid
                if step.kind == "instance":
                    created_instances.setdefault(step.region, []).append(rid)
            else:
                _update(ec2, step, ids)
        say(f"{step.action}d {step.kind} {step.key} {ids.get(step.key, '')}")
        out.done.append(step.key)
    _rules_of_new_groups(sess, new_groups, ids)
    for region, new in created_instances.items():
        say(f"waiting for {len(new)} instance(s) in {region} to run")
        with translated(sess, f"waiting for instances in {region}"):
            sess.client("ec2", region).get_waiter("instance_running").wait(
                InstanceIds=new, WaiterConfig={"Delay": 5, "MaxAttempts": 120}
            )
    _destroy(sess, plan, ids, say, out)
    return out


def _rules_of_new_groups(sess: Session, steps: list[Step], ids: dict[str, str]) -> None:
    """The rules of the groups just made, once they all exist (rules name each other), before
    any instance starts behind them."""
    for step in steps:
        with translated(sess, f"rules of {step.key}"):
            _set_rules(sess.client("ec2", step.region), step.resource, ids[step.key], [], ids)


# --------------------------------------------------------------------------- creation


def _vpc(ec2: Any, res: Resource, env: str, ids: dict[str, str]) -> str:
    vpc = ec2.create_vpc(CidrBlock=res.attrs["cidr"], TagSpecifications=_tag_spec("vpc", res, env))["Vpc"]
    ec2.get_waiter("vpc_available").wait(VpcIds=[vpc["VpcId"]])
    # instances resolve each other's names inside the VPC
    ec2.modify_vpc_attribute(VpcId=vpc["VpcId"], EnableDnsHostnames={"Value": True})
    return vpc["VpcId"]


def _igw(ec2: Any, res: Resource, env: str, ids: dict[str, str]) -> str:
    gw = ec2.create_internet_gateway(TagSpecifications=_tag_spec("internet-gateway", res, env))
    gid = gw["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=gid, VpcId=ids[res.attrs["vpc"]])
    return gid


def _subnet(ec2: Any, res: Resource, env: str, ids: dict[str, str]) -> str:
    return ec2.create_subnet(
        VpcId=ids[res.attrs["vpc"]],
        CidrBlock=res.attrs["cidr"],
        AvailabilityZone=res.attrs["az"],
        TagSpecifications=_tag_spec("subnet", res, env),
    )["Subnet"]["SubnetId"]


def _eip(ec2: Any, res: Resource, env: str, ids: dict[str, str]) -> str:
    return ec2.allocate_address(Domain="vpc", TagSpecifications=_tag_spec("elastic-ip", res, env))[
        "AllocationId"
    ]


def _nat(ec2: Any, res: Resource, env: str, ids: dict[str, str]) -> str:
    nat = ec2.create_nat_gateway(
        SubnetId=ids[res.attrs["subnet"]],
        AllocationId=ids[res.attrs["eip"]],
        TagSpecifications=_tag_spec("natgateway", res, env),
    )["NatGateway"]
    ec2.get_waiter("nat_gateway_available").wait(
        NatGatewayIds=[nat["NatGatewayId"]], WaiterConfig={"Delay": 10, "MaxAttempts": 60}
    )
    return nat["NatGatewayId"]


def _rtb(ec2: Any, res: Resource, env: str, ids: dict[str, str]) -> str:
    rid = ec2.create_route_table(
        VpcId=ids[res.attrs["vpc"]], TagSpecifications=_tag_spec("route-table", res, env)
    )["RouteTable"]["RouteTableId"]
    if res.attrs.get("gateway"):
        ec2.create_route(
            RouteTableId=rid, DestinationCidrBlock="0.0.0.0/0", GatewayId=ids[res.attrs["gateway"]]
        )
    else:
        ec2.create_route(
            RouteTableId=rid, DestinationCidrBlock="0.0.0.0/0", NatGatewayId=ids[res.attrs["nat"]]
        )
    for subnet in res.attrs["subnets"]:
        ec2.associate_route_table(RouteTableId=rid, SubnetId=ids[subnet])
    return rid


def _sg(ec2: Any, res: Resource, env: str, ids: dict[str, str]) -> str:
    return ec2.create_security_group(
        GroupName=res.name,
        VpcId=ids[res.attrs["vpc"]],
        Description=f"quantbot-infra {env}: class {res.extra_tags.get('qb:class', '')}",
        TagSpecifications=_tag_spec("security-group", res, env),
    )["GroupId"]


def _placement(ec2: Any, res: Resource, env: str, ids: dict[str, str]) -> str:
    ec2.create_placement_group(
        GroupName=res.name,
        Strategy=res.attrs["strategy"],
        TagSpecifications=_tag_spec("placement-group", res, env),
    )
    return res.name


def _instance(ec2: Any, res: Resource, env: str, ids: dict[str, str]) -> str:
    a = res.attrs
    args: dict[str, Any] = {
        "ImageId": a["image"],
        "InstanceType": a["instance_type"],
        "MinCount": 1,
        "MaxCount": 1,
        "UserData": a["user_data"],
        "MetadataOptions": {
            "HttpTokens": "required",
            "HttpEndpoint": "enabled",
            "HttpPutResponseHopLimit": 1,
        },
        "DisableApiTermination": a["termination_protection"],
        "NetworkInterfaces": [
            {
                "DeviceIndex": 0,
                "SubnetId": ids[a["subnet"]],
                "Groups": [ids[a["sg"]]],
                "AssociatePublicIpAddress": a["public"],
                "DeleteOnTermination": True,
            }
        ],
        "Placement": {"AvailabilityZone": a["az"]},
        "TagSpecifications": [
            *_tag_spec("instance", res, env),
            *_tag_spec("volume", res, env),
            *_tag_spec("network-interface", res, env),
        ],
        # the root volume encrypted too (the image's own is not necessarily)
        "BlockDeviceMappings": [
            {
                "DeviceName": a["root_device"],
                "Ebs": {
                    "Encrypted": True,
                    "DeleteOnTermination": True,
                    "VolumeType": "gp3",
                    "VolumeSize": ROOT_VOLUME_GB,
                },
            }
        ],
    }
    if a["volume"]:
        args["BlockDeviceMappings"].append(
            {
                "DeviceName": "/dev/sdf",
                "Ebs": {
                    "VolumeSize": a["volume"]["size_gb"],
                    "VolumeType": a["volume"]["type"],
                    "Encrypted": True,
                    "DeleteOnTermination": True,
                },
            }
        )
    if a["placement"] and a["placement"] in ids:
        args["Placement"]["GroupName"] = ids[a["placement"]]
    if a["spot"]:
        args["InstanceMarketOptions"] = {
            "MarketType": "spot",
            "SpotOptions": {"SpotInstanceType": "one-time", "InstanceInterruptionBehavior": "terminate"},
        }
    if a["profile"]:
        args["IamInstanceProfile"] = {"Name": ids[profile.KEY]}
        iid = profile.launch_retrying(ec2.run_instances, **args)["Instances"][0]["InstanceId"]
    else:
        iid = ec2.run_instances(**args)["Instances"][0]["InstanceId"]
    if a["termination_protection"]:
        # said at launch; said again, where an endpoint ignores the launch parameter
        ec2.modify_instance_attribute(InstanceId=iid, DisableApiTermination={"Value": True})
    return iid


_CREATE: dict[str, Callable[[Any, Resource, str, dict[str, str]], str]] = {
    "vpc": _vpc,
    "igw": _igw,
    "subnet": _subnet,
    "eip": _eip,
    "nat": _nat,
    "rtb": _rtb,
    "sg": _sg,
    "placement": _placement,
    "instance": _instance,
    "bucket": bucket.create,
    "profile": profile.create,
}
# the API of each kind that is not EC2's
_SERVICE = {"bucket": "s3", "profile": "iam"}


# --------------------------------------------------------------------------- updates


def _permission(rule: Any, ids: dict[str, str]) -> dict[str, Any]:
    perm: dict[str, Any] = {"IpProtocol": rule.proto, "FromPort": rule.from_port, "ToPort": rule.to_port}
    if rule.source.startswith("sg:"):
        perm["UserIdGroupPairs"] = [{"GroupId": ids[f"sg/{rule.source[3:]}"]}]
    elif ":" in rule.source:
        perm["Ipv6Ranges"] = [{"CidrIpv6": rule.source, "Description": rule.service}]
    else:
        perm["IpRanges"] = [{"CidrIp": rule.source, "Description": rule.service}]
    return perm


def _set_rules(ec2: Any, res: Resource, gid: str, have: list[Any], ids: dict[str, str]) -> None:
    want = {r.identity(): r for r in res.attrs["rules"]}
    current = {r.identity(): r for r in have}
    extra = [current[k] for k in current if k not in want]
    missing = [want[k] for k in want if k not in current]
    if extra:
        reverse = {v: k[len("sg/") :] for k, v in ids.items() if k.startswith("sg/")}
        perms = []
        for rule in extra:
            perm = {"IpProtocol": rule.proto, "FromPort": rule.from_port, "ToPort": rule.to_port}
            if rule.source.startswith("sg:"):
                gid_of = next((g for g, c in reverse.items() if c == rule.source[3:]), rule.source[4:])
                perm["UserIdGroupPairs"] = [{"GroupId": gid_of}]
            else:
                perm["IpRanges"] = [{"CidrIp": rule.source}]
            perms.append(perm)
        ec2.revoke_security_group_ingress(GroupId=gid, IpPermissions=perms)
    if missing:
        ec2.authorize_security_group_ingress(
            GroupId=gid, IpPermissions=[_permission(r, ids) for r in missing]
        )


def _update(ec2: Any, step: Step, ids: dict[str, str]) -> None:
    res, found = step.resource, step.found
    if step.kind == "sg":
        _set_rules(ec2, res, found.id, found.attrs["rules"], ids)
    elif step.kind == "rtb":
        want = set(res.attrs["subnets"])
        for subnet_id, assoc in found.attrs["associations"].items():
            if not any(ids.get(k) == subnet_id for k in want):
                ec2.disassociate_route_table(AssociationId=assoc)
        for key in want - set(found.attrs["subnets"]):
            ec2.associate_route_table(RouteTableId=found.id, SubnetId=ids[key])
    elif step.kind == "bucket":
        bucket.configure(ec2, res)
    elif step.kind == "profile":
        profile.configure(ec2, res)
    elif step.kind == "instance":
        ec2.modify_instance_attribute(
            InstanceId=found.id, DisableApiTermination={"Value": res.attrs["termination_protection"]}
        )


# --------------------------------------------------------------------------- destruction

_DEPENDENCY = ("DependencyViolation", "InvalidIPAddress.InUse", "VolumeInUse")


def _destroy(sess: Session, plan: Plan, ids: dict[str, str], say: Progress, out: Applied) -> None:
    order = {k: i for i, k in enumerate(KINDS)}
    steps = sorted(plan.of("destroy"), key=lambda s: -order.get(s.kind, len(KINDS)))
    # instances first and together: one call and one wait per region
    by_region: dict[str, list[Step]] = {}
    for s in steps:
        if s.kind == "instance":
            by_region.setdefault(s.region, []).append(s)
    for region, group in by_region.items():
        ec2 = sess.client("ec2", region)
        iids = [s.id for s in group]
        with translated(sess, f"terminating {len(iids)} instance(s) in {region}"):
            for s in group:
                if s.found and s.found.attrs.get("termination_protection"):
                    ec2.modify_instance_attribute(InstanceId=s.id, DisableApiTermination={"Value": False})
            ec2.terminate_instances(InstanceIds=iids)
            say(f"terminating {', '.join(s.name for s in group)}")
            ec2.get_waiter("instance_terminated").wait(
                InstanceIds=iids, WaiterConfig={"Delay": 5, "MaxAttempts": 120}
            )
        out.done += [s.key for s in group]
    # a group that another still names cannot go: drop the references of the doomed ones first
    for s in steps:
        if s.kind == "sg" and s.found and s.found.attrs.get("raw_permissions"):
            with translated(sess, f"revoking the rules of {s.key}"):
                sess.client("ec2", s.region).revoke_security_group_ingress(
                    GroupId=s.id, IpPermissions=_clean(s.found.attrs["raw_permissions"])
                )
    for s in steps:
        if s.kind == "instance":
            continue
        ec2 = sess.client(_SERVICE.get(s.kind, "ec2"), s.region)
        with translated(sess, f"destroying {s.kind} {s.key or s.id}"):
            try:
                _DELETE[s.kind](ec2, s)
            except Exception as exc:
                if error_code(exc) not in _DEPENDENCY:
                    raise
                out.kept.append(f"{s.kind} {s.id}: {error_code(exc)} (something still uses it)")
                say(f"kept {s.kind} {s.key or s.id}: still in use")
                continue
        out.done.append(s.key or s.id)
        ids.pop(s.key, None)
        say(f"destroyed {s.kind} {s.key or s.id} {s.id}")


def _clean(perms: list[dict[str, Any]]) -> list[dict[str, Any]]:
    keep = ("IpProtocol", "FromPort", "ToPort", "UserIdGroupPairs", "IpRanges", "Ipv6Ranges")
    out = []
    for p in perms:
        q = {k: v for k, v in p.items() if k in keep and v not in ([], None)}
        if "UserIdGroupPairs" in q:
            q["UserIdGroupPairs"] = [{"GroupId": g["GroupId"]} for g in q["UserIdGroupPairs"]]
        out.append(q)
    return out


def _delete_nat(ec2: Any, s: Step) -> None:
    ec2.delete_nat_gateway(NatGatewayId=s.id)
    ec2.get_waiter("nat_gateway_deleted").wait(
        NatGatewayIds=[s.id], WaiterConfig={"Delay": 10, "MaxAttempts": 60}
    )
    # AWS removes the gateway's interface with it; an endpoint that leaves it behind gets it
    # removed here (it was the gateway's: the plan read it from the gateway itself)
    for eni in (s.found.attrs.get("enis") or []) if s.found else ():
        try:
            ec2.delete_network_interface(NetworkInterfaceId=eni)
        except Exception as exc:
            if error_code(exc) != "InvalidNetworkInterfaceID.NotFound":
                raise


def _delete_rtb(ec2: Any, s: Step) -> None:
    for assoc in (s.found.attrs.get("associations") or {}).values() if s.found else ():
        ec2.disassociate_route_table(AssociationId=assoc)
    ec2.delete_route_table(RouteTableId=s.id)


def _delete_igw(ec2: Any, s: Step) -> None:
    for vpc in (s.found.attrs.get("vpc_ids") or []) if s.found else ():
        ec2.detach_internet_gateway(InternetGatewayId=s.id, VpcId=vpc)
    ec2.delete_internet_gateway(InternetGatewayId=s.id)


_DELETE: dict[str, Callable[[Any, Step], Any]] = {
    "nat": _delete_nat,
    "eip": lambda ec2, s: ec2.release_address(AllocationId=s.id),
    "eni": lambda ec2, s: ec2.delete_network_interface(NetworkInterfaceId=s.id),
    "volume": lambda ec2, s: ec2.delete_volume(VolumeId=s.id),
    "placement": lambda ec2, s: ec2.delete_placement_group(GroupName=s.id),
    "sg": lambda ec2, s: ec2.delete_security_group(GroupId=s.id),
    "rtb": _delete_rtb,
    "subnet": lambda ec2, s: ec2.delete_subnet(SubnetId=s.id),
    "igw": _delete_igw,
    "vpc": lambda ec2, s: ec2.delete_vpc(VpcId=s.id),
    "bucket": lambda s3, s: bucket.empty_and_delete(s3, s.id),
    "profile": lambda iam, s: profile.delete(iam, s.id),
}
