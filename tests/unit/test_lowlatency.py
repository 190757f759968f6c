"""The low-latency role's logic: the kernel command line a CPU plan asks for and when a reboot
is due (quantbot_infra.lowlatency), the latency gate's arithmetic on a real cyclictest run (taken
on the project's QEMU test VM), and qb_lowlatency_verify's reading and judging of a running
kernel (module_utils/qb_lowlatency_state) on procfs/sysfs trees written here."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from quantbot_infra import lowlatency
from tests.unit import adhoc

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).parent / "fixtures"


def _load(name):
    spec = importlib.util.spec_from_file_location(
        f"ansible.module_utils.{name}", ROOT / "plugins" / "module_utils" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


topo = _load("qb_cpu_topology")
state_mod = _load("qb_lowlatency_state")

SETTINGS = {"isolcpus_flags": ["managed_irq", "domain"], "nohz_full": True, "rcu_nocbs": True,
            "irqaffinity": True, "skew_tick": True, "tsc_reliable": True, "nosoftlockup": True,
            "max_cstate": 1, "thp": "never", "hugepages_per_node": {}, "hugepage_size": "2M", "extra": []}


def vm_plan(**kwargs):
    return topo.plan(topo.read_topology(str(FIXTURES / "cpu_topology" / "qemu-2s-smt-2numa")),
                     trading_nic="enp129s0", **kwargs)


# --- command line ----------------------------------------------------------------------------

def test_the_vm_plan_gives_the_command_line_it_booted_with():
    tokens = lowlatency.kernel_cmdline(vm_plan(), SETTINGS)
    assert tokens == [
        "isolcpus=managed_irq,domain,2-3,6-7", "nohz_full=2-3,6-7", "rcu_nocbs=2-3,6-7",
        "irqaffinity=0-1,4-5", "skew_tick=1", "tsc=reliable", "nosoftlockup",
        "processor.max_cstate=1", "intel_idle.max_cstate=1", "transparent_hugepage=never"]


def test_hugepages_per_node_and_toggles():
    settings = {**SETTINGS, "nohz_full": False, "max_cstate": None, "thp": "",
                "hugepages_per_node": {1: 512, 0: 0}, "extra": ["mitigations=off"]}
    tokens = lowlatency.kernel_cmdline(vm_plan(), settings)
    assert "nohz_full=2-3,6-7" not in tokens and not any("cstate" in t for t in tokens)
    assert tokens[-4:] == ["default_hugepagesz=2M", "hugepagesz=2M", "hugepages=0:0,1:512", "mitigations=off"]


@pytest.mark.parametrize("change,message", [
    ({"isolcpus_flags": ["managed_irq", "bogus"]}, "lowlatency_isolcpus_flags: unknown flag 'bogus'"),
    ({"max_cstate": "deep"}, "lowlatency_max_cstate must be a whole number or null"),
    ({"thp": "sometimes"}, "lowlatency_thp must be never, madvise or always"),
    ({"hugepages_per_node": {3: 10}}, "lowlatency_hugepages_per_node names NUMA node 3"),
    ({"hugepages_per_node": {1: 10}, "hugepage_size": "2MB"}, "lowlatency_hugepage_size must look like"),
    ({"extra": ["a b"]}, "lowlatency_cmdline_extra: 'a b' is not one command-line token"),
])
def test_bad_settings_name_the_variable(change, message):
    with pytest.raises(ValueError, match=message):
        lowlatency.kernel_cmdline(vm_plan(), {**SETTINGS, **change})


def test_a_reboot_is_due_for_missing_and_stale_tokens_only():
    tokens = lowlatency.kernel_cmdline(vm_plan(), SETTINGS)
    booted = "BOOT_IMAGE=/boot/vmlinuz root=UUID=x ro console=ttyS0,115200 " + " ".join(tokens)
    assert lowlatency.missing_tokens(tokens, booted) == []
    # the plan changed: the old isolcpus is stale, the new one missing
    newer = lowlatency.kernel_cmdline(vm_plan(housekeeping="0-3"), SETTINGS)
    due = lowlatency.missing_tokens(newer, booted)
    assert "isolcpus=managed_irq,domain,4-7" in due and "-isolcpus=managed_irq,domain,2-3,6-7" in due
    # a token the role no longer wants (nosoftlockup turned off) is stale too
    fewer = lowlatency.kernel_cmdline(vm_plan(), {**SETTINGS, "nosoftlockup": False})
    assert lowlatency.missing_tokens(fewer, booted) == ["-nosoftlockup"]


# --- latency gate ----------------------------------------------------------------------------

def test_a_real_cyclictest_run_is_summarised():
    run = json.loads((FIXTURES / "lowlatency" / "cyclictest-qemu-tcg.json").read_text())
    summary = lowlatency.latency_summary(run)
    assert sorted(summary["cpus"]) == ["2", "3", "6", "7"]
    assert summary["samples"] == sum(t["cycles"] for t in run["thread"].values())
    assert summary["max_us"] == max(t["max"] for t in run["thread"].values())
    cpu2 = summary["cpus"]["2"]
    assert cpu2["overflows"] == run["thread"]["0"]["cycles"] - sum(run["thread"]["0"]["histogram"].values())
    # over 1% of this emulated run's samples are beyond the 1 ms histogram: p99 is the max
    assert cpu2["overflows"] / cpu2["samples"] > 0.01 and cpu2["p99_us"] == cpu2["max_us"]


def test_quantiles_of_a_histogram():
    run = {"thread": {"0": {"cpu": 2, "cycles": 10000, "min": 1, "max": 40, "avg": 2.0,
                            "histogram": {"1": 9000, "2": 900, "5": 99, "40": 1}}}}
    summary = lowlatency.latency_summary(run)
    assert (summary["p99_us"], summary["p9999_us"], summary["max_us"]) == (2, 5, 40)


def test_the_gate_fails_above_the_threshold_and_on_regression():
    now = {"max_us": 30, "p9999_us": 12}
    assert lowlatency.latency_verdict(now, None, 50, 50)["passed"]
    assert not lowlatency.latency_verdict(now, None, 20, 50)["passed"]
    worse = lowlatency.latency_verdict(now, {"p9999_us": 6}, 50, 50)
    assert not worse["passed"] and worse["p9999_change_pct"] == 100.0
    assert "100.0% worse" in worse["reasons"][0]
    assert lowlatency.latency_verdict(now, {"p9999_us": 10}, 50, 50)["passed"]


def test_no_samples_is_an_error():
    with pytest.raises(ValueError, match="no thread results"):
        lowlatency.latency_summary({"thread": {}})


# --- which kernel boots ------------------------------------------------------------------------

# /boot of the project's VM image with Debian's PREEMPT_RT kernel installed beside the ordinary
# one, and the menu entry id update-grub gave the RT kernel there
VM_BOOT = ["System.map-6.1.0-57-amd64", "System.map-6.1.0-57-rt-amd64", "config-6.1.0-57-amd64",
           "config-6.1.0-57-rt-amd64", "efi", "grub", "initrd.img-6.1.0-57-amd64",
           "initrd.img-6.1.0-57-rt-amd64", "vmlinuz-6.1.0-57-amd64", "vmlinuz-6.1.0-57-rt-amd64"]
VM_UUID = "359fa386-ae66-4236-b030-c934b6bfb57c"
RT_ENTRY = f"gnulinux-6.1.0-57-rt-amd64-advanced-{VM_UUID}"


def test_the_rt_kernel_is_pinned_by_its_grub_menu_entry_id():
    chosen = lowlatency.boot_kernel(VM_BOOT, True, VM_UUID)
    assert chosen["version"] == "6.1.0-57-rt-amd64"
    assert chosen["grub_default"] == f"gnulinux-advanced-{VM_UUID}>{RT_ENTRY}"


def test_without_rt_the_ordinary_kernel_is_pinned_only_where_an_rt_one_is_installed():
    # GRUB's own order would boot the RT kernel: the variable decides, not the sort
    assert lowlatency.boot_kernel(VM_BOOT, False, VM_UUID)["version"] == "6.1.0-57-amd64"
    plain_only = [n for n in VM_BOOT if "-rt-" not in n]
    assert lowlatency.boot_kernel(plain_only, False, VM_UUID)["grub_default"] is None
    waiting = lowlatency.boot_kernel(plain_only, True, VM_UUID)
    assert waiting["version"] is None and "no PREEMPT_RT kernel in /boot yet" in waiting["why"]


def test_the_newest_release_wins_in_version_order():
    names = ["vmlinuz-6.1.0-9-rt-amd64", "vmlinuz-6.1.0-10-rt-amd64", "vmlinuz-6.1.0-10-amd64"]
    assert lowlatency.boot_kernel(names, True, VM_UUID)["version"] == "6.1.0-10-rt-amd64"


def test_no_uuid_no_pin():
    with pytest.raises(ValueError, match=r"cannot pin kernel 6\.1\.0-57-rt-amd64"):
        lowlatency.boot_kernel(VM_BOOT, True, "")


def test_the_filter_reads_grub_probe_then_the_listing():
    spec = importlib.util.spec_from_file_location("qb_lowlatency_filters",
                                                  ROOT / "plugins" / "filter" / "qb_lowlatency.py")
    filters = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(filters)
    chosen = filters.lowlatency_boot_kernel("\n".join([VM_UUID, *VM_BOOT]) + "\n", True)
    assert chosen["grub_default"].endswith(RT_ENTRY)


# --- verification on a running kernel ---------------------------------------------------------

def _w(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n")


def kernel_tree(root: Path, irq_on_isolated=False, floating_kthread=False, rt_threads=False) -> Path:
    """A tuned 8-CPU kernel as the VM has it after the role's reboot."""
    _w(root, "proc/cmdline", "BOOT_IMAGE=/vmlinuz ro isolcpus=managed_irq,domain,2-3,6-7 nohz_full=2-3,6-7")
    _w(root, "sys/devices/system/cpu/isolated", "2-3,6-7")
    _w(root, "sys/devices/system/cpu/nohz_full", "2-3,6-7")
    _w(root, "sys/devices/system/cpu/online", "0-7")
    _w(root, "proc/irq/default_smp_affinity", "33")
    _w(root, "sys/devices/virtual/workqueue/cpumask", "33")
    _w(root, "sys/kernel/mm/transparent_hugepage/enabled", "always madvise [never]")
    _w(root, "proc/sys/kernel/timer_migration", "0")
    _w(root, "proc/sys/vm/stat_interval", "10")
    # a block device's per-CPU queues (managed: each stays on its CPU), a NIC's queue
    for cpu in range(8):
        _w(root, f"proc/irq/{27 + cpu}/smp_affinity_list", str(cpu))
        _w(root, f"proc/irq/{27 + cpu}/effective_affinity_list", str(cpu))
        (root / f"proc/irq/{27 + cpu}/virtio0-req.{cpu}").mkdir()
    _w(root, "proc/irq/36/smp_affinity_list", "2" if irq_on_isolated else "0-1,4-5")
    _w(root, "proc/irq/36/effective_affinity_list", "2" if irq_on_isolated else "4")
    (root / "proc/irq/36/virtio1-input.0").mkdir()
    # an IRQ without a handler is never delivered: ignored
    _w(root, "proc/irq/50/smp_affinity_list", "0-7")
    tasks = [
        (1, "systemd", 0, "0-1,4-5"),
        (20, "ksoftirqd/2", 0x00200000 | 0x04000000, "2"),   # per-CPU kernel thread
        (93, "kswapd0", 0x00200000, "0-3" if floating_kthread else "0-1"),
        (500, "trader", 0, "6-7"),                          # pinned inside the isolated set
    ]
    if rt_threads:
        # PREEMPT_RT threads every handler (as the VM's RT kernel showed): a per-CPU queue's
        # thread where its interrupt fires, the NIC's with the NIC's interrupt
        tasks += [(240, "irq/29-virtio0-req.2", 0x00200000, "6"),
                  (250, "irq/36-virtio1-input.0", 0x00200000, "2" if irq_on_isolated else "0-1,4-5")]
    for pid, name, flags, allowed in tasks:
        _w(root, f"proc/{pid}/task/{pid}/status", f"Name:\t{name}\nCpus_allowed_list:\t{allowed}")
        _w(root, f"proc/{pid}/task/{pid}/stat", f"{pid} ({name}) S 2 0 0 0 -1 {flags} 0 0")
    return root


