"""Topology model: the declared shape of one environment and the inventory derived from it.

A topology file (``inventories/<env>/topology.yml``) names the environment, its provider, the
regions and availability zones it spans and its node classes. From it this module derives the
hosts (``<env>-<class>-<NN>``), their groups (class, role, env, region, AZ) and their variables.

Every error a user can make in that file is reported as one :class:`TopologyError` whose message
names the file, the field and what was expected; nothing here lets a traceback reach the user.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
    model_validator,
)

from quantbot_infra import bastion, wireguard

TOPOLOGY_FILENAME = "topology.yml"
PLUGIN_NAME = "quantbot_topology"
# hosts per class: slots are numbered 01..MAX_COUNT (two digits at least, so names of small
# classes read alike); the local provider stops earlier, where its block of SSH ports per class ends
MAX_COUNT = 9999
LOCAL_MAX_COUNT = 99
# role groups whose hosts keep data: on AWS they get an encrypted data volume and never spot
DATA_GROUPS = ("postgresql", "redis", "backup")
DEFAULT_DATA_VOLUME_GB = 100
ENVIRONMENTS = ("dev", "staging", "prod", "dr")

# Role groups the playbooks know about. A topology may declare more under `groups:`.
BUILTIN_ROLE_GROUPS: dict[str, str] = {
    "trading": "low-latency order-routing and strategy nodes",
    "lowlatency": "hosts tuned for latency (CPU isolation, IRQ affinity, PTP)",
    "gpu": "GPU nodes for model training and inference",
    "postgresql": "PostgreSQL data nodes (primary and replicas)",
    "redis": "Redis data nodes (primary, replicas, sentinels)",
    "wireguard": "members of the WireGuard mesh",
    "vpn_gateway": "site-to-site WireGuard gateways",
    "monitoring": "Prometheus, Alertmanager and dashboards",
    "bastion": "SSH jump hosts",
    "backup": "backup repository hosts (pgBackRest)",
}

NAME_RE = r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$"
GROUP_RE = r"^[a-z][a-z0-9_]*$"
VAR_RE = r"^[A-Za-z_][A-Za-z0-9_]*$"

Name = Annotated[StrictStr, Field(pattern=NAME_RE, max_length=24)]
GroupName = Annotated[StrictStr, Field(pattern=GROUP_RE, max_length=40)]


class TopologyError(ValueError):
    """A topology file is malformed. ``str(err)`` is one line: file, field, expectation."""

    def __init__(self, path: str | Path, field_path: str, message: str,
                 line: int | None = None) -> None:
        self.path = str(path)
        self.field = field_path
        self.message = message
        self.line = line
        where = f"{self.path}:{line}" if line else self.path
        where += f": {field_path}: " if field_path else ": "
        super().__init__(where + message)


def _ipv4_network(value: str, longest_prefix: int) -> str:
    """``value`` if it is an IPv4 network in CIDR form of /``longest_prefix`` or larger."""
    try:
        net = ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        raise ValueError(f"expected an IPv4 network in CIDR form, got {value!r}") from exc
    if net.version != 4 or net.prefixlen > longest_prefix:
        raise ValueError(f"expected an IPv4 network of /{longest_prefix} or larger, got {value!r}")
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Region(_Strict):
    name: Name
    azs: list[Name] = Field(min_length=1)

    @field_validator("azs")
    @classmethod
    def _unique_azs(cls, v: list[str]) -> list[str]:
        _reject_duplicates(v, "AZ")
        return v


class LocalProvider(_Strict):
    """Settings of the local (Docker) provider."""

    network: Annotated[StrictStr, Field(pattern=NAME_RE)]
    subnet: StrictStr
    ssh_port_base: Annotated[StrictInt, Field(ge=1024, le=60000)]
    image: StrictStr = "quantbot-infra/host:bookworm"

    @field_validator("subnet")
    @classmethod
    def _subnet(cls, v: str) -> str:
        return _ipv4_network(v, 26)


class AwsImage(_Strict):
    """The machine image instances boot: the newest image of ``owners`` whose name matches."""

    # Debian's own account publishes the official images
    name: Annotated[StrictStr, Field(min_length=1)] = "debian-12-amd64-*"
    owners: list[Annotated[StrictStr, Field(min_length=1)]] = Field(
        default_factory=lambda: ["136693071363"], min_length=1)


class AwsProvider(_Strict):
    """Settings of the AWS provider (addresses come from the VPC at provisioning time)."""

    # the environment's address space: split between its regions, then into a private and a
    # public subnet per AZ
    vpc_cidr: StrictStr
    # the login the instances' user data creates (with the environment's SSH key)
    ssh_user: Annotated[StrictStr, Field(pattern=r"^[a-z_][a-z0-9_-]*$")] = "ansible"
    # NAT gateways: one per AZ (an AZ's outage leaves the others their way out) or one per region
    nat: Literal["per_az", "per_region"] = "per_az"
    image: AwsImage = Field(default_factory=AwsImage)
    # the off-site backup bucket keeps an overwritten or deleted version this many days
    backup_noncurrent_days: Annotated[StrictInt, Field(ge=1, le=3650)] = 30

    @field_validator("vpc_cidr")
    @classmethod
    def _cidr(cls, v: str) -> str:
        return _ipv4_network(v, 24)


class Volume(_Strict):
    """An encrypted EBS data volume attached to each instance of a class."""

    size_gb: Annotated[StrictInt, Field(ge=1, le=65536)]
    type: Literal["gp3", "gp2", "io1", "io2", "st1"] = "gp3"


class VpnSite(_Strict):
    """A site: the subnets its gateway routes into the WireGuard mesh."""

    name: Name
    subnets: list[StrictStr] = Field(min_length=1)


class Vpn(_Strict):
    """The environment's WireGuard mesh (members: the ``wireguard`` group)."""

    pool: StrictStr
    port: Annotated[StrictInt, Field(ge=1, le=65535)] = 51820
    sites: list[VpnSite] = Field(default_factory=list)

    @field_validator("pool")
    @classmethod
    def _pool(cls, v: str) -> str:
        return _ipv4_network(v, 28)

    @model_validator(mode="after")
    def _sites(self) -> Vpn:
        try:
            wireguard.check_sites(self.pool, {s.name: s.subnets for s in self.sites})
        except wireguard.WireGuardError as exc:
            raise _FieldError("vpn.sites", str(exc)) from None
        names = [s.name for s in self.sites]
        for i, name in enumerate(names):
            if name in names[:i]:
                raise _FieldError(f"vpn.sites[{i}].name", f"duplicate site {name!r}")
        return self


