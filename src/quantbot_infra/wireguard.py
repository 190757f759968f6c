"""WireGuard topology: tunnel addresses, each member's peer list and the routes of site hosts.

The ``wireguard`` role collects every member's public key and hands them here (through the
``qb_wireguard_peers`` filter). Everything is pure and deterministic, so the same inventory
gives every host the same view of the mesh and a re-run changes nothing.

The model:
- every member of the mesh peers with every other member (full mesh, one /32 each);
- a *site* is a set of subnets behind one gateway; the first gateway of a site (by name)
  carries the site's subnets, so members of other sites route those subnets to it;
- hosts of a site that are not members reach the VPN through their site's gateway
  (:func:`site_routes`).
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
from collections.abc import Iterable, Mapping
from typing import Any


class WireGuardError(ValueError):
    """The mesh described by the inventory cannot be built; the message says what to fix."""


def pool_address(pool: str, ordinal: int) -> str:
    """The tunnel address of the host with this ordinal (1-based) in ``pool``.

    The network and broadcast addresses are never handed out."""
    try:
        net = ipaddress.ip_network(pool, strict=True)
    except ValueError as exc:
        raise WireGuardError(f"VPN pool {pool!r} is not a network in CIDR form ({exc})") from None
    if ordinal < 1 or ordinal >= net.num_addresses - 1:
        raise WireGuardError(
            f"VPN pool {pool} has room for {max(net.num_addresses - 2, 0)} members; "
            f"member #{ordinal} does not fit"
        )
    return str(net.network_address + ordinal)


def valid_public_key(key: Any) -> bool:
    """A WireGuard key is 32 bytes in standard base64 (44 characters)."""
    if not isinstance(key, str) or len(key) != 44:
        return False
    try:
        return len(base64.b64decode(key, validate=True)) == 32
    except (binascii.Error, ValueError):
        return False


def _networks(values: Iterable[str], what: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    out = []
    for value in values:
        try:
            out.append(ipaddress.ip_network(value, strict=True))
        except ValueError as exc:
            raise WireGuardError(f"{what}: {value!r} is not a network in CIDR form ({exc})") from None
    return out


def check_sites(pool: str, sites: Mapping[str, Iterable[str]]) -> dict[str, list[str]]:
    """Validate site subnets: CIDR form, no overlap with each other or with the pool."""
    pool_net = _networks([pool], "VPN pool")[0]
    seen: list[tuple[str, Any]] = [("the VPN pool", pool_net)]
    out: dict[str, list[str]] = {}
    for site in sorted(sites):
        subnets = sites[site]
        if isinstance(subnets, str) or not isinstance(subnets, Iterable):
            raise WireGuardError(f"site {site!r}: expected a list of subnets, got {subnets!r}")
        nets = _networks(subnets, f"site {site!r}")
        for net in nets:
            for owner, other in seen:
                if net.version == other.version and net.overlaps(other):
                    raise WireGuardError(f"site {site!r}: subnet {net} overlaps {other} of {owner}")
            seen.append((f"site {site!r}", net))
        out[site] = [str(n) for n in nets]
    return out


def _members(members: Iterable[Mapping[str, Any]], pool: str) -> dict[str, dict[str, Any]]:
    pool_net = _networks([pool], "VPN pool")[0]
    by_name: dict[str, dict[str, Any]] = {}
    owner_of_address: dict[str, str] = {}
    owner_of_key: dict[str, str] = {}
    for raw in members:
        name = raw.get("name")
        if not name:
            raise WireGuardError(f"a member has no name: {dict(raw)!r}")
        if name in by_name:
            raise WireGuardError(f"member {name} is listed twice")
        for key in ("address", "endpoint", "public_key", "site"):
            if not raw.get(key):
                raise WireGuardError(f"member {name}: '{key}' is missing")
        key = raw["public_key"]
        if not valid_public_key(key):
            raise WireGuardError(f"member {name}: public key {key!r} is not a WireGuard key")
        try:
            address = ipaddress.ip_address(raw["address"])
        except ValueError:
            raise WireGuardError(
                f"member {name}: tunnel address {raw['address']!r} is not an IP address") from None
        if address not in pool_net:
            raise WireGuardError(f"member {name}: tunnel address {address} is outside the VPN pool {pool}")
        if str(address) in owner_of_address:
            raise WireGuardError(
                f"members {owner_of_address[str(address)]} and {name} share tunnel address {address}"
            )
        if key in owner_of_key:
            raise WireGuardError(f"members {owner_of_key[key]} and {name} share a public key")
        owner_of_address[str(address)] = name
        owner_of_key[key] = name
        by_name[name] = {
            "name": name,
            "address": str(address),
            "endpoint": str(raw["endpoint"]),
            "port": int(raw.get("port") or 51820),
            "public_key": key,
            "site": str(raw["site"]),
            "gateway": bool(raw.get("gateway", False)),
            "prefix": 32 if address.version == 4 else 128,
        }
    return by_name


def members_from_hostvars(hosts: Iterable[str], hostvars: Mapping[str, Mapping[str, Any]],
                          gateways: Iterable[str], port: int,
                          public_keys: Mapping[str, str]) -> list[dict[str, Any]]:
    """Member entries (as :func:`mesh_peers` takes them) from each host's inventory variables:
    ``qb_vpn_address``, ``qb_vpn_endpoint`` (default ``qb_private_ip``), ``qb_private_ip`` (the
    address on its site) and ``qb_vpn_site`` (default ``qb_region``)."""
    gateways = set(gateways)
    out = []
    for name in sorted(hosts):
        hv = hostvars.get(name) or {}
        out.append({
            "name": name,
            "address": hv.get("qb_vpn_address") or "",
            "endpoint": hv.get("qb_vpn_endpoint") or hv.get("qb_private_ip") or "",
            "site_address": hv.get("qb_private_ip") or "",
            "port": int(port),
            "site": hv.get("qb_vpn_site") or hv.get("qb_region") or "default",
            "gateway": name in gateways,
            "public_key": public_keys.get(name) or "",
        })
    return out


def site_gateways(members: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """The gateway that carries each site's subnets: the first gateway of the site by name."""
    out: dict[str, str] = {}
    for m in sorted(members, key=lambda m: m["name"]):
        if m.get("gateway") and m.get("site") not in out:
            out[m["site"]] = m["name"]
    return out


