"""The AWS provider against a local endpoint: plan, apply, scale, destroy, ownership guards.

The tests run in file order on one endpoint: prod is planned and made, checked, scaled, joined
by dr in another region, and destroyed around a foreign resource."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.cloud.conftest import ROOT, edit_topology

ENV_FILTER = [
    {"Name": "tag:qb:env", "Values": ["prod"]},
    {"Name": "tag:qb:managed-by", "Values": ["quantbot-infra"]},
]
LIVE = {"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]}


def _tags(item) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in item.get("Tags", item.get("TagSet", [])) or []}


def instances(ec2, region="eu-west-1", env="prod") -> dict[str, dict]:
    out = {}
    for r in ec2(region).describe_instances(Filters=[{"Name": "tag:qb:env", "Values": [env]}, LIVE])[
        "Reservations"
    ]:
        for i in r["Instances"]:
            out[_tags(i)["Name"]] = i
    return out


def tagged_for(ec2, env: str, region: str) -> list[str]:
    """Every live resource carrying the environment's ownership tags."""
    c = ec2(region)
    f = [{"Name": "tag:qb:env", "Values": [env]}]
    found = [v["VpcId"] for v in c.describe_vpcs(Filters=f)["Vpcs"]]
    found += [s["SubnetId"] for s in c.describe_subnets(Filters=f)["Subnets"]]
    found += [g["InternetGatewayId"] for g in c.describe_internet_gateways(Filters=f)["InternetGateways"]]
    # (the local endpoint ignores tag filters on NAT gateways: filtered here)
    found += [
        n["NatGatewayId"]
        for n in c.describe_nat_gateways()["NatGateways"]
        if n["State"] not in ("deleted", "deleting") and _tags(n).get("qb:env") == env
    ]
    found += [t["RouteTableId"] for t in c.describe_route_tables(Filters=f)["RouteTables"]]
    found += [g["GroupId"] for g in c.describe_security_groups(Filters=f)["SecurityGroups"]]
    found += [a["AllocationId"] for a in c.describe_addresses(Filters=f)["Addresses"]]
    found += [v["VolumeId"] for v in c.describe_volumes(Filters=f)["Volumes"]]
    found += [e["NetworkInterfaceId"] for e in c.describe_network_interfaces(Filters=f)["NetworkInterfaces"]]
    found += list(instances(ec2, region, env))
    s3 = ec2(region, "s3")
    for b in s3.list_buckets()["Buckets"]:
        try:
            tags = s3.get_bucket_tagging(Bucket=b["Name"])["TagSet"]
        except s3.exceptions.ClientError:
            continue
        where = s3.get_bucket_location(Bucket=b["Name"]).get("LocationConstraint") or "us-east-1"
        if _tags({"Tags": tags}).get("qb:env") == env and where == region:
            found.append(b["Name"])
    return sorted(found)


def one_error_line(run: subprocess.CompletedProcess) -> str:
    errors = [line for line in run.stderr.splitlines() if line.startswith("error:")]
    assert "Traceback" not in run.stderr, run.stderr
    assert len(errors) == 1, run.stderr
    return errors[0]


# --------------------------------------------------------------------------- bad input first


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda t: t["classes"][1].update(instance_type="zz9.huge"),
            "classes[1].instance_type: unknown instance type 'zz9.huge' in eu-west-1",
        ),
        (
            lambda t: t["regions"][0]["azs"].append("eu-west-1z"),
            "regions[0].azs[3]: AZ 'eu-west-1z' is not offered in eu-west-1",
        ),
        (
            lambda t: t["vpn"].update(pool="10.10.200.0/24"),
            "subnet 10.10.0.0/16 overlaps 10.10.200.0/24 of the VPN pool",
        ),
        (lambda t: t["vpn"]["sites"].append({"name": "colo", "subnets": ["10.10.64.0/20"]}), "overlaps"),
    ],
    ids=["unknown-instance-type", "az-not-offered", "vpc-overlaps-vpn-pool", "vpc-overlaps-a-site"],
)
def test_bad_topology_is_one_line_and_changes_nothing(cli, project, ec2, tmp_path, change, expected):
    import shutil

    inv = tmp_path / "prod"
    shutil.copytree(project / "inventories" / "prod", inv)
    edit_topology(inv, change)
    for command in (("plan",), ("up", "--yes")):
        run = cli(command[0], "prod", *command[1:], inventory=inv)
        assert run.returncode == 1
        assert expected in one_error_line(run)
    assert tagged_for(ec2, "prod", "eu-west-1") == []


