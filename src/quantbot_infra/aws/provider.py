"""``quantbot-infra plan|up|down`` for environments whose provider is ``aws``.

``plan`` checks the topology against the region's offerings (AZs, instance types, the image),
works out each class's security group from the firewall catalogue (``playbooks/security_groups.yml``),
reads what the account holds and prints the plan; it changes nothing. ``up`` applies a plan and
writes the provisioned state the inventory reads; ``down`` destroys what the environment owns.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from quantbot_infra import local, paths
from quantbot_infra.aws import provisioned
from quantbot_infra.aws.apply import Applied, apply
from quantbot_infra.aws.observe import Observed, observe
from quantbot_infra.aws.plan import Plan, plan_down, plan_up
from quantbot_infra.aws.session import AwsError, Session, error_code, paginate, translated
from quantbot_infra.aws.spec import Resource, desired
from quantbot_infra.runner import run_playbook
from quantbot_infra.topology import (
    Inventory,
    TopologyError,
    cloud_regions,
    load_inventory,
    provisioned_path,
)


@dataclass
class Planned:
    inventory: Inventory
    plan: Plan
    observed: Observed
    wanted: list[Resource]


def load(env: str, inventory: Path | None = None) -> tuple[Inventory, Path]:
    path = Path(inventory) if inventory else paths.inventory_dir(env)
    inv = load_inventory(path)
    if inv.environment != env:
        raise AwsError(f"{path}: describes environment {inv.environment!r}, not {env!r}")
    if inv.topology.provider != "aws":
        raise AwsError(
            f"environment {env!r} uses provider {inv.topology.provider!r}; "
            "plan/up/down --endpoint-url drive the aws provider"
        )
    return inv, path


def check_offerings(sess: Session, inv: Inventory, topology_file: str) -> dict[str, dict[str, str]]:
    """Refuse a topology the regions cannot hold (AZs, instance types, image); region -> image
    (``id``, ``root_device``)."""
    topo = inv.topology
    images = {}
    cloud = {r.name for r in cloud_regions(topo)}
    for i, region in enumerate(topo.regions):
        if region.name not in cloud:
            continue  # existing machines only: nothing to check against AWS there
        with translated(sess, f"reading the offerings of {region.name}"):
            ec2 = sess.client("ec2", region.name)
            zones = {
                z["ZoneName"]
                for z in ec2.describe_availability_zones(
                    Filters=[{"Name": "region-name", "Values": [region.name]}]
                )["AvailabilityZones"]
            }
            for j, az in enumerate(region.azs):
                if az not in zones:
                    raise TopologyError(
                        topology_file,
                        f"regions[{i}].azs[{j}]",
                        f"AZ {az!r} is not offered in {region.name} (offered: {sorted(zones)})",
                    )
            classes = [
                (k, c)
                for k, c in enumerate(topo.classes)
                if (c.region or topo.regions[0].name) == region.name and c.count and c.existing is None
            ]
            types = sorted({c.instance_type for _, c in classes})
            known = set()
            for t in types:
                try:
                    ec2.describe_instance_types(InstanceTypes=[t])
                    known.add(t)
                except Exception as exc:
                    if error_code(exc) not in ("InvalidInstanceType", "InvalidParameterValue"):
                        raise
            offered: dict[str, set[str]] = {}
            if types:
                for o in paginate(
                    ec2,
                    "describe_instance_type_offerings",
                    "InstanceTypeOfferings",
                    LocationType="availability-zone",
                    Filters=[{"Name": "instance-type", "Values": types}],
                ):
                    offered.setdefault(o["InstanceType"], set()).add(o["Location"])
            for k, cls in classes:
                if cls.instance_type not in known:
                    raise TopologyError(
                        topology_file,
                        f"classes[{k}].instance_type",
                        f"unknown instance type {cls.instance_type!r} in {region.name}",
                    )
                for az in cls.azs or region.azs:
                    if az not in offered.get(cls.instance_type, set()):
                        where = sorted(offered.get(cls.instance_type, set())) or "nowhere"
                        raise TopologyError(
                            topology_file,
                            f"classes[{k}].instance_type",
                            f"{cls.instance_type} is not offered in {az} (offered in: {where})",
                        )
            found = ec2.describe_images(
                Owners=list(topo.aws.image.owners),
                Filters=[
                    {"Name": "name", "Values": [topo.aws.image.name]},
                    {"Name": "state", "Values": ["available"]},
                ],
            )["Images"]
            if not found:
                raise TopologyError(
                    topology_file,
                    "aws.image",
                    f"no image named {topo.aws.image.name!r} from owners "
                    f"{list(topo.aws.image.owners)} in {region.name}",
                )
            newest = max(found, key=lambda im: im.get("CreationDate", ""))
            images[region.name] = {
                "id": newest["ImageId"],
                "root_device": newest.get("RootDeviceName") or "/dev/xvda",
            }
    return images


def catalogue(env: str, inventory: Path, inv: Inventory) -> dict[str, list[dict[str, Any]]]:
    """class -> the firewall catalogue's services for its security group."""
    run = run_playbook("security_groups", env, inventory=inventory)
    if not run.ok:
        raise AwsError(
            f"reading the firewall catalogue failed: {run.error or run.failed_tasks} "
            f"(artifacts: {run.artifact_dir})"
        )
    first = {h.node_class: h.name for h in inv.hosts if h.index == 1}
    out = {}
    for cls, host in first.items():
        report = run.facts.get(host, {})
        if "security_group" not in report:
            raise AwsError(f"the firewall catalogue gave nothing for class {cls!r} ({host})")
        out[cls] = report["security_group"]
    return out


