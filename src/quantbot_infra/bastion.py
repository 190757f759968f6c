"""SSH bastions: which jump host each private host is reached through, as SSH options.

In an environment with hosts in the ``bastion`` group, only the bastions take SSH from the
admin networks; every other host takes SSH from the bastions alone (the ``firewall`` role's
``ssh`` service). :func:`assign_bastions` picks each host's bastion (one in the same region
when there is one, so a regional outage does not take the jump path of another region down
with it) and :func:`proxy_command` writes the SSH option that goes through it.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from typing import Any

BASTION_GROUP = "bastion"


class BastionError(ValueError):
    """The bastion settings are unusable; the message says what to fix."""


def assign_bastions(hosts: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """Host -> the bastion it is reached through (bastions themselves are left out).

    ``hosts``: name -> {"groups": [...], "region": "..."}. Among the bastions of the host's
    region, and failing that among all, the host gets the one at position
    ``index % len(bastions)`` in name order, so hosts spread over several bastions and the
    choice only changes when the bastions do."""
    bastions = sorted(h for h, v in hosts.items() if BASTION_GROUP in v.get("groups", ()))
    out: dict[str, str] = {}
    if not bastions:
        return out
    # one pass over the hosts: the bastions by region first, then each host's pick from its
    # region's list (a set for membership, so 10,000 hosts with 1,000 bastions stay linear)
    by_region: dict[Any, list[str]] = {}
    for b in bastions:
        by_region.setdefault(hosts[b].get("region"), []).append(b)
    is_bastion = set(bastions)
    others = sorted(h for h in hosts if h not in is_bastion)
    for pos, host in enumerate(others):
        local = by_region.get(hosts[host].get("region")) or bastions
        out[host] = local[pos % len(local)]
    return out


def proxy_command(user: str, address: str, port: int = 22, *,
                  ssh_options: Sequence[str] = ()) -> str:
    """An ``-o ProxyCommand=...`` option that tunnels through the bastion with ``ssh -W``.

    ProxyCommand rather than ProxyJump: the jump connection then takes the same identity
    file and known_hosts options as the final hop (``ssh_options``), which ProxyJump does not
    pass on."""
    if not user or not address:
        raise BastionError("a bastion needs a user and an address")
    if not 0 < int(port) < 65536:
        raise BastionError(f"bastion port {port!r} is out of range")
    inner = ["ssh", "-W", "%h:%p", "-q", "-p", str(int(port)), *ssh_options, f"{user}@{address}"]
    return "-o ProxyCommand=" + shlex.quote(" ".join(shlex.quote(a) for a in inner))