def verify(root, **kw):
    state = state_mod.read_state(str(root), sysctls=["kernel.timer_migration", "vm.stat_interval"])
    return state_mod.problems(
        state, "0-1,4-5", "2-3,6-7", cmdline=["isolcpus=managed_irq,domain,2-3,6-7", "nohz_full=2-3,6-7"],
        thp="never", governor="performance",
        sysctls={"kernel.timer_migration": "0", "vm.stat_interval": "10"}, **kw)


def test_a_tuned_kernel_passes_and_says_what_did_not_apply(tmp_path):
    found, checked = verify(kernel_tree(tmp_path))
    assert found == []
    assert checked["governor"].startswith("not applicable: no cpufreq driver")
    assert "4 per-CPU queue interrupt(s)" in checked["irqs"] and "29 (virtio0-req.2)" in checked["irqs"]
    assert checked["tasks"] == checked["isolation"] == checked["workqueue"] == checked["thp"] == "ok"


def test_threaded_handlers_of_per_cpu_queues_are_expected_and_others_are_caught(tmp_path):
    found, checked = verify(kernel_tree(tmp_path / "rt", rt_threads=True))
    assert found == []
    assert "1 threaded handler(s) of per-CPU queue interrupts" in checked["tasks"]
    found, _ = verify(kernel_tree(tmp_path / "moved", rt_threads=True, irq_on_isolated=True))
    assert found[-1] == ("1 task(s) may run on isolated CPUs: kernel thread irq/36-virtio1-input.0 "
                         "(250/250) may run on CPU 2")


