"""Filters of the network tier: thin shims over quantbot_infra.wireguard, .firewall and .bastion.

Each turns the package's ValueError into an AnsibleFilterError whose message says what to fix.
"""

from __future__ import annotations

import os

from ansible.errors import AnsibleFilterError

try:
    from quantbot_infra import bastion, firewall, wireguard
    from quantbot_infra.topology import BUILTIN_ROLE_GROUPS
except ImportError as exc:  # pragma: no cover - depends on the controller's environment
    _IMPORT_ERROR: Exception | None = exc
else:
    _IMPORT_ERROR = None


def _call(func, *args, **kwargs):
    if _IMPORT_ERROR is not None:
        raise AnsibleFilterError(
            f"the quantbot_infra package is not importable ({_IMPORT_ERROR}); "
            "run 'make setup' and use the project's virtualenv")
    try:
        return func(*args, **kwargs)
    except ValueError as exc:
        raise AnsibleFilterError(str(exc)) from None


def wireguard_members(hosts, hostvars, gateways, port, key_dir):
    """``groups.wireguard | qb_wireguard_members(hostvars, groups.vpn_gateway, port, key_dir)``:
    the members with the public keys kept on the controller (``<key_dir>/<host>.pub``)."""
    keys = {}
    for name in hosts:
        path = os.path.join(str(key_dir), f"{name}.pub")
        if os.path.exists(path):
            with open(path, encoding="ascii") as f:
                keys[name] = f.read().strip()
    plain = {}
    for name in hosts:
        hv = hostvars.get(name) or {}
        plain[name] = {k: hv.get(k) for k in
                       ("qb_vpn_address", "qb_vpn_endpoint", "qb_private_ip", "qb_vpn_site", "qb_region")
                       if k in hv}
    return _call(wireguard.members_from_hostvars, list(hosts), plain, list(gateways or []), port, keys)


def wireguard_peers(members, self_name, pool, sites=None, keepalive=25):
    """``members | qb_wireguard_peers(inventory_hostname, pool, sites, keepalive)``"""
    return _call(wireguard.mesh_peers, self_name, list(members), pool, sites or {}, int(keepalive))


def wireguard_routed_subnets(members, self_name, sites=None):
    """The other sites' subnets a member sends into its tunnel."""
    return _call(wireguard.routed_subnets, self_name, list(members), sites or {})


def wireguard_site_routes(members, site, pool, sites=None):
    """Routes of a site host outside the mesh: ``{gateway, via, subnets}`` or ``{}``."""
    return _call(wireguard.site_routes, site, list(members), pool, sites or {})


def firewall_rules(services, host_groups, groups, hostvars):
    """``services | qb_firewall_rules(group_names, groups, hostvars)``: the host's accept rules."""
    hosts = sorted({h for members in groups.values() for h in members})
    plain = {}
    for host in hosts:
        hv = hostvars.get(host) or {}
        # hostvars are lazy: read only the address keys, each templated on access
        plain[host] = {k: hv.get(k) for k in firewall.ADDRESS_KEYS if k in hv}
    addresses = _call(firewall.host_addresses, plain, hosts)
    # the topology inventory always has the built-in role groups; other inventories (molecule)
    # may leave the empty ones out
    known = {g: [] for g in BUILTIN_ROLE_GROUPS}
    known.update({g: list(m) for g, m in groups.items()})
    return _call(firewall.allow_rules, services, host_groups=list(host_groups), groups=known,
                 addresses=addresses)


def firewall_admits(rules, address, port, proto="tcp"):
    """``rules | qb_firewall_admits(address, port)``: would these rules let ``address`` in?"""
    return _call(firewall.admits, list(rules), address, port, proto)


def ssh_proxy_command(address, user, port=22, options=None):
    """``bastion_address | qb_ssh_proxy_command(user, port, [ssh options])``"""
    return _call(bastion.proxy_command, user, str(address), int(port), ssh_options=list(options or []))


class FilterModule:
    def filters(self):
        return {
            "qb_wireguard_members": wireguard_members,
            "qb_wireguard_peers": wireguard_peers,
            "qb_wireguard_routed_subnets": wireguard_routed_subnets,
            "qb_wireguard_site_routes": wireguard_site_routes,
            "qb_firewall_rules": firewall_rules,
            "qb_firewall_admits": firewall_admits,
            "qb_ssh_proxy_command": ssh_proxy_command,
        }