_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
HOSTNAME_RE = rf"^(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*$"
# a Linux interface name: at most 15 characters, no slash or space
NIC_RE = r"^[A-Za-z0-9_.:-]{1,15}$"


def _identifiers(v: dict[str, Any]) -> dict[str, Any]:
    """``v`` if every key is a valid variable name."""
    for key in v:
        if not re.match(VAR_RE, key):
            raise ValueError(f"variable name {key!r} is not a valid identifier")
    return v


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


class ExistingHost(_Strict):
    """A machine that already exists (bare metal in colocation, a VM made elsewhere): the
    topology names it, the provider never creates or destroys it."""

    # where SSH reaches it: an IP address or a DNS name
    address: StrictStr
    port: Annotated[StrictInt, Field(ge=1, le=65535)] = 22
    # the address it sends from inside the environment (firewall allow-lists, services' binds);
    # default: ``address`` when that is an IP address
    private_ip: StrictStr | None = None
    # the NIC that carries market data and orders (low-latency tuning, PTP)
    trading_nic: Annotated[StrictStr, Field(pattern=NIC_RE)] | None = None
    vars: dict[StrictStr, Any] = Field(default_factory=dict)

    @field_validator("address")
    @classmethod
    def _address(cls, v: str) -> str:
        if not (_is_ip(v) or re.match(HOSTNAME_RE, v)):
            raise ValueError(f"expected an IP address or a DNS name, got {v!r}")
        return v

    @field_validator("private_ip")
    @classmethod
    def _private_ip(cls, v: str | None) -> str | None:
        if v is not None and not _is_ip(v):
            raise ValueError(f"expected an IP address, got {v!r}")
        return v

    _var_names = field_validator("vars")(classmethod(lambda cls, v: _identifiers(v)))

    @model_validator(mode="after")
    def _needs_private_ip(self) -> ExistingHost:
        if self.private_ip is None and not _is_ip(self.address):
            raise ValueError(f"private_ip is required when address is a DNS name ({self.address!r})")
        return self

    @property
    def inside_ip(self) -> str:
        return self.private_ip or self.address


