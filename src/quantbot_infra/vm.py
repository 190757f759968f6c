"""QEMU VM test hosts, for what a container cannot hold: the kernel's command line, isolated CPUs,
IRQ placement, a real reboot.

Each VM is a copy-on-write overlay of the image `images/vm/build.sh` makes, booted by OVMF
through the GRUB on its own disk (never QEMU's -kernel/-append: the command line a role writes
into GRUB's configuration is the one the VM boots with after the role's reboot). Software
emulation (TCG): nested KVM crashes the guest on these machines. The default shape has 2 sockets
of 2 cores with 2 threads each, in 2 NUMA nodes, and a second NIC (the "trading" port) behind a
PCIe expander bridge on NUMA node 1, so a CPU plan is not trivial. SSH reaches it on a loopback
port; the host name and the automation key go in over fw_cfg at first boot, so neither is in the
image. The trading NIC is on a QEMU user network with `restrict=on`: it reaches nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from . import paths

FIRMWARE_CODE = "/usr/share/OVMF/OVMF_CODE_4M.fd"
FIRMWARE_VARS = "/usr/share/OVMF/OVMF_VARS_4M.fd"
MGMT_MAC = "52:54:00:51:42:01"
TRADING_MAC = "52:54:00:51:42:02"
USER = "ansible"
NIC_MODELS = ("virtio-net-pci", "e1000e")


class VmError(RuntimeError):
    """A VM that cannot be made, started or reached; the message says why in one line."""


@dataclass(frozen=True)
class Shape:
    sockets: int = 2
    cores: int = 2
    threads: int = 2
    numa_nodes: int = 2
    memory_mb: int = 2048
    trading_nic_node: int = 1
    # virtio-net-pci (no PTP clock, no hardware timestamps) or e1000e (Intel 82574: the guest's
    # driver registers a PTP hardware clock, which QEMU 7.2 does not advance)
    trading_nic_model: str = "virtio-net-pci"

    @property
    def cpus(self) -> int:
        return self.sockets * self.cores * self.threads

    def check(self) -> None:
        for field in ("sockets", "cores", "threads", "numa_nodes"):
            if getattr(self, field) < 1:
                raise VmError(f"{field} must be at least 1")
        if self.cpus % self.numa_nodes:
            raise VmError(f"{self.cpus} CPUs do not split evenly into {self.numa_nodes} NUMA nodes")
        if (self.cpus // self.numa_nodes) % self.threads:
            raise VmError(f"a NUMA node of {self.cpus // self.numa_nodes} CPUs would split a core's "
                          f"{self.threads} threads")
        if self.memory_mb % self.numa_nodes or self.memory_mb // self.numa_nodes < 256:
            raise VmError(f"{self.memory_mb} MiB do not give {self.numa_nodes} NUMA nodes 256 MiB each")
        if self.trading_nic_model not in NIC_MODELS:
            raise VmError(f"trading NIC model {self.trading_nic_model!r}: one of {', '.join(NIC_MODELS)}")
        if not 0 <= self.trading_nic_node < self.numa_nodes:
            raise VmError(f"trading_nic_node {self.trading_nic_node} is not one of the "
                          f"{self.numa_nodes} NUMA nodes")


@dataclass(frozen=True)
class Vm:
    name: str
    directory: Path
    ssh_port: int
    shape: Shape

    @property
    def disk(self) -> Path:
        return self.directory / "disk.qcow2"

    @property
    def key(self) -> Path:
        return self.directory / "id_ed25519"

    @property
    def known_hosts(self) -> Path:
        return self.directory / "known_hosts"

    @property
    def console(self) -> Path:
        return self.directory / "console.log"

    @property
    def pidfile(self) -> Path:
        return self.directory / "qemu.pid"


def vm_root() -> Path:
    return Path(os.environ.get("QB_VM_DIR") or paths.state_dir() / "vm")


def instance(name: str) -> Vm:
    """A VM made earlier, from its recorded settings."""
    directory = vm_root() / "instances" / name
    try:
        meta = json.loads((directory / "vm.json").read_text())
    except (OSError, ValueError):
        raise VmError(f"no VM named {name} (looked in {directory})") from None
    return Vm(name, directory, meta["ssh_port"], Shape(**meta["shape"]))


def qemu_argv(vm: Vm, base_firmware: str = FIRMWARE_CODE) -> list[str]:
    """The QEMU command line of a VM (pure: unit-tested)."""
    s = vm.shape
    per_node_cpus = s.cpus // s.numa_nodes
    per_node_mb = s.memory_mb // s.numa_nodes
    argv = [
        "qemu-system-x86_64", "-name", vm.name, "-machine", "q35",
        # TCG on every vCPU thread; an Intel CPU model, so the guest reads its thread siblings
        # from CPUID leaf 0xB (QEMU's AMD models need topoext, which TCG lacks)
        "-accel", "tcg,thread=multi", "-cpu", "max,vendor=GenuineIntel",
        "-smp", f"{s.cpus},sockets={s.sockets},cores={s.cores},threads={s.threads}",
        "-m", str(s.memory_mb),
    ]
    for node in range(s.numa_nodes):
        first = node * per_node_cpus
        argv += ["-object", f"memory-backend-ram,id=mem{node},size={per_node_mb}M",
                 "-numa", f"node,nodeid={node},cpus={first}-{first + per_node_cpus - 1},memdev=mem{node}"]
    argv += [
        "-drive", f"if=pflash,format=raw,readonly=on,file={base_firmware}",
        "-drive", f"if=pflash,format=raw,file={vm.directory / 'vars.fd'}",
        "-drive", f"file={vm.disk},if=none,id=disk0,format=qcow2,discard=unmap",
        "-device", "virtio-blk-pci,drive=disk0,bus=pcie.0",
        "-netdev", f"user,id=mgmt,hostfwd=tcp:127.0.0.1:{vm.ssh_port}-:22",
        # no option ROM on the NICs: the VM boots from its disk, and the firmware would otherwise
        # load and start iPXE on each (emulated seconds at every boot)
        "-device", f"virtio-net-pci,netdev=mgmt,mac={MGMT_MAC},bus=pcie.0,romfile=",
        # the trading NIC on its own PCIe root, in the NUMA node the shape names
        "-device", f"pxb-pcie,id=pxb1,bus_nr=128,numa_node={s.trading_nic_node},bus=pcie.0",
        "-device", "pcie-root-port,id=rp1,bus=pxb1,chassis=1",
        "-netdev", "user,id=trading,restrict=on",
        "-device", f"{s.trading_nic_model},netdev=trading,mac={TRADING_MAC},bus=rp1,romfile=",
        "-fw_cfg", f"name=opt/qb/hostname,file={vm.directory / 'hostname'}",
        "-fw_cfg", f"name=opt/qb/authorized_keys,file={vm.key}.pub",
        "-display", "none", "-serial", f"file:{vm.console}",
        "-daemonize", "-pidfile", str(vm.pidfile),
    ]
    return argv


def ssh_argv(vm: Vm, *command: str, timeout: int = 10) -> list[str]:
    return ["ssh", "-q", "-o", "BatchMode=yes", "-o", f"ConnectTimeout={timeout}",
            "-o", "StrictHostKeyChecking=accept-new", "-o", f"UserKnownHostsFile={vm.known_hosts}",
            "-o", "IdentitiesOnly=yes", "-i", str(vm.key), "-p", str(vm.ssh_port),
            f"{USER}@127.0.0.1", *command]


def pid(vm: Vm) -> int | None:
    try:
        value = int(vm.pidfile.read_text().strip())
        os.kill(value, 0)
    except (OSError, ValueError):
        return None
    return value


def _console_tail(vm: Vm, lines: int = 5) -> str:
    try:
        text = vm.console.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no console output)"
    return " | ".join(line.strip() for line in text[-lines:]) or "(no console output)"


def wait_ssh(vm: Vm, timeout: float = 600) -> float:
    """Seconds until the VM answers SSH; a VM whose QEMU exits fails at once."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if pid(vm) is None:
            raise VmError(f"{vm.name}: QEMU exited; console: {_console_tail(vm)}")
        if subprocess.run(ssh_argv(vm, "true", timeout=5), capture_output=True,
                          check=False).returncode == 0:
            return time.monotonic() - start
        time.sleep(2)
    raise VmError(f"{vm.name} did not answer SSH on 127.0.0.1:{vm.ssh_port} within {timeout:.0f} s; "
                  f"console: {_console_tail(vm)}")


