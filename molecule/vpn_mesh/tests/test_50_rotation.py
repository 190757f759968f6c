"""Key rotation: the module's contract, then a rotation restored by a re-run."""

from __future__ import annotations

import itertools
import time

from conftest import MEMBERS, TUNNEL, handshakes, host, module, module_run, ping, playbook, public_key, recap


def test_module_returns_only_the_public_key_and_supports_check_mode():
    h = host("vpn-mon")
    private = h.file("/etc/wireguard/wg0.key").content_string.strip()
    out = module("vpn-mon", "qb_wireguard_key", "path=/etc/wireguard/wg0.key")
    assert out["changed"] is False
    assert out["public_key"] == public_key("vpn-mon")
    assert private not in str(out)
    checked = module("vpn-mon", "qb_wireguard_key", "path=/etc/wireguard/wg0.key rotate=true", "--check")
    assert checked["changed"] is True and checked["rotated"] is True
    assert h.file("/etc/wireguard/wg0.key").content_string.strip() == private
    # a file that is not a key is never overwritten
    h.check_output("install -m 0644 /dev/null /root/not-a-key && echo garbage > /root/not-a-key")
    result, bad = module_run("vpn-mon", "qb_wireguard_key", "path=/root/not-a-key")
    assert result.returncode != 0 and "holds no WireGuard private key" in bad["msg"]
    assert h.file("/root/not-a-key").content_string == "garbage\n"
    made = module("vpn-mon", "qb_wireguard_key", "path=/root/new/wg9.key")
    assert made["created"] is True
    assert h.file("/root/new/wg9.key").mode == 0o600
    assert h.file("/root/new").mode == 0o700
    assert h.check_output("wg pubkey < /root/new/wg9.key") == made["public_key"]
    h.check_output("rm -rf /root/new /root/not-a-key")


def test_rotation_then_a_rerun_restores_every_handshake():
    old = {n: public_key(n) for n in MEMBERS}
    rotated = module("vpn-gw-a", "qb_wireguard_key", "path=/etc/wireguard/wg0.key rotate=true")
    assert rotated["rotated"] is True and rotated["previous_public_key"] == old["vpn-gw-a"]
    assert host("vpn-gw-a").file("/etc/wireguard/wg0.key").mode == 0o600
    start = time.monotonic()
    result = playbook("network.yml", "--tags", "wireguard")
    elapsed = time.monotonic() - start
    assert public_key("vpn-gw-a") == rotated["public_key"] != old["vpn-gw-a"]
    assert recap(result.stdout)["vpn-gw-a"]["failed"] == 0
    since = int(host("vpn-gw-a").check_output("date +%s")) - int(elapsed) - 5
    for src, dst in itertools.permutations(MEMBERS, 2):
        assert ping(src, TUNNEL[dst])
    for name in ("vpn-gw-b", "vpn-mon"):
        assert handshakes(name)[rotated["public_key"]] >= since
    print(f"\nMEASURED key rotation of one member, re-run to all handshakes restored: {elapsed:.1f} s")


def test_rotating_every_key_in_one_run():
    old = {n: public_key(n) for n in MEMBERS}
    start = time.monotonic()
    result = playbook("network.yml", "--tags", "wireguard", "-e", "wireguard_key_rotate=true")
    elapsed = time.monotonic() - start
    new = {n: public_key(n) for n in MEMBERS}
    assert all(new[n] != old[n] for n in MEMBERS)
    for src, dst in itertools.permutations(MEMBERS, 2):
        assert ping(src, TUNNEL[dst])
    # no private key in the run's output
    for name in MEMBERS:
        assert host(name).file("/etc/wireguard/wg0.key").content_string.strip() not in result.stdout + result.stderr
    print(f"\nMEASURED key rotation of all {len(MEMBERS)} members in one run (handshakes awaited): {elapsed:.1f} s")