class NodeClass(_Strict):
    name: Name
    count: Annotated[StrictInt, Field(ge=0, le=MAX_COUNT)]
    groups: list[GroupName] = Field(default_factory=list)
    region: Name | None = None
    azs: list[Name] | None = None
    instance_type: Annotated[StrictStr, Field(min_length=1)] = "local"
    # the VPN site of the class's hosts (a name under vpn.sites); default: the region's name
    site: Name | None = None
    # AWS: spot instances (interruptible; never for a class holding data), and a data volume
    # (data classes get DEFAULT_DATA_VOLUME when they name none)
    spot: bool = False
    volume: Volume | None = None
    # machines that already exist, one per slot in slot order: the class is managed, never
    # provisioned (its count must match)
    existing: list[ExistingHost] | None = None
    vars: dict[StrictStr, Any] = Field(default_factory=dict)

    @field_validator("groups")
    @classmethod
    def _unique_groups(cls, v: list[str]) -> list[str]:
        _reject_duplicates(v, "group")
        return v

    @field_validator("azs")
    @classmethod
    def _unique_azs(cls, v: list[str] | None) -> list[str] | None:
        if v is not None:
            if not v:
                raise ValueError("expected at least one AZ (or leave the key out for all)")
            _reject_duplicates(v, "AZ")
        return v

    _var_names = field_validator("vars")(classmethod(lambda cls, v: _identifiers(v)))


