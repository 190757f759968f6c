"""A patch run on the VM (the patching scenario's repository, built on a throwaway host of the
project's image and served by the VM on its loopback): qb-demo-kmod's upgrade marks a reboot
required, so the run reboots the VM - once - waits for it to come back into the kernel it ran,
and records the reboot; the daemon's upgrade alone would only have restarted its service."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "_shared"))
from qbmolecule import PROJECT, STATE, host, module, playbook

VM = "qb-ll-vm"
BUILDER = PROJECT / "molecule" / "patching" / "files" / "make-repo.sh"


def test_a_patch_that_marks_a_reboot_reboots_the_vm_once_and_it_comes_back(tmp_path):
    vm = host(VM)
    # the repository, built where its tools are (never on the controller itself)
    tarball = tmp_path / "repo.tar"
    with tarball.open("wb") as out:
        subprocess.run(
            ["docker", "run", "--rm", "-v", f"{BUILDER}:/usr/local/sbin/make-repo.sh:ro",
             "quantbot-infra/host:bookworm", "bash", "-ec",
             "apt-get install -y -qq --no-install-recommends apt-utils gpg gpg-agent >/dev/null; "
             "make-repo.sh /srv/qb-test-repo 1.0 1.1 >/dev/null; tar -C /srv -c qb-test-repo"],
            stdout=out, check=True, timeout=300)
    module(VM, "ansible.builtin.unarchive", f"src={tarball} dest=/srv", "--become")
    vm.run("systemctl stop qb-test-repo; systemctl reset-failed qb-test-repo")
    vm.check_output("systemd-run --unit qb-test-repo python3 -m http.server 8088 --bind 127.0.0.1 "
                    "--directory /srv/qb-test-repo")
    # the VM's apt knows the test's repository only, as a colocated host that reaches its internal
    # mirror alone: the run fetches nothing from outside the machine, and the emulated apt reads
    # one small index instead of Debian's (the plan's refresh and simulation, the upgrade)
    vm.check_output("install -m 0644 /srv/qb-test-repo/qb-test.gpg /etc/apt/keyrings/qb-test.gpg && echo "
                    "'deb [signed-by=/etc/apt/keyrings/qb-test.gpg] http://127.0.0.1:8088 qbtest main' "
                    "> /etc/apt/sources.list.d/qb-test.list && { [ ! -e /etc/apt/sources.list ] || "
                    "mv /etc/apt/sources.list /etc/apt/sources.list.offline; } && apt-get update -qq && "
                    "DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --allow-downgrades "
                    "qb-demo-kmod=1.0 qb-demo-service=1.0")
    boots = len(vm.check_output("journalctl --list-boots --quiet").splitlines())
    kernel = vm.check_output("uname -r")

    result = playbook("patch.yml", "-e", json.dumps({"patch_origins": ["quantbot-test:qbtest"]}), timeout=1200)
    record = json.loads((STATE / "state" / "patch" / "run" / "hosts" / f"{VM}.json").read_text())
    print(f"patch run on the VM: {record['duration_s']} s, rebooted {record['rebooted']} "
          f"({'; '.join(record['reboot_reasons'])}), kernel {record['kernel']}")
    assert "Reboot" in result.stdout
    assert record["result"] == "patched" and record["rebooted"] is True
    assert any("qb-demo-kmod" in reason for reason in record["reboot_reasons"]), record
    assert sorted((p["name"], p["before"], p["after"]) for p in record["packages"]) == [
        ("qb-demo-kmod", "1.0", "1.1"), ("qb-demo-service", "1.0", "1.1")]
    # it really rebooted, once, into the kernel it ran
    assert len(vm.check_output("journalctl --list-boots --quiet").splitlines()) == boots + 1
    assert vm.check_output("uname -r") == kernel == record["kernel"]["after"]
    assert not vm.file("/var/run/reboot-required").exists
    # the reboot took the place of the restart
    assert record["services_restarted"] == []
