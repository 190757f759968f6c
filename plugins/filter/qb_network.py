"""Filters of the network tier: thin shims over quantbot_infra.wireguard, .firewall and .bastion.

Each turns the package's ValueError into an AnsibleFilterError whose message says what to fix.
"""

from __future__ import annotations

import os

from quantbot_infra import bastion, firewall, wireguard
from quantbot_infra.filters import call as _call
from quantbot_infra.topology import BUILTIN_ROLE_GROUPS


def _plain(hostvars, hosts, keys):
    """host -> {key: value} for the keys it has; hostvars are lazy, so only these are templated."""
    out = {}
    for host in hosts:
        hv = hostvars.get(host) or {}
        out[host] = {k: hv.get(k) for k in keys if k in hv}
    return out


def wireguard_members(hosts, hostvars, gateways, port, key_dir):
    """``groups.wireguard | qb_wireguard_members(hostvars, groups.vpn_gateway, port, key_dir)``:
    the members with the public keys kept on the controller (``<key_dir>/<host>.pub``)."""
    keys = {}
    for name in hosts:
        path = os.path.join(str(key_dir), f"{name}.pub")
        if os.path.exists(path):
            with open(path, encoding="ascii") as f:
                keys[name] = f.read().strip()
    plain = _plain(hostvars, hosts, ("qb_vpn_address", "qb_vpn_endpoint", "qb_private_ip", "qb_vpn_site",
                                     "qb_region"))
    return _call(wireguard.members_from_hostvars, list(hosts), plain, list(gateways or []), port, keys)


def wireguard_peers(members, self_name, pool, sites=None, keepalive=25):
    """``members | qb_wireguard_peers(inventory_hostname, pool, sites, keepalive)``"""
    return _call(wireguard.mesh_peers, self_name, list(members), pool, sites or {}, int(keepalive))


def wireguard_routed_subnets(peers):
    """``peers | qb_wireguard_routed_subnets``: the other sites' subnets a member sends into its tunnel."""
    return _call(wireguard.routed_subnets, list(peers))


def vpn_remote_networks(pool, sites, site):
    """``pool | qb_vpn_remote_networks(sites, site)``: the pool and the other sites' subnets."""
    return _call(wireguard.remote_networks, pool, sites or {}, site)


def wireguard_site_routes(members, site, pool, sites=None):
    """Routes of a site host outside the mesh: ``{gateway, via, subnets}`` or ``{}``."""
    return _call(wireguard.site_routes, site, list(members), pool, sites or {})


def firewall_addresses(groups, hostvars):
    """``groups | qb_firewall_addresses(hostvars)``: every inventory host's addresses. Computed
    once for the play (``run_once``), so each host's rules read a dict, not every host's vars."""
    hosts = sorted({h for members in groups.values() for h in members})
    return _call(firewall.host_addresses, _plain(hostvars, hosts, firewall.ADDRESS_KEYS), hosts)


def firewall_rules(services, host_groups, groups, addresses):
    """``services | qb_firewall_rules(group_names, groups, addresses)``: the host's accept rules,
    ``addresses`` from ``qb_firewall_addresses``."""
    # the topology inventory always has the built-in role groups; other inventories (molecule)
    # may leave the empty ones out
    known = {g: [] for g in BUILTIN_ROLE_GROUPS}
    known.update({g: list(m) for g, m in groups.items()})
    return _call(firewall.allow_rules, services, host_groups=list(host_groups), groups=known,
                 addresses=dict(addresses))


def security_group_services(services, host_groups, groups):
    """``services | qb_security_group_services(group_names, groups)``: the catalogue's services
    of this host's class, with source classes instead of addresses (for cloud security groups)."""
    known = {g: [] for g in BUILTIN_ROLE_GROUPS}
    known.update({g: list(m) for g, m in groups.items()})
    return _call(firewall.security_group_services, services, host_groups=list(host_groups), groups=known)


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
            "qb_vpn_remote_networks": vpn_remote_networks,
            "qb_firewall_addresses": firewall_addresses,
            "qb_firewall_rules": firewall_rules,
            "qb_firewall_admits": firewall_admits,
            "qb_security_group_services": security_group_services,
            "qb_ssh_proxy_command": ssh_proxy_command,
        }