def test_missing_credentials_are_one_line(cli, ec2):
    run = cli("up", "prod", "--yes", credentials=False)
    assert run.returncode == 1
    assert "no AWS credentials" in one_error_line(run)
    assert tagged_for(ec2, "prod", "eu-west-1") == []


def test_unreachable_endpoint_is_one_line(cli):
    from tests.cloud.conftest import free_port

    run = cli("plan", "prod", endpoint=f"http://127.0.0.1:{free_port()}")
    assert run.returncode == 1
    assert "cannot reach http://127.0.0.1:" in one_error_line(run)


# --------------------------------------------------------------------------- plan, apply, again


def test_plan_from_nothing_creates_everything_and_changes_nothing(cli, ec2):
    plan = cli.plan("prod")
    actions = {s["action"] for s in plan["steps"]}
    assert actions <= {"create", "skip"}, plan["summary"]
    creates = [s["key"] for s in plan["steps"] if s["action"] == "create"]
    # 16 hosts, 7 classes, 3 AZs: 2 subnets, a NAT and its address, a private route table each
    assert sum(k.startswith("instance/") for k in creates) == 16
    assert sum(k.startswith("sg/") for k in creates) == 7
    assert sum(k.startswith("subnet/") for k in creates) == 6
    assert sum(k.startswith("nat/") for k in creates) == 3
    assert "bucket/backup" in creates
    # the local endpoint has no placement groups: said, one line, not silently dropped
    skipped = [s for s in plan["steps"] if s["action"] == "skip"]
    assert [s["key"] for s in skipped] == ["placement/trading"]
    assert "no placement-group API" in skipped[0]["detail"]
    assert tagged_for(ec2, "prod", "eu-west-1") == []


def test_up_applies_then_nothing_changes(cli, ec2, project):
    run = cli("up", "prod", "--yes")
    assert run.returncode == 0, run.stderr
    assert "+ create" in run.stdout
    before = tagged_for(ec2, "prod", "eu-west-1")
    assert len(instances(ec2)) == 16
    plan = cli.plan("prod")
    assert {s["action"] for s in plan["steps"]} == {"keep", "skip"}, plan["summary"]
    again = cli("up", "prod", "--yes")
    assert again.returncode == 0, again.stderr
    assert "prod: nothing to change" in again.stdout
    assert tagged_for(ec2, "prod", "eu-west-1") == before
    state = json.loads((project / "state" / "prod" / "provisioned.json").read_text())
    assert sorted(state["hosts"]) == sorted(instances(ec2))


