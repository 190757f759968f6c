"""qb_cpu_topology's planner on sysfs trees captured from real kernels (fixtures/cpu_topology,
made with its capture.sh): a 2-vCPU cloud machine without SMT, the project's QEMU test VM with
2 sockets x 2 cores x 2 threads in 2 NUMA nodes (and the same with CPUs 3 and 7 taken offline),
a 1-socket, 16-thread machine in 4 NUMA nodes; plus a dual-socket tree laid out as Intel
servers number their CPUs (thread siblings N/2 apart), written by the test."""

import importlib.util
from pathlib import Path

import pytest

from tests.unit import adhoc

ROOT = Path(__file__).resolve().parents[2]
SHAPES = Path(__file__).parent / "fixtures" / "cpu_topology"
_spec = importlib.util.spec_from_file_location(
    "qb_cpu_topology", ROOT / "plugins" / "module_utils" / "qb_cpu_topology.py")
topo = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(topo)


def shape(name):
    return topo.read_topology(str(SHAPES / name))


def interleaved_tree(root: Path, sockets=2, cores=6):
    """sysfs of a dual-socket SMT server as Intel parts enumerate it: CPUs 0..S*C-1 are the
    first threads (socket by socket), their siblings follow in the same order."""
    first = sockets * cores
    cpu_dir = root / "sys/devices/system/cpu"
    for cpu in range(2 * first):
        thread0 = cpu % first
        socket = thread0 // cores
        t = cpu_dir / f"cpu{cpu}" / "topology"
        t.mkdir(parents=True)
        (t / "physical_package_id").write_text(f"{socket}\n")
        (t / "core_id").write_text(f"{thread0 % cores}\n")
        (t / "thread_siblings_list").write_text(f"{thread0},{thread0 + first}\n")
    (cpu_dir / "online").write_text(f"0-{2 * first - 1}\n")
    (cpu_dir / "present").write_text(f"0-{2 * first - 1}\n")
    (cpu_dir / "isolated").write_text("\n")
    for socket in range(sockets):
        node = root / f"sys/devices/system/node/node{socket}"
        node.mkdir(parents=True)
        lo = socket * cores
        node.joinpath("cpulist").write_text(
            f"{lo}-{lo + cores - 1},{lo + first}-{lo + first + cores - 1}\n")
    nic = root / "sys/class/net/ens1f0/device"
    nic.mkdir(parents=True)
    (nic / "numa_node").write_text("1\n")
    (root / "proc").mkdir()
    (root / "proc/cmdline").write_text("BOOT_IMAGE=/boot/vmlinuz root=UUID=x ro quiet\n")
    return topo.read_topology(str(root))


# --- cpulist notation ------------------------------------------------------------------------

@pytest.mark.parametrize("text,cpus", [
    ("0-3,8,10-11", [0, 1, 2, 3, 8, 10, 11]), ("", []), ("5", [5]), ("3,1,2", [1, 2, 3]),
])
def test_cpulist_round_trip(text, cpus):
    assert topo.parse_cpulist(text) == cpus
    assert topo.parse_cpulist(topo.format_cpulist(cpus)) == cpus


def test_cpulist_refuses_a_backwards_range():
    with pytest.raises(ValueError):
        topo.parse_cpulist("5-2")


# --- reading sysfs ---------------------------------------------------------------------------

def test_the_vm_shape_is_read_as_the_kernel_reports_it():
    t = shape("qemu-2s-smt-2numa")
    s = topo.summary(t)
    assert (s["packages"], s["numa_nodes"], s["physical_cores"], s["threads_per_core"]) == (2, 2, 4, 2)
    assert s["nodes"] == {"0": "0-3", "1": "4-7"}
    assert s["cores"] == ["0-1", "2-3", "4-5", "6-7"]
    # the trading NIC sits behind the PCIe expander bridge of node 1; virtio's device is one
    # level below the PCI function that carries numa_node, the management NIC's bus says -1
    assert s["nics"] == {"enp0s3": None, "enp129s0": 1}
    assert s["isolated"] == "" and s["nohz_full"] == ""
    assert "root=UUID=" in s["cmdline"]


