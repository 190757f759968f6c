"""A mixed topology: colocation trading hosts that already exist beside cloud classes. It
validates, its plan makes only the cloud part, and its existing hosts converge (containers of
the project's image stand in for the bare-metal machines)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from tests.cloud.conftest import ROOT


@pytest.fixture(scope="module")
def mixed(tmp_path_factory, standins):
    inv = tmp_path_factory.mktemp("mixed") / "staging"
    (inv / "group_vars").mkdir(parents=True)
    (inv / "topology.yml").write_text(
        yaml.safe_dump(
            {
                "plugin": "quantbot_topology",
                "environment": "staging",
                "provider": "aws",
                "aws": {
                    "vpc_cidr": "10.20.0.0/16",
                    "image": {"name": "debian-12-amd64-*", "owners": ["self"]},
                },
                "regions": [
                    {"name": "eu-west-1", "azs": ["eu-west-1a", "eu-west-1b"]},
                    {"name": "ld4", "azs": ["ld4-hall-1"]},
                ],
                "classes": [
                    {"name": "bastion", "count": 1, "groups": ["bastion"], "instance_type": "t3.small"},
                    {
                        "name": "colo",
                        "count": 2,
                        "groups": ["trading", "lowlatency"],
                        "region": "ld4",
                        "existing": [dict(h, trading_nic="eth0") for h in standins["hosts"]],
                    },
                    {"name": "pg", "count": 2, "groups": ["postgresql"], "instance_type": "r6i.xlarge"},
                ],
            },
            sort_keys=False,
        )
    )
    known_hosts = inv / "known_hosts"
    (inv / "group_vars" / "all.yml").write_text(
        yaml.safe_dump(
            {
                "ansible_user": "ansible",
                "ansible_become": True,
                "base_admin_users": [],
                "qb_state_dir": str(inv / "state"),
                "ansible_ssh_private_key_file": str(standins["key"]),
                "ansible_ssh_common_args": "-o StrictHostKeyChecking=accept-new "
                f"-o UserKnownHostsFile={known_hosts}",
            }
        )
    )
    return inv


def test_mixed_topology_plans_only_its_cloud_part(cli, mixed):
    plan = cli.plan("staging", inventory=mixed)
    made = sorted(s["key"] for s in plan["steps"] if s["kind"] == "instance")
    assert made == ["instance/staging-bastion-01", "instance/staging-pg-01", "instance/staging-pg-02"]
    assert not [s for s in plan["steps"] if "colo" in s["key"] or "ld4" in s["key"]]
    assert {s["action"] for s in plan["steps"]} <= {"create", "skip"}


def test_existing_hosts_get_their_addresses_in_the_inventory(mixed, standins):
    listed = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "ansible-inventory"), "-i", str(mixed), "--list"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    hv = json.loads(listed.stdout)["_meta"]["hostvars"]
    for i, host in enumerate(standins["hosts"], start=1):
        mine = hv[f"staging-colo-{i:02d}"]
        assert (mine["ansible_host"], mine["ansible_port"]) == (host["address"], host["port"])
        assert mine["qb_private_ip"] == host["private_ip"] and mine["qb_trading_nic"] == "eth0"


def _run(mixed, *args):
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "quantbot_infra.cli",
            "run",
            "site",
            "--env",
            "staging",
            "--inventory",
            str(mixed),
            "--limit",
            "class_colo",
            "--tags",
            "base,lowlatency",
            "--json",
            *args,
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
        timeout=1200,
    )


def test_existing_hosts_converge_and_converge_again_without_change(mixed):
    first = _run(mixed)
    result = json.loads(first.stdout)
    assert first.returncode == 0, result.get("failed_tasks") or result.get("error")
    assert sorted(result["hosts"]) == ["staging-colo-01", "staging-colo-02"]
    assert all(s["changed"] > 0 for s in result["hosts"].values()), result["hosts"]
    again = json.loads(_run(mixed).stdout)
    assert again["status"] == "successful"
    assert {h: s["changed"] for h, s in again["hosts"].items()} == {
        "staging-colo-01": 0,
        "staging-colo-02": 0,
    }
    # what base made is really there and running
    assert _on_colo(mixed, "systemctl is-active chrony ssh").count("active") == 4
    # the lowlatency role on a container keeps the configuration of the CPU plan for the
    # trading NIC the topology names, and leaves the (shared) kernel alone
    kept = _on_colo(mixed, "cat /etc/default/grub.d/60-quantbot-lowlatency.cfg "
                    "/etc/systemd/system.conf.d/60-quantbot-lowlatency.conf")
    assert kept.count("irqaffinity=") == 2 and kept.count("CPUAffinity=") == 2


def _on_colo(mixed, command: str) -> str:
    """A command on both stand-ins, through the mixed topology's inventory; its output."""
    run = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "ansible"), "-i", str(mixed), "class_colo", "-m",
         "ansible.builtin.command", "-a", command],
        capture_output=True, text=True, cwd=ROOT, check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    return run.stdout
