"""The QEMU test hosts' command line and shape checks (quantbot_infra.vm): firmware and the
disk's own GRUB, never -kernel/-append; CPUs and memory split into NUMA nodes; the trading NIC
behind its own PCIe root in the shape's node."""

from pathlib import Path

import pytest

from quantbot_infra import vm


def argv(**shape):
    machine = vm.Vm("qb-t", Path("/var/tmp/qb-t"), 24099, vm.Shape(**shape))
    return vm.qemu_argv(machine)


def values(args, flag):
    return [args[i + 1] for i, a in enumerate(args) if a == flag]


def test_the_default_shape_boots_through_firmware_in_two_numa_nodes():
    args = argv()
    assert "-kernel" not in args and "-append" not in args
    assert values(args, "-accel") == ["tcg,thread=multi"]
    assert values(args, "-smp") == ["8,sockets=2,cores=2,threads=2"]
    assert values(args, "-numa") == ["node,nodeid=0,cpus=0-3,memdev=mem0",
                                     "node,nodeid=1,cpus=4-7,memdev=mem1"]
    assert "memory-backend-ram,id=mem1,size=1024M" in values(args, "-object")
    pflash = [d for d in values(args, "-drive") if d.startswith("if=pflash")]
    assert pflash[0].endswith(vm.FIRMWARE_CODE) and "readonly=on" in pflash[0]
    assert "user,id=mgmt,hostfwd=tcp:127.0.0.1:24099-:22" in values(args, "-netdev")
    devices = values(args, "-device")
    assert "pxb-pcie,id=pxb1,bus_nr=128,numa_node=1,bus=pcie.0" in devices
    # no option ROM: the firmware boots the disk without starting iPXE on each NIC
    assert f"virtio-net-pci,netdev=trading,mac={vm.TRADING_MAC},bus=rp1,romfile=" in devices
    assert f"virtio-net-pci,netdev=mgmt,mac={vm.MGMT_MAC},bus=pcie.0,romfile=" in devices
    # the trading port reaches nothing
    assert "user,id=trading,restrict=on" in values(args, "-netdev")


def test_a_trading_nic_with_a_ptp_clock_on_node_0():
    devices = values(argv(trading_nic_model="e1000e", trading_nic_node=0), "-device")
    assert f"e1000e,netdev=trading,mac={vm.TRADING_MAC},bus=rp1,romfile=" in devices
    assert "pxb-pcie,id=pxb1,bus_nr=128,numa_node=0,bus=pcie.0" in devices


@pytest.mark.parametrize(("shape", "message"), [
    ({"sockets": 0}, "sockets must be at least 1"),
    ({"sockets": 1, "cores": 3, "threads": 1, "numa_nodes": 2},
     "3 CPUs do not split evenly into 2 NUMA nodes"),
    ({"sockets": 1, "cores": 1, "threads": 2, "numa_nodes": 2}, "would split a core's 2 threads"),
    ({"memory_mb": 300}, "300 MiB do not give 2 NUMA nodes 256 MiB each"),
    ({"trading_nic_node": 2}, "NUMA nodes"),
    ({"trading_nic_model": "rtl8139"}, "trading NIC model 'rtl8139': one of virtio-net-pci, e1000e"),
])
def test_shapes_that_cannot_be_made_are_refused(shape, message):
    with pytest.raises(vm.VmError) as caught:
        vm.Shape(**shape).check()
    assert message in str(caught.value)