def mesh_peers(self_name: str, members: Iterable[Mapping[str, Any]], pool: str,
               sites: Mapping[str, Iterable[str]] | None = None,
               keepalive: int = 25) -> list[dict[str, Any]]:
    """The ``[Peer]`` entries of member ``self_name``, sorted by peer name.

    ``members``: one mapping per mesh member with name, address (tunnel), endpoint (the
    underlay address peers send to), port, public_key, site and gateway (bool).
    ``sites``: site name -> subnets its gateway routes into the tunnel."""
    by_name = _members(members, pool)
    if self_name not in by_name:
        raise WireGuardError(f"{self_name} is not a member of the mesh (members: {sorted(by_name)})")
    site_nets = check_sites(pool, sites or {})
    carriers = site_gateways(by_name.values())
    for site, gateway in carriers.items():
        if site not in site_nets:
            raise WireGuardError(f"gateway {gateway}: its site {site!r} declares no subnets")
    me = by_name[self_name]
    if keepalive < 0 or keepalive > 65535:
        raise WireGuardError(f"keepalive {keepalive} is out of range (0 to 65535 seconds)")
    peers = []
    for name in sorted(by_name):
        if name == self_name:
            continue
        peer = by_name[name]
        allowed = [f"{peer['address']}/{peer['prefix']}"]
        # a peer that carries another site's subnets gets them; our own site is reached directly
        if carriers.get(peer["site"]) == name and peer["site"] != me["site"]:
            allowed += site_nets[peer["site"]]
        endpoint = peer["endpoint"]
        if ":" in endpoint:  # IPv6 literal
            endpoint = f"[{endpoint}]"
        peers.append({
            "name": name,
            "public_key": peer["public_key"],
            "endpoint": f"{endpoint}:{peer['port']}",
            "allowed_ips": allowed,
            "keepalive": keepalive,
        })
    return peers


def routed_subnets(peers: Iterable[Mapping[str, Any]]) -> list[str]:
    """The other sites' subnets a member routes into its tunnel: what :func:`mesh_peers` gave its
    peers beyond their own tunnel address."""
    return [net for peer in peers for net in peer["allowed_ips"][1:]]


def remote_networks(pool: str, sites: Mapping[str, Iterable[str]], site: str) -> list[str]:
    """What a host of ``site`` reaches through the VPN: the pool and every other site's subnets."""
    site_nets = check_sites(pool, sites)
    subnets = [str(ipaddress.ip_network(pool))]
    for other in sorted(site_nets):
        if other != site:
            subnets += site_nets[other]
    return subnets


def site_routes(site: str, members: Iterable[Mapping[str, Any]], pool: str,
                sites: Mapping[str, Iterable[str]]) -> dict[str, Any]:
    """Routes for a host of ``site`` that is not a mesh member: its :func:`remote_networks`, via
    its site's gateway. ``{}`` when the site has no gateway."""
    members = list(members)
    subnets = remote_networks(pool, sites, site)
    gateway = site_gateways(members).get(site)
    if gateway is None:
        return {}
    via = next(m for m in members if m["name"] == gateway)
    if not via.get("site_address"):
        raise WireGuardError(f"gateway {gateway}: its address on site {site!r} is unknown")
    return {"gateway": gateway, "via": str(via["site_address"]), "subnets": subnets}