def test_offline_cpus_leave_their_core_and_node():
    t = shape("qemu-2s-smt-offline")
    assert t["offline"] == [3, 7]
    assert topo.summary(t)["cores"] == ["0-1", "2", "4-5", "6"]
    assert t["nodes"] == {0: [0, 1, 2], 1: [4, 5, 6]}


# --- default plans ---------------------------------------------------------------------------

def test_one_socket_without_smt_keeps_cpu0_and_isolates_the_rest():
    p = topo.plan(shape("cloud-1s-nosmt"))
    assert (p["housekeeping_list"], p["isolated_list"], p["trading_list"]) == ("0", "1", "1")


def test_two_sockets_with_smt_keep_the_first_core_of_each_node():
    p = topo.plan(shape("qemu-2s-smt-2numa"), trading_nic="enp129s0")
    assert p["housekeeping_list"] == "0-1,4-5"
    assert p["isolated_list"] == "2-3,6-7"
    assert p["trading_list"] == "6-7" and p["trading_nic_node"] == 1
    assert p["nodes"] == {"0": {"housekeeping": "0-1", "isolated": "2-3"},
                          "1": {"housekeeping": "4-5", "isolated": "6-7"}}
    assert p["warnings"] == []


def test_four_numa_nodes_each_keep_a_core():
    p = topo.plan(shape("qemu-1s-smt-4numa"), trading_nic="enp129s0")
    assert p["housekeeping_list"] == "0-1,4-5,8-9,12-13"
    assert p["isolated_list"] == "2-3,6-7,10-11,14-15"
    assert p["trading_list"] == "10-11"


def test_two_cores_per_node_for_housekeeping(tmp_path):
    p = topo.plan(interleaved_tree(tmp_path), housekeeping_cores_per_node=2)
    assert p["housekeeping_list"] == "0-1,6-7,12-13,18-19"
    # on the 4-node VM every node has two cores: nothing is left, and the plan says so
    p = topo.plan(shape("qemu-1s-smt-4numa"), housekeeping_cores_per_node=2)
    assert p["isolated"] == [] and "nothing is isolated" in p["warnings"][0]


def test_interleaved_siblings_stay_together(tmp_path):
    t = interleaved_tree(tmp_path)
    assert topo.summary(t)["cores"][:2] == ["0,12", "1,13"]
    p = topo.plan(t, trading_nic="ens1f0")
    # socket 0's first core is CPUs 0 and 12, socket 1's is 6 and 18
    assert p["housekeeping_list"] == "0,6,12,18"
    assert p["isolated_list"] == "1-5,7-11,13-17,19-23"
    assert p["trading_list"] == "7-11,19-23"


def test_no_isolated_cpu_near_the_nic_is_a_warning_not_a_guess():
    p = topo.plan(shape("qemu-2s-smt-2numa"), isolated="2-3", trading_nic="enp129s0")
    assert p["trading_list"] == "2-3"
    assert any("no isolated CPU is on NUMA node 1" in w for w in p["warnings"])


def test_a_nic_without_numa_node_takes_every_isolated_cpu():
    p = topo.plan(shape("qemu-2s-smt-2numa"), trading_nic="enp0s3")
    assert p["trading_list"] == "2-3,6-7"
    assert any("reports no NUMA node" in w for w in p["warnings"])


def test_a_single_cpu_machine_isolates_nothing_and_says_so(tmp_path):
    cpu = tmp_path / "sys/devices/system/cpu"
    (cpu / "cpu0/topology").mkdir(parents=True)
    (cpu / "online").write_text("0\n")
    p = topo.plan(topo.read_topology(str(tmp_path)))
    assert p["isolated"] == [] and p["housekeeping_list"] == "0"
    assert "nothing is isolated" in p["warnings"][0]


