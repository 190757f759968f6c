"""Helpers for the vpn_mesh checks: the scenario's addresses, probes run on its hosts, and an
SSH inventory (the converge drives containers through `docker exec`; the lock-out, revert and
bastion checks need real SSH connections)."""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "_shared"))
from qbmolecule import INVENTORY, STATE, flat, host, module, module_run, playbook, recap

from quantbot_infra import bastion

__all__ = ["INVENTORY", "STATE", "flat", "host", "module", "module_run", "playbook", "recap"]

MEMBERS = ["vpn-gw-a", "vpn-gw-b", "vpn-mon"]
TUNNEL = {"vpn-gw-a": "10.241.255.1", "vpn-gw-b": "10.241.255.2", "vpn-mon": "10.241.255.3"}
SITE_IP = {"vpn-gw-a": "10.241.1.10", "vpn-gw-b": "10.241.2.10", "vpn-node-a": "10.241.1.20",
           "vpn-node-b": "10.241.2.20"}
WAN_IP = {"vpn-gw-a": "10.241.0.11", "vpn-gw-b": "10.241.0.12", "vpn-mon": "10.241.0.13",
          "vpn-outside": "10.241.0.50"}
KEY = STATE / "id_ed25519"


def ping(src: str, dst: str, count: int = 1) -> bool:
    return host(src).run(f"ping -n -q -c {count} -W 2 {dst}").rc == 0


def tcp_open(src: str, dst: str, port: int, timeout: int = 3) -> bool:
    """A TCP connection from `src` to dst:port completes (a drop shows as a timeout)."""
    return host(src).run(f"nc -z -w {timeout} {dst} {port}").rc == 0


def listen(on: str, address: str, port: int) -> None:
    """A throwaway HTTP listener (a stand-in for a service) on address:port."""
    unit = f"qb-probe-{port}-{address.replace('.', '-')}"
    h = host(on)
    h.run(f"systemctl stop {unit}")
    h.check_output(f"systemd-run --unit={unit} python3 -m http.server --bind {address} {port}")
    for _ in range(20):
        if h.run(f"nc -z -w 1 {address if address != '0.0.0.0' else '127.0.0.1'} {port}").rc == 0:  # noqa: S104
            return
        time.sleep(0.25)
    raise AssertionError(f"listener {address}:{port} on {on} did not start")


def handshakes(on: str) -> dict[str, int]:
    """Peer public key -> latest handshake (epoch seconds, 0 = never)."""
    out = host(on).check_output("wg show wg0 latest-handshakes")
    return {k: int(v) for k, v in (line.split() for line in out.splitlines())}


def public_key(on: str) -> str:
    return host(on).check_output("wg show wg0 public-key").strip()


def ssh_options() -> list[str]:
    return ["-i", str(KEY), "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
            "-o", "ConnectTimeout=5"]


@pytest.fixture(scope="session")
def ssh_inventory(tmp_path_factory) -> str:
    """The scenario's inventory with SSH connections: bastions directly on the WAN, every other
    host through its bastion with the generated ProxyCommand."""
    src = Path(INVENTORY)
    dst = tmp_path_factory.mktemp("ssh") / "inventory"
    shutil.copytree(src.parent, dst)
    inv = yaml.safe_load(src.read_text())
    groups: dict[str, list[str]] = {name: [] for name in inv["all"]["hosts"]}
    for group, body in inv.items():
        if group not in ("all", "ungrouped") and isinstance(body, dict):
            for name in body.get("hosts") or {}:
                groups[name].append(group)
            # membership only: the connection settings below are the hosts' own
            body["hosts"] = dict.fromkeys(body.get("hosts") or {})
    jumps = bastion.assign_bastions({h: {"groups": g} for h, g in groups.items()})
    for name in groups:
        hv = {"ansible_connection": "ssh", "ansible_user": "ansible", "ansible_become": True,
              "ansible_ssh_private_key_file": str(KEY), "ansible_python_interpreter": "/usr/bin/python3",
              # bastions on the WAN; the hosts behind them at their site address where they have one
              "ansible_host": SITE_IP.get(name, WAN_IP.get(name)) if name in jumps else WAN_IP[name]}
        args = " ".join(ssh_options()[2:])
        if name in jumps:
            args += " " + bastion.proxy_command("ansible", WAN_IP[jumps[name]], 22, ssh_options=ssh_options())
        hv["ansible_ssh_common_args"] = args
        inv["all"]["hosts"][name] = hv
    (dst / src.name).write_text(yaml.safe_dump(inv))
    return str(dst / src.name)
