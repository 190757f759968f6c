"""The mesh: every member reaches every other through the tunnel, keys stay on their hosts."""

from __future__ import annotations

import itertools
import time

import pytest
from conftest import MEMBERS, TUNNEL, handshakes, host, ping, public_key


@pytest.mark.parametrize(("src", "dst"), list(itertools.permutations(MEMBERS, 2)))
def test_every_pair_pings_across_the_tunnel(src, dst):
    assert ping(src, TUNNEL[dst]), f"{src} cannot ping {dst} at {TUNNEL[dst]}"
    # the reply came through WireGuard: the peer has a handshake on both sides
    assert handshakes(src)[public_key(dst)] > 0
    assert handshakes(dst)[public_key(src)] > 0


@pytest.mark.parametrize("name", MEMBERS)
def test_interface_is_systemd_managed_userspace_with_keepalive_and_mtu(name):
    h = host(name)
    assert h.service("wg-quick@wg0").is_enabled
    assert h.service("wg-quick@wg0").is_running
    # no kernel module on these machines: wireguard-go carries the interface
    assert h.run("test -e /sys/module/wireguard").rc != 0
    assert h.process.filter(comm="wireguard-go")
    assert "mtu 1420" in h.check_output("ip link show wg0")
    keepalives = h.check_output("wg show wg0 persistent-keepalive").split()
    assert keepalives[1::2] == ["25"] * (len(MEMBERS) - 1)


@pytest.mark.parametrize("name", MEMBERS)
def test_private_key_is_0600_and_only_in_its_file(name):
    h = host(name)
    key = h.file("/etc/wireguard/wg0.key")
    assert key.mode == 0o600 and key.user == "root"
    private = key.content_string.strip()
    assert h.check_output("wg pubkey < /etc/wireguard/wg0.key") == public_key(name)
    conf = h.file("/etc/wireguard/wg0.conf")
    assert conf.mode == 0o600
    assert private not in conf.content_string
    assert "PrivateKey" not in conf.content_string


def test_mesh_convergence_time():
    """Cold start of every member at once until every member has a handshake with every peer."""
    for name in MEMBERS:
        host(name).check_output("systemctl stop wg-quick@wg0")
    start = time.monotonic()
    for name in MEMBERS:
        host(name).check_output("systemctl start wg-quick@wg0")
    expected = {name: {public_key(o) for o in MEMBERS if o != name} for name in MEMBERS}
    deadline = start + 90
    while time.monotonic() < deadline:
        if all({k for k, t in handshakes(n).items() if t > 0} == expected[n] for n in MEMBERS):
            break
        time.sleep(0.2)
    else:
        pytest.fail(f"mesh did not converge in 90 s: {[handshakes(n) for n in MEMBERS]}")
    elapsed = time.monotonic() - start
    print(f"\nMEASURED mesh convergence (cold start of {len(MEMBERS)} members, all handshakes): {elapsed:.2f} s")
    for src, dst in itertools.permutations(MEMBERS, 2):
        assert ping(src, TUNNEL[dst])