def test_every_resource_carries_its_identity(ec2):
    c = ec2("eu-west-1")
    hosts = instances(ec2)
    for name, i in hosts.items():
        tags = _tags(i)
        _, cls, slot = name.split("-")
        assert tags["qb:env"] == "prod" and tags["qb:class"] == cls and tags["qb:slot"] == slot
        assert tags["qb:managed-by"] == "quantbot-infra" and tags["qb:key"] == f"instance/{name}"
        assert i["MetadataOptions"]["HttpTokens"] == "required"
        protected = c.describe_instance_attribute(
            InstanceId=i["InstanceId"], Attribute="disableApiTermination"
        )
        assert protected["DisableApiTermination"]["Value"] is True  # prod
        volumes = c.describe_volumes(
            Filters=[{"Name": "attachment.instance-id", "Values": [i["InstanceId"]]}]
        )
        sizes = sorted(v["Size"] for v in volumes["Volumes"])
        assert all(v["Encrypted"] for v in volumes["Volumes"])
        # data classes get their data volume; the rest only the root one
        assert sizes == ([16, 100] if cls in ("pg", "redis", "monitoring") else [16]), name
        assert bool(i.get("PublicIpAddress")) == (cls == "bastion"), name
        user_data = c.describe_instance_attribute(InstanceId=i["InstanceId"], Attribute="userData")
        import base64

        text = base64.b64decode(base64.b64decode(user_data["UserData"]["Value"])).decode()
        assert "name: ansible" in text and "quantbot-infra@prod" in text
    subnets = {s["SubnetId"]: _tags(s)["qb:key"] for s in c.describe_subnets(Filters=ENV_FILTER)["Subnets"]}
    assert all(
        subnets[i["SubnetId"]].endswith("/public") == name.startswith("prod-bastion")
        for name, i in hosts.items()
    )
    for rtb in c.describe_route_tables(Filters=ENV_FILTER)["RouteTables"]:
        routes = {
            r["DestinationCidrBlock"]: r.get("NatGatewayId") or r.get("GatewayId") for r in rtb["Routes"]
        }
        key = _tags(rtb)["qb:key"]
        assert routes["0.0.0.0/0"].startswith("igw-" if key.endswith("/public") else "nat-"), key


