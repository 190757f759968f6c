"""The lowlatency role on the QEMU VM, after converge (one reboot) and idempotence (none): the
command line is the booted one, the latency gate measures and compares, a broken setting is
caught by the verification, and a plan that splits thread siblings is refused before anything
changes."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "_shared"))
from qbmolecule import PROJECT, STATE, flat, host, playbook

VM = "qb-ll-vm"
CONVERGE = "../molecule/lowlatency/converge.yml"
HOUSEKEEPING, ISOLATED = "0-1,4-5", "2-3,6-7"
OWNED = ("/etc/default/grub.d/60-quantbot-lowlatency.cfg", "/etc/sysctl.d/60-quantbot-lowlatency.conf",
         "/etc/tmpfiles.d/60-quantbot-lowlatency.conf", "/etc/systemd/system.conf.d/60-quantbot-lowlatency.conf")


@pytest.fixture(scope="module")
def vm():
    return host(VM)


def boots(vm) -> int:
    return len(vm.check_output("journalctl --list-boots --quiet").splitlines())


def test_the_vm_booted_the_roles_command_line_once(vm):
    cmdline = vm.file("/proc/cmdline").content_string.split()
    assert cmdline[0].startswith("BOOT_IMAGE=/boot/vmlinuz-"), "not booted through GRUB"
    for token in (f"isolcpus=managed_irq,domain,{ISOLATED}", f"nohz_full={ISOLATED}",
                  f"rcu_nocbs={ISOLATED}", f"irqaffinity={HOUSEKEEPING}", "skew_tick=1",
                  "tsc=reliable", "nosoftlockup", "transparent_hugepage=never"):
        assert token in cmdline
    # converge rebooted once; the idempotence run did not
    assert boots(vm) == 2
    # into the PREEMPT_RT kernel the role pinned (the image boots the ordinary one)
    release = vm.check_output("uname -r")
    assert release.endswith("-rt-amd64") and cmdline[0] == f"BOOT_IMAGE=/boot/vmlinuz-{release}"
    assert vm.file("/sys/kernel/realtime").content_string.strip() == "1"
    assert "PREEMPT_RT" in vm.check_output("uname -v")
    dropin = vm.file(OWNED[0]).content_string
    assert f'>gnulinux-{release}-advanced-' in dropin and "GRUB_DEFAULT=" in dropin
    assert vm.file("/sys/devices/system/cpu/isolated").content_string.strip() == ISOLATED
    metric = vm.file("/var/lib/prometheus/node-exporter/quantbot_lowlatency.prom").content_string
    assert "quantbot_lowlatency_reboot_required 0" in metric
    # virtio has no PTP hardware clock nor hardware timestamps: time stays with plain chrony
    assert not vm.file("/etc/chrony/conf.d/60-quantbot-lowlatency.conf").exists
    assert not vm.file("/etc/systemd/system/quantbot-lowlatency-ptp4l.service").exists


def allowed(vm, pid: str) -> str:
    return vm.check_output(f"grep Cpus_allowed_list /proc/{pid}/status").split()[-1]


def test_services_and_kernel_threads_stay_on_housekeeping_cpus(vm):
    assert vm.service("irqbalance").is_running
    assert allowed(vm, vm.check_output("pgrep -o -x sshd")) == HOUSEKEEPING
    for kthread, node_cpus in (("kswapd0", "0-1"), ("kswapd1", "4-5")):
        assert allowed(vm, vm.check_output(f"pgrep -x {kthread}")) == node_cpus


def test_the_latency_gate_measures_stores_and_compares():
    # emulated wake-ups run to tens of milliseconds: a histogram wide enough for real quantiles
    wide = ("-e", "latency_histogram_us=100000")
    first = playbook("latency_check.yml", "-e", "latency_duration=5s", "-e", "latency_max_us=1000000", *wide)
    assert "EMULATED" in flat(first) and "(first run)" in flat(first)
    # the same measurement against an impossible threshold fails the gate, and is kept
    second = playbook("latency_check.yml", "-e", "latency_duration=5s", "-e", "latency_max_us=1", *wide,
                      check=False)
    assert second.returncode != 0
    assert "latency gate failed: max latency" in flat(second) and "above the threshold of 1 us" in flat(second)
    runs = sorted((STATE / "state" / "latency" / VM).glob("*.json"))
    assert len(runs) == 2
    first_run, second_run = (json.loads(p.read_text()) for p in runs)
    assert first_run["cpus"] == ISOLATED and first_run["emulated"] is True
    assert first_run["kernel"].endswith("-rt-amd64")
    assert sorted(first_run["summary"]["cpus"]) == ["2", "3", "6", "7"]
    summary = first_run["summary"]
    assert summary["samples"] > 0 and summary["max_us"] >= summary["p9999_us"] >= summary["p99_us"] > 0
    assert second_run["previous"] == summary and second_run["verdict"]["passed"] is False
    # kept with the suite's results: the VM's numbers, for the record (emulated, not metal's)
    kept = PROJECT / ".state" / "test-results" / "lowlatency"
    kept.mkdir(parents=True, exist_ok=True)
    for path in runs:
        shutil.copy(path, kept / path.name)


def test_an_irq_moved_onto_an_isolated_cpu_is_caught(vm):
    irq = vm.check_output("grep -m1 'virtio1-input.0' /proc/interrupts | cut -d: -f1").strip()
    vm.run_expect([0], "systemctl stop irqbalance")
    try:
        vm.run_expect([0], f"echo 2 > /proc/irq/{irq}/smp_affinity_list")
        caught = playbook(CONVERGE, "--tags", "lowlatency_verify", check=False)
        assert caught.returncode != 0
        assert f"interrupts delivered to isolated CPUs: {irq} (virtio1-input.0) on CPU 2" in flat(caught)
    finally:
        vm.run_expect([0], f"echo {HOUSEKEEPING} > /proc/irq/{irq}/smp_affinity_list")
        vm.run_expect([0], "systemctl start irqbalance")
    playbook(CONVERGE, "--tags", "lowlatency_verify")


def test_a_plan_that_splits_thread_siblings_is_refused_before_anything_changes(vm):
    before = {path: vm.file(path).sha256sum for path in OWNED}
    booted = boots(vm)
    refused = playbook(CONVERGE, "-e", "lowlatency_isolated_cpus=2,6-7", check=False)
    assert refused.returncode != 0
    assert "lowlatency_isolated_cpus splits the physical core of CPUs 2-3" in flat(refused)
    assert {path: vm.file(path).sha256sum for path in OWNED} == before
    assert boots(vm) == booted
