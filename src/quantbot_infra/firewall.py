"""Host firewall allow-lists derived from inventory group membership.

A *service* says which port(s) a host opens when it belongs to some groups, and who may
connect: the hosts of other groups (every address they have: private, tunnel, underlay
endpoint) plus literal CIDRs. :func:`allow_rules` turns the service catalogue into the
rules of one host, which the ``firewall`` role renders as an nftables ruleset. Everything a
user can get wrong in the catalogue is a :class:`FirewallError` naming the service and field.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

PROTOCOLS = ("tcp", "udp")
SERVICE_KEYS = {"ports", "proto", "on_groups", "from_groups", "from_cidrs", "enabled", "comment"}


class FirewallError(ValueError):
    """The service catalogue is malformed; the message names the service and the field."""


def _as_list(service: str, key: str, value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, (str, int)):
        return [value]
    if isinstance(value, Iterable) and not isinstance(value, Mapping):
        return list(value)
    raise FirewallError(f"service {service!r}: '{key}' must be a list, got {value!r}")


def _ports(service: str, values: list[Any]) -> list[str]:
    out = []
    for value in values:
        text = str(value).strip()
        bounds = text.split("-", 1)
        try:
            nums = [int(b) for b in bounds]
        except ValueError:
            raise FirewallError(f"service {service!r}: port {value!r} is not a number "
                                "or a range like 8000-8010") from None
        if any(n < 1 or n > 65535 for n in nums) or (len(nums) == 2 and nums[0] >= nums[1]):
            raise FirewallError(f"service {service!r}: port {value!r} is out of range (1-65535)")
        out.append("-".join(str(n) for n in nums))
    if not out:
        raise FirewallError(f"service {service!r}: 'ports' must name at least one port")
    return sorted(set(out), key=lambda p: int(p.split("-")[0]))


def _network(service: str, value: Any) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        return ipaddress.ip_network(str(value), strict=False)
    except ValueError:
        raise FirewallError(f"service {service!r}: source {value!r} is not an address or CIDR") from None


def collapse(sources: Iterable[Any], service: str = "?") -> dict[str, list[str]]:
    """Sources as the smallest lists of IPv4 and IPv6 networks (``{"ip": [...], "ip6": [...]}``)."""
    nets = [_network(service, s) for s in sources]
    return {
        "ip": [str(n) for n in ipaddress.collapse_addresses(n for n in nets if n.version == 4)],
        "ip6": [str(n) for n in ipaddress.collapse_addresses(n for n in nets if n.version == 6)],
    }


def _applying(services: Mapping[str, Mapping[str, Any]], host_groups: Iterable[str]
              ) -> Iterator[tuple[str, Mapping[str, Any], str, list[str]]]:
    """(name, service, proto, ports) of each enabled service that opens on a host of
    ``host_groups``, sorted by name; every malformed entry raises FirewallError."""
    if not isinstance(services, Mapping):
        raise FirewallError(f"the service catalogue must be a mapping of name -> service, got {services!r}")
    mine = set(host_groups) | {"all"}
    for name in sorted(services):
        svc = services[name]
        if not isinstance(svc, Mapping):
            raise FirewallError(f"service {name!r}: expected a mapping, got {svc!r}")
        unknown = set(svc) - SERVICE_KEYS
        if unknown:
            raise FirewallError(f"service {name!r}: unknown key(s) {sorted(unknown)} "
                                f"(allowed: {sorted(SERVICE_KEYS)})")
        if not svc.get("enabled", True):
            continue
        on = _as_list(name, "on_groups", svc.get("on_groups"))
        if not on:
            raise FirewallError(f"service {name!r}: 'on_groups' must name the groups whose hosts open it")
        if not mine & set(on):
            continue
        proto = svc.get("proto", "tcp")
        if proto not in PROTOCOLS:
            raise FirewallError(f"service {name!r}: proto must be one of {PROTOCOLS}, got {proto!r}")
        yield name, svc, proto, _ports(name, _as_list(name, "ports", svc.get("ports")))


def _source_groups(name: str, svc: Mapping[str, Any], groups: Mapping[str, Any]) -> list[str]:
    out = _as_list(name, "from_groups", svc.get("from_groups"))
    for group in out:
        if group not in groups:
            raise FirewallError(f"service {name!r}: from_groups names unknown group {group!r}")
    return out


def allow_rules(services: Mapping[str, Mapping[str, Any]], *, host_groups: Iterable[str],
                groups: Mapping[str, Iterable[str]],
                addresses: Mapping[str, Iterable[str]]) -> list[dict[str, Any]]:
    """The accept rules of one host, sorted by service name.

    ``host_groups``: the groups the host is in; ``groups``: group -> hosts;
    ``addresses``: host -> its addresses. A service applies when ``on_groups`` names one of the
    host's groups (``all`` matches every host). A service whose sources come out empty is kept
    with no sources: the role renders nothing for it, so nobody is let in."""
    rules = []
    for name, svc, proto, ports in _applying(services, host_groups):
        sources: list[Any] = list(_as_list(name, "from_cidrs", svc.get("from_cidrs")))
        for group in _source_groups(name, svc, groups):
            for member in groups[group]:
                sources += list(addresses.get(member, []))
        rules.append({
            "name": name,
            "proto": proto,
            "ports": ports,
            "comment": str(svc.get("comment", name)),
            **collapse(sources, name),
        })
    return rules


CLASS_GROUP_PREFIX = "class_"


def security_group_services(services: Mapping[str, Mapping[str, Any]], *, host_groups: Iterable[str],
                            groups: Mapping[str, Iterable[str]]) -> list[dict[str, Any]]:
    """The same services for a cloud security group around the host's class: sources are the
    classes (``class_<name>`` groups) with a host in a source group, plus the literal CIDRs.

    One catalogue, two layers: what the host's nftables admits by address, the class's security
    group admits by group, so a host is reachable only where both agree."""
    members = {g[len(CLASS_GROUP_PREFIX):]: set(h) for g, h in groups.items()
               if g.startswith(CLASS_GROUP_PREFIX)}
    out = []
    for name, svc, proto, ports in _applying(services, host_groups):
        sources = set()
        for group in _source_groups(name, svc, groups):
            hosts = set(groups[group])
            sources |= {c for c, m in members.items() if m & hosts}
        cidrs = collapse(_as_list(name, "from_cidrs", svc.get("from_cidrs")), name)
        out.append({"name": name, "proto": proto, "ports": ports, "from_classes": sorted(sources),
                    "from_cidrs": cidrs["ip"] + cidrs["ip6"]})
    return out


ADDRESS_KEYS = ("qb_private_ip", "qb_vpn_address", "qb_vpn_endpoint")


def host_addresses(hostvars: Mapping[str, Mapping[str, Any]], hosts: Iterable[str],
                   keys: Iterable[str] = ADDRESS_KEYS) -> dict[str, list[str]]:
    """Every address each host may send from: the values of ``keys`` that are set."""
    out: dict[str, list[str]] = {}
    for host in hosts:
        hv = hostvars.get(host, {})
        values = []
        for key in keys:
            value = hv.get(key)
            if value:
                values.append(str(value))
        out[host] = sorted(set(values))
    return out


def admits(rules: Iterable[Mapping[str, Any]], address: str, port: int | str, proto: str = "tcp") -> bool:
    """Whether ``rules`` (from :func:`allow_rules`) let ``address`` open ``proto``/``port``."""
    try:
        addr = ipaddress.ip_address(str(address))
        port = int(port)
    except ValueError:
        return False
    family = "ip" if addr.version == 4 else "ip6"
    for rule in rules:
        if rule.get("proto", "tcp") != proto:
            continue
        in_ports = False
        for spec in rule.get("ports", []):
            low, _, high = str(spec).partition("-")
            if int(low) <= port <= int(high or low):
                in_ports = True
        if in_ports and any(addr in ipaddress.ip_network(n) for n in rule.get(family, [])):
            return True
    return False
