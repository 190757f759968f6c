"""SSH: private hosts only through the bastion, and a ruleset that would cut the run off never
stays: refused up front, or put back by the timed revert."""

from __future__ import annotations

import subprocess
import time

from conftest import SITE_IP, WAN_IP, flat, host, playbook, recap, ssh_options


def ssh(address: str, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(["ssh", *ssh_options(), *extra, f"ansible@{address}", "true"],
                          capture_output=True, text=True, timeout=60, check=False)


def test_private_hosts_refuse_direct_ssh():
    # the controller sits on every scenario network; only the bastion takes its SSH
    assert ssh(WAN_IP["vpn-gw-b"]).returncode == 0
    assert ssh(SITE_IP["vpn-node-b"]).returncode == 255
    assert ssh(WAN_IP["vpn-mon"]).returncode == 255


def test_ansible_reaches_private_hosts_through_the_bastion(ssh_inventory):
    result = subprocess.run(["ansible", "-i", ssh_inventory, "vpn-node-b:vpn-node-a:vpn-mon", "-m", "ansible.builtin.ping"],
                            capture_output=True, text=True, timeout=180, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == 3


def test_lockout_check_refuses_a_ruleset_that_would_cut_the_run_off(ssh_inventory):
    before = host("vpn-gw-b").check_output("sha256sum /etc/nftables.conf")
    result = playbook("network.yml", "--limit", "vpn-gw-b", "--tags", "firewall",
                      "-e", '{"firewall_admin_cidrs": ["192.0.2.0/24"]}', check=False, inventory=ssh_inventory)
    assert result.returncode != 0
    assert "would cut off this run" in flat(result)
    assert "Nothing was changed" in flat(result)
    assert host("vpn-gw-b").check_output("sha256sum /etc/nftables.conf") == before


def test_a_ruleset_that_cuts_the_run_off_is_reverted_by_itself(ssh_inventory):
    running = host("vpn-gw-b").check_output("nft list table inet qb_filter")
    start = time.monotonic()
    result = playbook("network.yml", "--limit", "vpn-gw-b", "--tags", "firewall",
                      "-e", '{"firewall_admin_cidrs": ["192.0.2.0/24"], "firewall_lockout_check_enabled": false,'
                            ' "firewall_revert_seconds": 45}', check=False, inventory=ssh_inventory)
    assert result.returncode != 0
    assert "did not answer a new connection" in flat(result)
    assert "comes back by itself 45s" in flat(result)
    # the bad ruleset is live for now: the controller is shut out
    assert ssh(WAN_IP["vpn-gw-b"], "-o", "ConnectTimeout=3").returncode == 255
    deadline = start + 120
    while time.monotonic() < deadline and ssh(WAN_IP["vpn-gw-b"], "-o", "ConnectTimeout=3").returncode != 0:
        time.sleep(2)
    print(f"\nMEASURED lock-out to access restored by the timed revert: {time.monotonic() - start:.1f} s")
    assert ssh(WAN_IP["vpn-gw-b"]).returncode == 0
    assert host("vpn-gw-b").check_output("nft list table inet qb_filter") == running


def test_converging_over_ssh_restores_the_declared_ruleset(ssh_inventory):
    # /etc/nftables.conf still holds the reverted-away ruleset: a normal run puts the declared one
    # in place, over SSH, and confirms it
    result = playbook("network.yml", "--limit", "vpn-gw-b", "--tags", "firewall", inventory=ssh_inventory)
    assert recap(result.stdout)["vpn-gw-b"]["failed"] == 0
    assert host("vpn-gw-b").run("systemctl is-active qb-firewall-revert.timer").stdout.strip() != "active"
    assert ssh(WAN_IP["vpn-gw-b"]).returncode == 0