def make_plan(
    env: str, sess: Session, inventory: Path | None = None, say: Callable[[str], None] | None = None
) -> Planned:
    """The plan of ``up``: reads only."""
    say = say or (lambda _line: None)
    inv, path = load(env, inventory)
    topo_file = str(path / "topology.yml" if path.is_dir() else path)
    regions = ", ".join(r.name for r in inv.topology.regions)
    say(f"checking {env}'s topology against the offerings of {regions}")
    images = check_offerings(sess, inv, topo_file)
    say("reading the firewall catalogue for the security groups")
    rules = catalogue(env, path, inv)
    key = local.ensure_ssh_key(env).with_suffix(".pub").read_text()
    first = cloud_regions(inv.topology)[0].name
    with translated(sess, "reading the account's id"):
        account = sess.client("sts", first).get_caller_identity()["Account"]
    wanted = desired(inv, rules, images, key, account)
    say("reading what the account holds")
    obs = observe(
        sess,
        env,
        [r.name for r in cloud_regions(inv.topology)],
        placement=any(r.kind == "placement" for r in wanted),
    )
    return Planned(inv, plan_up(env, sess.where(), wanted, obs), obs, wanted)


def apply_plan(
    sess: Session, planned: Planned, inventory: Path | None = None, say: Callable[[str], None] | None = None
) -> tuple[Applied, Path]:
    """Carry out ``planned`` and write the provisioned state for the inventory."""
    env = planned.inventory.environment
    result = apply(sess, planned.plan, planned.observed.ids(), say)
    obs = observe(sess, env, [r.name for r in cloud_regions(planned.inventory.topology)], placement=False)
    state = provisioned_path(_topology_path(env, inventory), env)
    provisioned.write(state, provisioned.record(obs, sess.where()))
    return result, state


def plan_destroy(
    env: str, sess: Session, inventory: Path | None = None, *, delete_backups: bool = False
) -> tuple[Plan, Observed]:
    inv, _ = load(env, inventory)
    obs = observe(sess, env, [r.name for r in cloud_regions(inv.topology)])
    return plan_down(env, sess.where(), obs, delete_backups=delete_backups), obs


def destroy(
    env: str,
    sess: Session,
    plan: Plan,
    obs: Observed,
    inventory: Path | None = None,
    say: Callable[[str], None] | None = None,
) -> Applied:
    result = apply(sess, plan, obs.ids(), say)
    # every instance is gone (kept containers hold no host of ours): the inventory has no address
    provisioned.remove(provisioned_path(_topology_path(env, inventory), env))
    return result


def _topology_path(env: str, inventory: Path | None) -> Path:
    return Path(inventory) if inventory else paths.inventory_dir(env)