def create(name: str, ssh_port: int, image: Path, shape: Shape = Shape(),
           wait: bool = True) -> Vm:
    """Make and start a VM (an overlay of `image`); a VM of that name that runs is kept."""
    shape.check()
    if not image.is_file():
        raise VmError(f"no VM image at {image}: images/vm/build.sh makes it")
    for tool in ("qemu-system-x86_64", "qemu-img", "ssh-keygen"):
        if shutil.which(tool) is None:
            raise VmError(f"{tool} is missing (make setup installs it)")
    for path in (FIRMWARE_CODE, FIRMWARE_VARS):
        if not Path(path).is_file():
            raise VmError(f"{path} is missing (Debian package ovmf; make setup installs it)")
    directory = vm_root() / "instances" / name
    vm = Vm(name, directory, ssh_port, shape)
    if pid(vm) is not None:
        if wait:
            wait_ssh(vm)
        return vm
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True, mode=0o700)
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(image.resolve()),
                    "-F", "qcow2", str(vm.disk)], check=True)
    shutil.copyfile(FIRMWARE_VARS, directory / "vars.fd")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"molecule@{name}",
                    "-f", str(vm.key)], check=True)
    (directory / "hostname").write_text(name)
    (directory / "vm.json").write_text(json.dumps(
        {"name": name, "ssh_port": ssh_port, "image": str(image.resolve()), "shape": asdict(shape)},
        indent=2) + "\n")
    started = subprocess.run(qemu_argv(vm), capture_output=True, text=True, check=False)
    if started.returncode != 0:
        raise VmError(f"{name}: QEMU did not start: {started.stderr.strip().splitlines()[-1:]}")
    if wait:
        wait_ssh(vm)
    return vm


def destroy(name: str) -> bool:
    """Stop a VM and remove its disk and keys; False when there was none."""
    directory = vm_root() / "instances" / name
    if not directory.exists():
        return False
    vm = Vm(name, directory, 0, Shape())
    running = pid(vm)
    if running is not None:
        os.kill(running, signal.SIGTERM)
        for _ in range(50):
            if pid(vm) is None:
                break
            time.sleep(0.1)
        else:
            os.kill(running, signal.SIGKILL)
    shutil.rmtree(directory)
    return True


def connection(vm: Vm) -> dict:
    """What an inventory (molecule's instance config) needs to reach the VM."""
    return {
        "instance": vm.name, "address": "127.0.0.1", "port": vm.ssh_port, "user": USER,
        "identity_file": str(vm.key), "known_hosts": str(vm.known_hosts),
        "console": str(vm.console),
    }