def test_the_backup_bucket_is_versioned_encrypted_private_and_expires_old_versions(cli, ec2):
    s3 = ec2("eu-west-1", "s3")
    name = "qb-prod-backup-123456789012-eu-west-1"
    assert _tags({"Tags": s3.get_bucket_tagging(Bucket=name)["TagSet"]})["qb:key"] == "bucket/backup"
    assert s3.get_bucket_versioning(Bucket=name)["Status"] == "Enabled"
    rule = s3.get_bucket_encryption(Bucket=name)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    assert all(s3.get_public_access_block(Bucket=name)["PublicAccessBlockConfiguration"].values())
    (life,) = s3.get_bucket_lifecycle_configuration(Bucket=name)["Rules"]
    assert life["NoncurrentVersionExpiration"]["NoncurrentDays"] == 30
    assert life["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] == 7
    # someone suspends versioning: the plan says so and up puts it back
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Suspended"})
    plan = cli.plan("prod")
    (update,) = [s for s in plan["steps"] if s["action"] == "update"]
    assert update["key"] == "bucket/backup" and "versioning Suspended -> Enabled" in update["detail"]
    assert cli("up", "prod", "--yes").returncode == 0
    assert s3.get_bucket_versioning(Bucket=name)["Status"] == "Enabled"
    s3.put_object(Bucket=name, Key="backup/quantbot/backup.info", Body=b"a backup's catalogue")


def test_only_the_backup_hosts_reach_the_bucket_through_their_instance_profile(ec2):
    iam = ec2("eu-west-1", "iam")
    with_profile = {n for n, i in instances(ec2).items() if i.get("IamInstanceProfile")}
    assert with_profile == {"prod-monitoring-01"}  # the class in the `backup` group
    doc = iam.get_role_policy(RoleName="qb-prod-backup", PolicyName="qb-backup-bucket")["PolicyDocument"]
    doc = json.loads(doc) if isinstance(doc, str) else doc
    bucket = "arn:aws:s3:::qb-prod-backup-123456789012-eu-west-1"
    assert sorted(r for s in doc["Statement"] for r in [s["Resource"]]) == [bucket, bucket + "/*"]
    assert not any(a == "*" or a.endswith(":*") for s in doc["Statement"] for a in s["Action"])


def _sg_rules(ec2, cls: str) -> set[tuple]:
    c = ec2("eu-west-1")
    groups = c.describe_security_groups(Filters=ENV_FILTER)["SecurityGroups"]
    names = {g["GroupId"]: _tags(g)["qb:class"] for g in groups}
    group = next(g for g in groups if _tags(g)["qb:class"] == cls)
    out = set()
    for p in group["IpPermissions"]:
        for pair in p.get("UserIdGroupPairs", []):
            out.add((p["IpProtocol"], p["FromPort"], p["ToPort"], names[pair["GroupId"]]))
        for rng in p.get("IpRanges", []):
            out.add((p["IpProtocol"], p["FromPort"], p["ToPort"], rng["CidrIp"]))
    return out


def test_security_groups_admit_what_the_catalogue_says(ec2, project):
    from quantbot_infra.aws.provider import catalogue
    from quantbot_infra.topology import load_inventory

    inv_dir = project / "inventories" / "prod"
    services = catalogue("prod", inv_dir, load_inventory(inv_dir))
    for cls, svcs in services.items():
        expected = set()
        for svc in svcs:
            for spec in svc["ports"]:
                low, _, high = spec.partition("-")
                for source in svc["from_classes"] + svc["from_cidrs"]:
                    expected.add((svc["proto"], int(low), int(high or low), source))
        assert _sg_rules(ec2, cls) == expected, cls
    # and what the catalogue means, said by hand: the data tier from the applications, the
    # exporters from monitoring, the tunnel between gateways, SSH from the bastion
    pg = _sg_rules(ec2, "pg")
    assert {("tcp", 5432, 5432, c) for c in ("trading", "gpu", "pg", "monitoring")} <= pg
    assert ("tcp", 5432, 5432, "redis") not in pg
    assert ("tcp", 6379, 6379, "trading") in _sg_rules(ec2, "redis")
    assert ("udp", 51820, 51820, "vpn") in _sg_rules(ec2, "vpn")
    assert ("tcp", 22, 22, "bastion") in _sg_rules(ec2, "trading")
    assert ("tcp", 9100, 9100, "monitoring") in _sg_rules(ec2, "gpu")
    # prod names no admin network yet: nothing may reach the bastion's SSH from outside
    assert not any(src.count(".") == 3 for *_, src in _sg_rules(ec2, "bastion"))


# --------------------------------------------------------------------------- scale


def test_scaling_trading_down_and_up_moves_only_the_highest_slots(cli, ec2, project):
    inv = project / "inventories" / "prod"
    before = {n: i["InstanceId"] for n, i in instances(ec2).items()}
    edit_topology(inv, lambda t: t["classes"][1].update(count=2))
    plan = cli.plan("prod")
    destroy = sorted(s["key"] for s in plan["steps"] if s["action"] == "destroy")
    assert destroy == ["instance/prod-trading-03", "instance/prod-trading-04"]
    assert not [s for s in plan["steps"] if s["action"] in ("create", "update")]
    # without --yes (and no terminal to confirm at) nothing happens
    refused = cli("up", "prod")
    assert refused.returncode == 2 and "nothing was changed" in refused.stderr
    assert {n: i["InstanceId"] for n, i in instances(ec2).items()} == before
    assert cli("up", "prod", "--yes").returncode == 0
    after = {n: i["InstanceId"] for n, i in instances(ec2).items()}
    assert sorted(set(before) - set(after)) == ["prod-trading-03", "prod-trading-04"]
    assert all(after[n] == before[n] for n in after)
    edit_topology(inv, lambda t: t["classes"][1].update(count=4))
    assert cli("up", "prod", "--yes").returncode == 0
    again = {n: i["InstanceId"] for n, i in instances(ec2).items()}
    assert sorted(again) == sorted(before)
    # the same two slots come back, as new instances; every other host is the one it was
    assert sorted(n for n in again if again[n] != before[n]) == ["prod-trading-03", "prod-trading-04"]


def test_a_new_class_is_admitted_where_the_catalogue_says_and_leaves_cleanly(cli, ec2, project):
    inv = project / "inventories" / "prod"
    edit_topology(
        inv,
        lambda t: t["classes"].append(
            {"name": "research", "count": 1, "groups": ["gpu"], "instance_type": "g5.xlarge"}
        ),
    )
    plan = cli.plan("prod")
    changed = sorted(
        (s["action"], s["key"]) for s in plan["steps"] if s["action"] != "keep" and s["action"] != "skip"
    )
    # the data tier admits the new application class: its groups' rules change in place
    assert ("create", "sg/research") in changed and ("create", "instance/prod-research-01") in changed
    assert ("update", "sg/pg") in changed and ("update", "sg/redis") in changed
    assert cli("up", "prod", "--yes").returncode == 0
    assert ("tcp", 5432, 5432, "research") in _sg_rules(ec2, "pg")
    edit_topology(inv, lambda t: t["classes"].pop())
    plan = cli.plan("prod")
    assert sorted(s["key"] for s in plan["steps"] if s["action"] == "destroy") == [
        "instance/prod-research-01",
        "sg/research",
    ]
    gone = cli("up", "prod", "--yes")
    assert gone.returncode == 0, gone.stdout + gone.stderr
    assert ("tcp", 5432, 5432, "research") not in _sg_rules(ec2, "pg")
    assert {s["action"] for s in cli.plan("prod")["steps"]} == {"keep", "skip"}


# --------------------------------------------------------------------------- dr beside prod


def test_dr_in_another_region_does_not_collide_with_prod(cli, ec2):
    prod_before = tagged_for(ec2, "prod", "eu-west-1")
    run = cli("up", "dr", "--yes")
    assert run.returncode == 0, run.stderr
    dr = instances(ec2, "eu-central-1", "dr")
    assert len(dr) == 12 and all(n.startswith("dr-") for n in dr)
    assert tagged_for(ec2, "prod", "eu-west-1") == prod_before
    assert tagged_for(ec2, "dr", "eu-west-1") == [] and tagged_for(ec2, "prod", "eu-central-1") == []
    assert {s["action"] for s in cli.plan("prod")["steps"]} == {"keep", "skip"}
    # dr is not prod: no termination protection
    any_dr = next(iter(dr.values()))
    attr = ec2("eu-central-1").describe_instance_attribute(
        InstanceId=any_dr["InstanceId"], Attribute="disableApiTermination"
    )
    assert attr["DisableApiTermination"]["Value"] is False


# --------------------------------------------------------------------------- inventory from state


def _ansible(project, *argv):
    env = {"QB_STATE_DIR": str(project / "state"), "PATH": str(ROOT / ".venv" / "bin") + ":/usr/bin:/bin"}
    bin_dir = ROOT / ".venv" / "bin"
    run = subprocess.run(
        [str(bin_dir / argv[0]), *argv[1:]],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        check=False,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    return run.stdout


def test_inventory_from_the_provisioned_state(project, ec2):
    inv = str(project / "inventories" / "prod")
    listed = json.loads(_ansible(project, "ansible-inventory", "-i", inv, "--list"))
    hostvars = listed["_meta"]["hostvars"]
    made = instances(ec2)
    assert sorted(hostvars) == sorted(made)
    for name, i in made.items():
        assert hostvars[name]["qb_private_ip"] == i["PrivateIpAddress"]
        assert hostvars[name]["ansible_host"] == i.get("PublicIpAddress", i["PrivateIpAddress"])
    graph = _ansible(project, "ansible-inventory", "-i", inv, "--graph", "--vars", "class_pg")
    assert "qb_ssh_bastion = prod-bastion-01" in graph
    bastion_ip = made["prod-bastion-01"]["PublicIpAddress"]
    shown = _ansible(
        project,
        "ansible",
        "-i",
        inv,
        "prod-pg-01",
        "-m",
        "ansible.builtin.debug",
        "-a",
        "var=ansible_ssh_common_args",
    )
    # the jump uses the environment's key and known_hosts, as the final hop does
    ssh = project / "state" / "prod" / "ssh"
    assert (
        f"ProxyCommand='ssh -W %h:%p -q -p 22 -i {ssh}/id_ed25519 -o StrictHostKeyChecking=accept-new "
        f"-o UserKnownHostsFile={ssh}/known_hosts ansible@{bastion_ip}'" in shown
    ), shown
    assert f"-o UserKnownHostsFile={ssh}/known_hosts" in shown.split("ProxyCommand")[0]


# --------------------------------------------------------------------------- down


def test_down_needs_confirm_and_keeps_foreign_resources(cli, ec2):
    c = ec2("eu-west-1")
    before = tagged_for(ec2, "prod", "eu-west-1")
    run = cli("down", "prod")
    assert run.returncode == 2 and "--confirm prod" in run.stderr
    assert tagged_for(ec2, "prod", "eu-west-1") == before
    wrong = cli("down", "prod", "--confirm", "dr")
    assert wrong.returncode == 2 and tagged_for(ec2, "prod", "eu-west-1") == before

    # what instances leave behind carries the ownership tags but no key: down sweeps it
    own = [{"Key": "qb:env", "Value": "prod"}, {"Key": "qb:managed-by", "Value": "quantbot-infra"}]
    subnet = c.describe_subnets(Filters=ENV_FILTER)["Subnets"][0]["SubnetId"]
    c.create_volume(
        AvailabilityZone="eu-west-1a", Size=8, TagSpecifications=[{"ResourceType": "volume", "Tags": own}]
    )
    c.create_network_interface(
        SubnetId=subnet, TagSpecifications=[{"ResourceType": "network-interface", "Tags": own}]
    )
    c.allocate_address(Domain="vpc", TagSpecifications=[{"ResourceType": "elastic-ip", "Tags": own}])
    # and an untagged volume of someone else's in the same AZ stays
    theirs = c.create_volume(AvailabilityZone="eu-west-1a", Size=8)["VolumeId"]
    vpc = c.describe_vpcs(Filters=ENV_FILTER)["Vpcs"][0]["VpcId"]
    foreign = c.create_security_group(
        GroupName="someone-elses",
        Description="not ours",
        VpcId=vpc,
        TagSpecifications=[
            {"ResourceType": "security-group", "Tags": [{"Key": "owner", "Value": "another-team"}]}
        ],
    )
    gone = cli("down", "prod", "--confirm", "prod")
    assert "foreign, kept" in gone.stdout and foreign["GroupId"] in gone.stdout
    assert gone.returncode == 3  # the VPC stays while it holds what is not ours
    assert c.describe_security_groups(GroupIds=[foreign["GroupId"]])["SecurityGroups"]
    left = tagged_for(ec2, "prod", "eu-west-1")
    assert left and all(x.startswith(("vpc-", "subnet-", "igw-", "rtb-", "qb-prod-backup-")) for x in left), (
        left
    )
    assert instances(ec2) == {}

    c.delete_security_group(GroupId=foreign["GroupId"])
    done = cli("down", "prod", "--confirm", "prod")
    assert done.returncode == 0, done.stdout + done.stderr
    # the off-site backups outlive the environment unless asked
    assert tagged_for(ec2, "prod", "eu-west-1") == ["qb-prod-backup-123456789012-eu-west-1"]
    assert "--delete-backups removes them" in done.stdout
    purge = cli("down", "prod", "--confirm", "prod", "--delete-backups")
    assert purge.returncode == 0, purge.stdout + purge.stderr
    assert tagged_for(ec2, "prod", "eu-west-1") == []
    assert c.describe_volumes(VolumeIds=[theirs])["Volumes"]
    iam = ec2("eu-west-1", "iam")
    assert "qb-prod-backup" not in [r["RoleName"] for r in iam.list_roles()["Roles"]]
    assert "qb-prod-backup" not in [
        p["InstanceProfileName"] for p in iam.list_instance_profiles()["InstanceProfiles"]
    ]
    # dr is untouched by prod's down
    assert len(instances(ec2, "eu-central-1", "dr")) == 12
    assert cli("down", "dr", "--confirm", "dr", "--delete-backups").returncode == 0
    assert tagged_for(ec2, "dr", "eu-central-1") == []