def test_an_irq_moved_onto_an_isolated_cpu_is_caught(tmp_path):
    found, checked = verify(kernel_tree(tmp_path, irq_on_isolated=True))
    assert checked["irqs"] == "failed"
    assert found == ["interrupts delivered to isolated CPUs: 36 (virtio1-input.0) on CPU 2"]


def test_a_movable_kernel_thread_on_isolated_cpus_is_caught(tmp_path):
    found, _ = verify(kernel_tree(tmp_path, floating_kthread=True))
    assert found == ["1 task(s) may run on isolated CPUs: kernel thread kswapd0 (93/93) may run on CPU 2-3"]


def test_the_pinned_kernel_and_preempt_rt_are_checked(tmp_path):
    root = kernel_tree(tmp_path)
    _w(root, "proc/sys/kernel/osrelease", "6.1.0-57-amd64")
    found, checked = verify(root, kernel="6.1.0-57-rt-amd64", realtime=True)
    assert checked["kernel"] == "failed"
    assert found == ["the running kernel is 6.1.0-57-amd64, GRUB's pinned default is 6.1.0-57-rt-amd64",
                     "the running kernel 6.1.0-57-amd64 is not PREEMPT_RT (no /sys/kernel/realtime)"]
    _w(root, "proc/sys/kernel/osrelease", "6.1.0-57-rt-amd64")
    _w(root, "sys/kernel/realtime", "1")
    found, checked = verify(root, kernel="6.1.0-57-rt-amd64", realtime=True)
    assert found == [] and checked["kernel"] == "ok"
    assert "kernel" not in verify(root)[1]