class Topology(_Strict):
    plugin: Literal["quantbot_topology"]
    environment: Literal["dev", "staging", "prod", "dr"]
    # existing: every class lists its machines (nothing is provisioned)
    provider: Literal["local", "aws", "existing"]
    local: LocalProvider | None = None
    aws: AwsProvider | None = None
    regions: list[Region] = Field(min_length=1)
    groups: dict[GroupName, StrictStr] = Field(default_factory=dict)
    classes: list[NodeClass] = Field(min_length=1)
    vpn: Vpn | None = None
    vars: dict[StrictStr, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _cross_checks(self) -> Topology:
        if self.provider == "local" and self.local is None:
            raise _FieldError("local", "required when provider is 'local'")
        if self.provider == "aws" and self.aws is None:
            raise _FieldError("aws", "required when provider is 'aws'")
        if self.provider != "local" and self.local is not None:
            raise _FieldError("local", "only allowed when provider is 'local'")
        if self.provider != "aws" and self.aws is not None:
            raise _FieldError("aws", "only allowed when provider is 'aws'")

        regions = {}
        for i, region in enumerate(self.regions):
            if region.name in regions:
                raise _FieldError(f"regions[{i}].name", f"duplicate region {region.name!r}")
            regions[region.name] = region
        az_owner: dict[str, str] = {}
        for i, region in enumerate(self.regions):
            for j, az in enumerate(region.azs):
                if az in az_owner:
                    raise _FieldError(
                        f"regions[{i}].azs[{j}]",
                        f"AZ {az!r} is already declared in region {az_owner[az]!r}",
                    )
                az_owner[az] = region.name

        for name in self.groups:
            if name in BUILTIN_ROLE_GROUPS:
                raise _FieldError(f"groups.{name}", "is a built-in role group; do not redeclare it")
        known_groups = set(BUILTIN_ROLE_GROUPS) | set(self.groups)

        seen: dict[str, int] = {}
        for i, cls in enumerate(self.classes):
            if cls.name in seen:
                raise _FieldError(
                    f"classes[{i}].name",
                    f"duplicate class {cls.name!r} (first declared as classes[{seen[cls.name]}])",
                )
            seen[cls.name] = i
            for j, group in enumerate(cls.groups):
                if group not in known_groups:
                    raise _FieldError(
                        f"classes[{i}].groups[{j}]",
                        f"unknown group {group!r}; expected one of {sorted(known_groups)} "
                        "or a group declared under 'groups:'",
                    )
            if cls.region is not None and cls.region not in regions:
                raise _FieldError(
                    f"classes[{i}].region",
                    f"unknown region {cls.region!r}; expected one of {sorted(regions)}",
                )
            region = regions[cls.region] if cls.region else self.regions[0]
            for j, az in enumerate(cls.azs or []):
                if az not in region.azs:
                    raise _FieldError(
                        f"classes[{i}].azs[{j}]",
                        f"AZ {az!r} is not in region {region.name!r} (its AZs: {region.azs})",
                    )

        for i, cls in enumerate(self.classes):
            if "wireguard" in cls.groups or "vpn_gateway" in cls.groups:
                if self.vpn is None:
                    raise _FieldError(f"classes[{i}].groups",
                                      "wireguard members need a 'vpn:' section (pool, sites)")
                if "vpn_gateway" in cls.groups and "wireguard" not in cls.groups:
                    raise _FieldError(f"classes[{i}].groups", "a vpn_gateway must also be in 'wireguard'")
            if cls.site is not None and (self.vpn is None
                                         or cls.site not in {s.name for s in self.vpn.sites}):
                raise _FieldError(f"classes[{i}].site",
                                  f"unknown site {cls.site!r}; declare it under vpn.sites")
        if self.vpn is not None:
            room = ipaddress.ip_network(self.vpn.pool).num_addresses - 2
            if sum(c.count for c in self.classes) > room:
                # addresses follow the host's ordinal among all hosts (see build_inventory)
                raise _FieldError("vpn.pool", f"{self.vpn.pool} is too small for this topology's "
                                              f"{sum(c.count for c in self.classes)} hosts")

        for i, cls in enumerate(self.classes):
            if cls.spot and set(cls.groups) & set(DATA_GROUPS):
                raise _FieldError(f"classes[{i}].spot", "a class holding data "
                                  f"({', '.join(sorted(set(cls.groups) & set(DATA_GROUPS)))}) "
                                  "cannot run on spot instances: an interruption loses its disk")
            if self.provider != "aws" and (cls.spot or cls.volume is not None):
                raise _FieldError(f"classes[{i}].{'spot' if cls.spot else 'volume'}",
                                  "only allowed when provider is 'aws'")
        if self.aws is not None:
            vpc = ipaddress.ip_network(self.aws.vpc_cidr)
            if self.vpn is not None and vpc.overlaps(ipaddress.ip_network(self.vpn.pool)):
                raise _FieldError("aws.vpc_cidr", f"{self.aws.vpc_cidr} overlaps vpn.pool {self.vpn.pool}: "
                                  "tunnel addresses must not collide with the VPC's")
            if self.vpn is not None:
                for i, site in enumerate(self.vpn.sites):
                    if site.name in regions:
                        continue
                    for j, subnet in enumerate(site.subnets):
                        if vpc.overlaps(ipaddress.ip_network(subnet, strict=False)):
                            raise _FieldError(f"vpn.sites[{i}].subnets[{j}]",
                                              f"{subnet} of site {site.name!r} overlaps aws.vpc_cidr "
                                              f"{self.aws.vpc_cidr}: routes to it would be ambiguous")
            need = _subnet_bits(cloud_regions(self) or self.regions)
            if vpc.prefixlen + need > 28:
                raise _FieldError("aws.vpc_cidr", f"{self.aws.vpc_cidr} is too small to split into "
                                  f"{2 ** need} subnets (a private and a public one per AZ)")

        _check_existing(self)

        total = sum(c.count for c in self.classes)
        if self.local is not None:
            for i, cls in enumerate(self.classes):
                if cls.count > LOCAL_MAX_COUNT:
                    raise _FieldError(
                        f"classes[{i}].count",
                        f"{cls.count} hosts: the local provider gives each class a block of 100 SSH "
                        f"ports (ssh_port_base + 100 * class + slot), so a class has at most "
                        f"{LOCAL_MAX_COUNT} hosts; split the class or use another provider",
                    )
            net = ipaddress.ip_network(self.local.subnet)
            if total + _FIRST_HOST_OFFSET >= net.num_addresses - 1:
                raise _FieldError(
                    "local.subnet", f"{self.local.subnet} is too small for {total} hosts"
                )
            last_port = self.local.ssh_port_base + 100 * len(self.classes)
            if last_port > 65535:
                raise _FieldError("local.ssh_port_base", "leaves no room for every class's ports")
        return self


def _check_existing(topo: Topology) -> None:
    """Existing machines: counts match, no address twice, only where nothing provisions them."""
    seen_ssh: dict[tuple[str, int], str] = {}
    seen_ip: dict[str, str] = {}
    for i, cls in enumerate(topo.classes):
        if cls.existing is None:
            if topo.provider == "existing":
                raise _FieldError(f"classes[{i}].existing",
                                  "required when provider is 'existing': list the class's machines")
            continue
        if topo.provider == "local":
            raise _FieldError(f"classes[{i}].existing", "not allowed with provider 'local' (it makes "
                              "its own hosts); use provider 'existing' or 'aws'")
        if len(cls.existing) != cls.count:
            raise _FieldError(f"classes[{i}].existing", f"{len(cls.existing)} machines listed but count is "
                              f"{cls.count}: list one machine per slot")
        if cls.spot or cls.volume is not None:
            raise _FieldError(f"classes[{i}].{'spot' if cls.spot else 'volume'}",
                              "not allowed for existing machines (nothing provisions them)")
        for j, host in enumerate(cls.existing):
            here = f"classes[{i}].existing[{j}]"
            key = (host.address.lower(), host.port)
            if key in seen_ssh:
                raise _FieldError(f"{here}.address", f"{host.address}:{host.port} is already {seen_ssh[key]}")
            seen_ssh[key] = here
            if host.inside_ip in seen_ip:
                raise _FieldError(f"{here}.private_ip", f"{host.inside_ip} is already the private "
                                                        f"address of {seen_ip[host.inside_ip]}")
            seen_ip[host.inside_ip] = here


def provisioned_classes(topo: Topology) -> list[NodeClass]:
    """The classes a provider makes hosts for (not those of existing machines)."""
    return [c for c in topo.classes if c.existing is None]


def cloud_regions(topo: Topology) -> list[Region]:
    """The regions a cloud provider builds networks in: those not given over to existing
    machines alone (a colocation site is a region of the topology, but no VPC)."""
    out = []
    for region in topo.regions:
        classes = [c for c in topo.classes if (c.region or topo.regions[0].name) == region.name]
        if not classes or any(c.existing is None for c in classes):
            out.append(region)
    return out


def _subnet_bits(regions: list[Region]) -> int:
    """Prefix bits the VPC CIDR loses: the split between regions, then 2 subnets per AZ."""
    region_bits = max(0, (len(regions) - 1).bit_length())
    az_bits = max((2 * len(r.azs) - 1).bit_length() for r in regions)
    return region_bits + az_bits


def data_volume(cls: NodeClass) -> Volume | None:
    """The class's data volume: its own, else the default one for a class holding data."""
    if cls.volume is not None:
        return cls.volume
    if set(cls.groups) & set(DATA_GROUPS):
        return Volume(size_gb=DEFAULT_DATA_VOLUME_GB)
    return None


class _FieldError(ValueError):
    """Raised inside model validators to point at a precise field."""

    def __init__(self, field_path: str, message: str) -> None:
        super().__init__(message)
        self.field_path = field_path
        self.message = message


def _reject_duplicates(items: list[str], what: str) -> None:
    seen = set()
    for item in items:
        if item in seen:
            raise ValueError(f"duplicate {what} {item!r}")
        seen.add(item)


# --------------------------------------------------------------------------- derived inventory

_FIRST_HOST_OFFSET = 10  # .1 is Docker's gateway; keep a few low addresses for fixed services


@dataclass(frozen=True)
class Host:
    name: str
    node_class: str
    index: int
    region: str
    az: str
    groups: tuple[str, ...]  # every group: class, role groups, env, region, AZ
    role_groups: tuple[str, ...]
    vars: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Inventory:
    topology: Topology
    hosts: tuple[Host, ...]
    groups: dict[str, tuple[str, ...]]  # group name -> host names (sorted)

    @property
    def environment(self) -> str:
        return self.topology.environment


def group_name(kind: str, value: str) -> str:
    """A valid Ansible group name for a derived group (``az_local_a``, ``env_dev``, …)."""
    return f"{kind}_" + re.sub(r"[^a-z0-9_]", "_", value.lower())


def build_inventory(topo: Topology, provisioned: dict[str, Any] | None = None) -> Inventory:
    """Expand a validated topology into hosts and groups. Pure and deterministic.

    ``provisioned``: the provider's record of what it made (:func:`read_provisioned`): hosts it
    lists get their addresses (``ansible_host``: the public address of a host that has one, a
    bastion; else the private one) and instance id."""
    made = (provisioned or {}).get("hosts", {})
    backup_bucket = (provisioned or {}).get("backup_bucket")
    regions = {r.name: r for r in topo.regions}
    hosts: list[Host] = []
    groups: dict[str, list[str]] = {}
    ordinal = 0
    for class_pos, cls in enumerate(topo.classes):
        region = regions[cls.region] if cls.region else topo.regions[0]
        azs = cls.azs or region.azs
        for index in range(1, cls.count + 1):
            ordinal += 1
            name = f"{topo.environment}-{cls.name}-{index:02d}"
            az = azs[(index - 1) % len(azs)]
            host_groups = (
                group_name("class", cls.name),
                *cls.groups,
                group_name("env", topo.environment),
                group_name("region", region.name),
                group_name("az", az),
            )
            hv: dict[str, Any] = dict(topo.vars)
            hv.update(cls.vars)
            hv.update(
                {
                    "qb_env": topo.environment,
                    "qb_provider": topo.provider,
                    "qb_class": cls.name,
                    "qb_index": index,
                    "qb_region": region.name,
                    "qb_az": az,
                    "qb_instance_type": cls.instance_type,
                    "qb_role_groups": list(cls.groups),
                }
            )
            if topo.local is not None:
                net = ipaddress.ip_network(topo.local.subnet)
                hv.update(
                    {
                        "ansible_host": "127.0.0.1",
                        # a block of 100 ports per class keeps every port stable while
                        # classes are appended or counts change
                        "ansible_port": topo.local.ssh_port_base + 100 * class_pos + index,
                        "qb_private_ip": str(net.network_address + _FIRST_HOST_OFFSET + ordinal),
                        "qb_local_network": topo.local.network,
                        "qb_local_subnet": topo.local.subnet,
                        "qb_local_image": topo.local.image,
                        # where the controller's connections come from, as the hosts see them
                        "qb_local_gateway": str(net.network_address + 1),
                    }
                )
            if cls.existing is not None:
                machine = cls.existing[index - 1]
                hv.update(machine.vars)
                hv.update({"ansible_host": machine.address, "ansible_port": machine.port,
                           "qb_private_ip": machine.inside_ip, "qb_existing": True})
                if machine.trading_nic:
                    hv["qb_trading_nic"] = machine.trading_nic
            elif name in made:
                rec = made[name]
                hv["ansible_host"] = rec.get("public_ip") or rec["private_ip"]
                hv["qb_private_ip"] = rec["private_ip"]
                hv["qb_instance_id"] = rec["instance_id"]
            if backup_bucket:
                # pgBackRest's off-site repository (roles pgbackrest_repo, postgresql)
                hv["qb_backup_bucket"] = backup_bucket["name"]
                hv["qb_backup_bucket_region"] = backup_bucket["region"]
            if topo.vpn is not None:
                hv["qb_vpn_pool"] = topo.vpn.pool
                hv["qb_vpn_port"] = topo.vpn.port
                hv["qb_vpn_sites"] = {s.name: list(s.subnets) for s in topo.vpn.sites}
                hv["qb_vpn_site"] = cls.site or region.name
                if "wireguard" in cls.groups:
                    # the host's ordinal, as for the private address: stable while classes
                    # are appended
                    hv["qb_vpn_address"] = wireguard.pool_address(topo.vpn.pool, ordinal)
            hosts.append(Host(name, cls.name, index, region.name, az, host_groups,
                              tuple(cls.groups), hv))
            for g in host_groups:
                groups.setdefault(g, []).append(name)
    # hosts behind a bastion learn which one (group_vars turn it into SSH options)
    # (existing machines are reached at their own address: a class that needs a jump host sets
    # qb_ssh_bastion in its vars)
    existing = {c.name for c in topo.classes if c.existing is not None}
    jumps = bastion.assign_bastions({h.name: {"groups": h.role_groups, "region": h.region} for h in hosts
                                     if h.node_class not in existing or "bastion" in h.role_groups})
    for h in hosts:
        if h.name in jumps:
            h.vars["qb_ssh_bastion"] = jumps[h.name]
    # groups that exist even when empty, so playbooks can target them unconditionally
    for g in list(BUILTIN_ROLE_GROUPS) + list(topo.groups):
        groups.setdefault(g, [])
    return Inventory(topo, tuple(hosts), {g: tuple(sorted(h)) for g, h in groups.items()})


# Derived values that every host of a group shares, by the kind of group that carries them. The
# inventory plugin sets each once on its group instead of once per host: a 10,000-host inventory
# then makes a few thousand variable assignments, not a hundred thousand.
_SHARED_BY = {
    "env": ("qb_env", "qb_provider", "qb_vpn_pool", "qb_vpn_port", "qb_vpn_sites", "qb_local_network",
            "qb_local_subnet", "qb_local_image", "qb_local_gateway", "ansible_host", "qb_backup_bucket",
            "qb_backup_bucket_region"),
    "region": ("qb_region",),
    "az": ("qb_az",),
    "class": ("qb_class", "qb_instance_type", "qb_role_groups", "qb_vpn_site"),
}


def layered_vars(inv: Inventory) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """(group -> vars, host -> vars) whose merge along each host's groups gives ``Host.vars``.

    A derived value moves to its group only where no topology ``vars:`` entry of the same name
    exists (those stay per host, above group_vars files, as they always were) and every host of
    the group has it, with the same value."""
    user_keys = set(inv.topology.vars).union(*(c.vars for c in inv.topology.classes))
    env = group_name("env", inv.environment)
    group_vars: dict[str, dict[str, Any]] = {}
    unshared: set[tuple[str, str]] = set()
    members: dict[str, int] = {}  # hosts per owning group
    seen: dict[tuple[str, str], int] = {}  # hosts of the group that have the key
    owners_of: dict[tuple[str, str, str], tuple[tuple[str, tuple[str, ...]], ...]] = {}
    for h in inv.hosts:
        place = (h.region, h.az, h.node_class)
        owners = owners_of.get(place)
        if owners is None:
            owners = owners_of[place] = (
                (env, _SHARED_BY["env"]), (group_name("region", h.region), _SHARED_BY["region"]),
                (group_name("az", h.az), _SHARED_BY["az"]),
                (group_name("class", h.node_class), _SHARED_BY["class"]))
        for owner, keys in owners:
            gv = group_vars.setdefault(owner, {})
            members[owner] = members.get(owner, 0) + 1
            for key in keys:
                if key not in h.vars or key in user_keys or (owner, key) in unshared:
                    continue
                seen[(owner, key)] = seen.get((owner, key), 0) + 1
                if key not in gv:
                    gv[key] = h.vars[key]
                elif gv[key] != h.vars[key]:
                    unshared.add((owner, key))
                    del gv[key]
    # a value some hosts of the group lack stays with the hosts that have it
    for owner, gv in group_vars.items():
        for key in [k for k in gv if seen[(owner, k)] < members[owner]]:
            del gv[key]
    # per place, the keys its groups carry; a host keeps the rest
    lifted = {place: {k for owner, _ in owners for k in group_vars.get(owner, {})}
              for place, owners in owners_of.items()}
    host_vars = {}
    for h in inv.hosts:
        drop = lifted[(h.region, h.az, h.node_class)]
        host_vars[h.name] = {k: v for k, v in h.vars.items() if k not in drop}
    return {g: v for g, v in group_vars.items() if v}, host_vars


def inventory_data(inv: Inventory) -> dict[str, Any]:
    """What the inventory plugin adds, as plain JSON-able data (what its cache keeps)."""
    group_vars, host_vars = layered_vars(inv)
    nested = [[group_name("env", inv.environment), group_name("region", r.name)]
              for r in inv.topology.regions]
    nested += [[group_name("region", r.name), group_name("az", az)]
               for r in inv.topology.regions for az in r.azs if group_name("az", az) in inv.groups]
    # hosts join their AZ and reach the region and environment through it
    above_az = {parent for parent, _ in nested}
    return {
        "groups": list(inv.groups),
        "nested": nested,
        "group_vars": group_vars,
        "hosts": [[h.name, [g for g in h.groups if g not in above_az], host_vars[h.name]]
                  for h in inv.hosts],
    }


PROVISIONED_FILENAME = "provisioned.json"


def state_root(topology_path: str | Path) -> Path:
    """The controller's ignored state folder: $QB_STATE_DIR, else ``.state`` of the project
    holding ``inventories/<env>/topology.yml``."""
    import os

    if os.environ.get("QB_STATE_DIR"):
        return Path(os.environ["QB_STATE_DIR"])
    p = Path(topology_path).resolve()
    if p.is_file():
        p = p.parent
    return p.parent.parent / ".state"


def provisioned_path(topology_path: str | Path, env: str) -> Path:
    return state_root(topology_path) / env / PROVISIONED_FILENAME


def read_provisioned(topology_path: str | Path, env: str) -> dict[str, Any] | None:
    """What the cloud provider recorded for ``env`` (written by ``quantbot-infra up``), or None."""
    import json

    path = provisioned_path(topology_path, env)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise TopologyError(path, "", f"unreadable provisioned state ({exc}); run 'quantbot-infra up' "
                                      "again to rewrite it") from None
    if not isinstance(data, dict) or not isinstance(data.get("hosts"), dict):
        raise TopologyError(path, "hosts", "expected a mapping of host name -> addresses")
    return data


def fingerprint(path: str | Path) -> str:
    """What a cached inventory of ``path`` depends on: the file's bytes, the provider's record of
    what it made, and the code that expands it. A changed topology, a new provisioning, or a
    changed expansion never reads an old cache entry."""
    import hashlib

    digest = hashlib.sha256(Path(path).read_bytes())
    try:
        topo_env = yaml.safe_load(Path(path).read_text(encoding="utf-8")).get("environment")
        digest.update(provisioned_path(path, str(topo_env)).read_bytes())
    except (OSError, AttributeError, yaml.YAMLError):
        pass
    for module in (__file__, bastion.__file__, wireguard.__file__):
        digest.update(Path(module).read_bytes())
    return digest.hexdigest()


# --------------------------------------------------------------------------- loading


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate mapping keys instead of keeping the last one."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False):
    keys = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in keys:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        keys.add(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping
)


def _field_path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _describe(value: Any) -> str:
    text = repr(value)
    if len(text) > 40:
        text = text[:37] + "..."
    return f"{type(value).__name__} {text}"


_TYPE_WORDS = {
    "int_type": "an integer",
    "string_type": "a string",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "bool_type": "a boolean",
}


def _message_for(err: dict[str, Any], model_fields: dict[str, Any]) -> tuple[str, str]:
    """Turn one pydantic error into (field path, human message)."""
    loc = tuple(err["loc"])
    kind = err["type"]
    value = err.get("input")
    ctx = err.get("ctx") or {}
    if kind == "value_error" and isinstance(ctx.get("error"), _FieldError):
        fe = ctx["error"]
        return fe.field_path, fe.message
    # strip pydantic's union/tagged branch markers such as 'str' or 'list[str]'
    loc = tuple(p for p in loc if not (isinstance(p, str) and ("[" in p or p in ("str", "int"))))
    path = _field_path(loc)
    if kind == "extra_forbidden":
        parent = _field_path(loc[:-1]) or "top level"
        allowed = model_fields.get(_field_path(tuple(p for p in loc[:-1] if isinstance(p, str))))
        hint = f" (allowed: {', '.join(allowed)})" if allowed else ""
        return path, f"unknown key {loc[-1]!r} in {parent}{hint}"
    if kind == "missing":
        return path, "required field is missing"
    if kind in _TYPE_WORDS:
        return path, f"expected {_TYPE_WORDS[kind]}, got {_describe(value)}"
    if kind in ("greater_than_equal", "less_than_equal"):
        return path, f"expected an integer from {_bounds(path)}, got {value!r}"
    if kind == "string_pattern_mismatch":
        return path, f"expected a lowercase name like 'pg' or 'local-a', got {value!r}"
    if kind == "string_too_long":
        return path, f"expected at most {ctx.get('max_length')} characters, got {value!r}"
    if kind in ("too_short", "string_too_short"):
        return path, "must not be empty"
    if kind == "literal_error":
        return path, f"expected one of {ctx.get('expected')}, got {value!r}"
    msg = str(err.get("msg", "invalid value"))
    msg = msg.removeprefix("Value error, ")
    return path, msg


def _bounds(path: str) -> str:
    if path.endswith("count"):
        return f"0 to {MAX_COUNT}"
    if path.endswith("ssh_port_base"):
        return "1024 to 60000"
    return "the allowed range"


def _allowed_keys() -> dict[str, list[str]]:
    """Allowed keys per mapping, keyed by the field path with list indexes removed."""
    return {
        "": list(Topology.model_fields),
        "regions": list(Region.model_fields),
        "classes": list(NodeClass.model_fields),
        "local": list(LocalProvider.model_fields),
        "aws": list(AwsProvider.model_fields),
        "aws.image": list(AwsImage.model_fields),
        "classes.volume": list(Volume.model_fields),
        "classes.existing": list(ExistingHost.model_fields),
        "vpn": list(Vpn.model_fields),
        "vpn.sites": list(VpnSite.model_fields),
    }


def _line_of(node: yaml.Node | None, field_path: str) -> int | None:
    """1-based line of the deepest YAML node along ``field_path`` (``classes[1].count``)."""
    if node is None:
        return None
    line = node.start_mark.line + 1
    for part in re.findall(r"[^.\[\]]+", field_path):
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if key_node.value == part:
                    # a field is reported at its key (an unknown key too)
                    line, node = key_node.start_mark.line + 1, value_node
                    break
            else:
                return line
        elif isinstance(node, yaml.SequenceNode) and part.isdigit() and int(part) < len(node.value):
            node = node.value[int(part)]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def parse_topology(data: Any, source: str | Path = "<topology>",
                   node: yaml.Node | None = None) -> Topology:
    """Validate already-loaded YAML data; raise TopologyError on the first problem.

    With ``node`` (the composed YAML document) errors also name the line."""
    if not isinstance(data, dict):
        raise TopologyError(source, "", f"expected a mapping at the top level, got {_describe(data)}")
    try:
        return Topology.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        # report the most specific problem first: a precise field beats a parent's type error
        errors.sort(key=lambda e: (e["type"] == "missing", -len(e["loc"])))
        field_path, message = _message_for(errors[0], _allowed_keys())
        raise TopologyError(source, field_path, message, _line_of(node, field_path)) from None


def load_topology(path: str | Path) -> Topology:
    """Read and validate a topology file (or an inventory directory holding one)."""
    p = Path(path)
    if p.is_dir():
        p = p / TOPOLOGY_FILENAME
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TopologyError(p, "", "file not found") from None
    except OSError as exc:
        raise TopologyError(p, "", f"cannot be read: {exc.strerror}") from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - SafeLoader subclass
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f"line {mark.line + 1}" if mark else "YAML"
        raise TopologyError(p, line, f"invalid YAML: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise TopologyError(p, "", f"invalid YAML: {exc}") from None
    return parse_topology(data, p, node)


def load_inventory(path: str | Path) -> Inventory:
    """The topology at ``path`` expanded, with the addresses its provider recorded."""
    topo = load_topology(path)
    made = read_provisioned(path, topo.environment) if topo.provider == "aws" else None
    return build_inventory(topo, made)