# --- sibling off-lining ----------------------------------------------------------------------

def test_offline_siblings_keeps_one_thread_per_isolated_core():
    p = topo.plan(shape("qemu-2s-smt-2numa"), offline_siblings=True)
    assert p["offline_list"] == "3,7"
    assert p["isolated_online_list"] == "2,6"
    # the command line still names every isolated CPU, so it does not change once they are off
    assert p["isolated_list"] == "2-3,6-7"


def test_the_plan_is_the_same_after_the_siblings_went_offline():
    before = topo.plan(shape("qemu-2s-smt-2numa"), offline_siblings=True)
    after = topo.plan(shape("qemu-2s-smt-offline"), offline_siblings=True)
    for key in ("housekeeping_list", "isolated_list", "offline_list", "isolated_online_list"):
        assert before[key] == after[key], key


# --- user plans, validated -------------------------------------------------------------------

@pytest.mark.parametrize("kwargs,message", [
    ({"isolated": "2,6-7"}, "lowlatency_isolated_cpus splits the physical core of CPUs 2-3"),
    ({"isolated": "2-3,9"},
     "lowlatency_isolated_cpus names CPU 9, which this machine does not have (CPUs 0-7)"),
    ({"isolated": "0-3"}, "lowlatency_isolated_cpus names CPU 0"),
    ({"isolated": "0-7"}, "lowlatency_isolated_cpus leaves no CPU for housekeeping"),
    ({"housekeeping": "0-3", "isolated": "2-7"},
     "lowlatency_housekeeping_cpus and lowlatency_isolated_cpus both name CPU 2-3"),
    ({"housekeeping": "0-1", "isolated": "2-5"},
     "CPU 6-7 is in neither lowlatency_housekeeping_cpus nor lowlatency_isolated_cpus"),
    ({"housekeeping": "0-1,x"}, "lowlatency_housekeeping_cpus is not a CPU list"),
    ({"trading_nic": "eth9"},
     "lowlatency_trading_nic 'eth9' is not a NIC of this machine (it has enp0s3, enp129s0)"),
])
def test_a_bad_user_plan_is_refused_naming_the_variable(kwargs, message):
    with pytest.raises(topo.PlanError) as err:
        topo.plan(shape("qemu-2s-smt-2numa"), prefix="lowlatency_", **kwargs)
    assert message in str(err.value)


def test_an_offline_cpu_cannot_be_planned():
    with pytest.raises(topo.PlanError, match="names CPU 7, which is offline"):
        topo.plan(shape("qemu-2s-smt-offline"), isolated="6-7")


def test_a_split_core_is_accepted_when_the_other_thread_goes_offline():
    p = topo.plan(shape("qemu-2s-smt-2numa"), isolated="2,6", offline_siblings=True)
    assert p["offline_list"] == "3,7"
    assert p["housekeeping_list"] == "0-1,4-5"


def test_a_valid_user_plan_is_taken_as_given():
    p = topo.plan(shape("qemu-2s-smt-2numa"), housekeeping="0-1")
    assert (p["housekeeping_list"], p["isolated_list"]) == ("0-1", "2-7")


# --- the module ------------------------------------------------------------------------------

def _module(args):
    return adhoc.module("qb_cpu_topology", args, "--check")


def test_the_module_reports_the_plan_and_names_the_variable_on_error():
    ok = _module({"root": str(SHAPES / "qemu-2s-smt-2numa"), "trading_nic": "enp129s0"})
    assert "SUCCESS" in ok.stdout and '"trading_list": "6-7"' in ok.stdout, ok.stdout + ok.stderr
    assert '"changed": false' in ok.stdout
    bad = _module({"root": str(SHAPES / "qemu-2s-smt-2numa"), "isolated_cpus": "2,6-7",
                   "variable_prefix": "lowlatency_"})
    assert "FAILED" in bad.stdout
    assert "lowlatency_isolated_cpus splits the physical core of CPUs 2-3" in bad.stdout