def test_settings_not_in_effect_are_each_named(tmp_path):
    root = kernel_tree(tmp_path)
    _w(root, "sys/devices/system/cpu/isolated", "")
    _w(root, "sys/kernel/mm/transparent_hugepage/enabled", "[always] madvise never")
    _w(root, "proc/sys/vm/stat_interval", "1")
    _w(root, "sys/devices/virtual/workqueue/cpumask", "ff")
    _w(root, "proc/irq/default_smp_affinity", "ff")
    _w(root, "proc/cmdline", "BOOT_IMAGE=/vmlinuz ro")
    for cpu in (2, 3):
        _w(root, f"sys/devices/system/cpu/cpu{cpu}/cpufreq/scaling_governor", "powersave")
    found, _ = verify(root)
    text = "\n".join(found)
    for expected in ("kernel command line lacks isolcpus=managed_irq,domain,2-3,6-7 nohz_full=2-3,6-7",
                     "isolated CPUs are none, the plan isolates 2-3,6-7",
                     "the default IRQ affinity is CPU 0-7, beyond housekeeping 0-1,4-5",
                     "the unbound workqueues run on CPU 0-7",
                     "transparent hugepages are 'always', wanted 'never'",
                     "CPU 2-3 not on the 'performance' governor",
                     "vm.stat_interval=1 (wanted 10)"):
        assert expected in text


def test_the_module_fails_listing_every_problem_and_passes_on_a_tuned_tree(tmp_path):
    def run(root):
        return adhoc.module("qb_lowlatency_verify", {
            "root": str(root), "housekeeping": "0-1,4-5", "isolated": "2-3,6-7", "thp": "never",
            "cmdline": ["nohz_full=2-3,6-7"], "sysctls": {"vm.stat_interval": 10}}).stdout

    good = run(kernel_tree(tmp_path / "good"))
    assert "SUCCESS" in good and '"changed": false' in good
    bad = run(kernel_tree(tmp_path / "bad", irq_on_isolated=True, floating_kthread=True))
    assert "FAILED" in bad
    assert "36 (virtio1-input.0) on CPU 2" in bad and "kernel thread kswapd0 (93/93)" in bad


# --- time ------------------------------------------------------------------------------------

def test_the_nics_clock_decides_how_time_is_kept():
    virtio = lowlatency.timestamping((FIXTURES / "lowlatency" / "ethtool-T-virtio.txt").read_text())
    phc = lowlatency.timestamping((FIXTURES / "lowlatency" / "ethtool-T-phc.txt").read_text())
    assert virtio == {"phc": None, "hardware": False}
    assert phc == {"phc": 2, "hardware": True}
    assert lowlatency.time_mode("auto", virtio, "enp129s0")["mode"] == "software"
    chosen = lowlatency.time_mode("auto", phc, "enp65s0f0")
    assert (chosen["mode"], chosen["phc"]) == ("ptp", 2) and "/dev/ptp2" in chosen["why"]
    assert lowlatency.time_mode("chrony_hw", phc, "enp65s0f0")["mode"] == "chrony_hw"
    # hardware timestamps without a PTP clock: chrony uses them
    assert lowlatency.time_mode("auto", {"phc": None, "hardware": True}, "eth1")["mode"] == "chrony_hw"
    assert lowlatency.time_mode("auto", None, "")["mode"] == "software"
    # a real kernel's answer for a NIC with a PTP clock (QEMU's e1000e, captured on the VM)
    e1000e = lowlatency.timestamping((FIXTURES / "lowlatency" / "ethtool-T-e1000e.txt").read_text())
    assert e1000e == {"phc": 0, "hardware": True}
    assert lowlatency.time_mode("auto", e1000e, "enp129s0")["phc"] == 0


@pytest.mark.parametrize("wanted,stamping,nic,message", [
    ("ptp", {"phc": None, "hardware": False}, "enp129s0",
     "lowlatency_time_mode ptp: enp129s0 has no PTP hardware clock"),
    ("chrony_hw", {"phc": None, "hardware": False}, "enp129s0", "enp129s0 has no hardware timestamping"),
    ("ptp", None, "", "lowlatency_time_mode ptp needs lowlatency_trading_nic"),
    ("gps", None, "", "lowlatency_time_mode must be auto, ptp, chrony_hw or software"),
])
def test_a_time_mode_the_nic_cannot_do_is_refused(wanted, stamping, nic, message):
    with pytest.raises(ValueError, match=message):
        lowlatency.time_mode(wanted, stamping, nic)
