# Pure functions behind the qb_cpu_topology module: read a machine's CPU topology from sysfs
# (sockets, NUMA nodes, physical cores and their thread siblings, online CPUs, each NIC's NUMA
# node, what the kernel isolates now, its command line) and derive the low-latency CPU plan:
# which CPUs keep the kernel's housekeeping and which are isolated for trading. No side effects:
# unit-tested on sysfs trees captured from real kernels.

from __future__ import annotations

import os


class PlanError(ValueError):
    """A plan that cannot be applied; the message names the variable at fault."""


def parse_cpulist(text):
    """'0-3,8,10-11' -> [0, 1, 2, 3, 8, 10, 11]; '' -> []. Lists of ints pass through."""
    if isinstance(text, (list, tuple, set, frozenset)):
        return sorted({int(c) for c in text})
    text = str(text).strip()
    cpus = set()
    for part in filter(None, (p.strip() for p in text.split(","))):
        if "-" in part:
            low, high = part.split("-", 1)
            low, high = int(low), int(high)
            if high < low:
                raise ValueError(f"'{part}' is not a CPU range")
            cpus.update(range(low, high + 1))
        else:
            cpus.add(int(part))
    return sorted(cpus)


def format_cpulist(cpus):
    """[0, 1, 2, 3, 8] -> '0-3,8': the kernel's own notation."""
    cpus = sorted(set(cpus))
    parts = []
    i = 0
    while i < len(cpus):
        j = i
        while j + 1 < len(cpus) and cpus[j + 1] == cpus[j] + 1:
            j += 1
        parts.append(str(cpus[i]) if i == j else f"{cpus[i]}-{cpus[j]}")
        i = j + 1
    return ",".join(parts)


def parse_mask(text):
    """A kernel hex cpumask ('00000000,000000f3' or 'f3') -> sorted CPU numbers."""
    value = int(str(text).replace(",", "").strip() or "0", 16)
    return [bit for bit in range(value.bit_length()) if value >> bit & 1]


def format_mask(cpus):
    """CPU numbers -> the hex mask sysfs files take ('f3')."""
    value = 0
    for cpu in cpus:
        value |= 1 << int(cpu)
    return f"{value:x}"


def _read(path, default=None):
    try:
        with open(path, encoding="ascii", errors="replace") as fh:
            return fh.read().strip()
    except OSError:
        return default


def _nic_numa_node(root, nic):
    """The NUMA node of the PCI device a NIC sits on; virtio NICs sit one level below it.
    None when the platform does not say (-1) or the NIC has no device (lo, bridges)."""
    device = os.path.join(root, "sys/class/net", nic, "device")
    for candidate in (device, os.path.join(device, "..")):
        value = _read(os.path.join(candidate, "numa_node"))
        if value is not None:
            node = int(value)
            return node if node >= 0 else None
    return None


def read_kernel(root="/"):
    """The running kernel's release and whether it is PREEMPT_RT (/sys/kernel/realtime is 1)."""
    return {
        "kernel": (_read(os.path.join(root, "proc/sys/kernel/osrelease"), "") or "").strip(),
        "realtime": (_read(os.path.join(root, "sys/kernel/realtime"), "0") or "0").strip() == "1",
    }


def read_topology(root="/"):
    """What the planner needs, read from sysfs and procfs under `root`."""
    cpu_dir = os.path.join(root, "sys/devices/system/cpu")
    online = parse_cpulist(_read(os.path.join(cpu_dir, "online"), ""))
    if not online:
        raise PlanError(f"{cpu_dir}/online lists no CPU: not a Linux sysfs")
    present = parse_cpulist(_read(os.path.join(cpu_dir, "present"), "")) or online
    cpus = {}
    for cpu in online:
        topo = os.path.join(cpu_dir, f"cpu{cpu}", "topology")
        siblings = _read(os.path.join(topo, "thread_siblings_list")) or _read(
            os.path.join(topo, "core_cpus_list")) or str(cpu)
        cpus[cpu] = {
            "package": int(_read(os.path.join(topo, "physical_package_id"), "0")),
            "core": int(_read(os.path.join(topo, "core_id"), str(cpu))),
            "siblings": [s for s in parse_cpulist(siblings) if s in online] or [cpu],
            "node": 0,
        }
    node_dir = os.path.join(root, "sys/devices/system/node")
    nodes = {}
    if os.path.isdir(node_dir):
        for entry in sorted(os.listdir(node_dir)):
            if entry.startswith("node") and entry[4:].isdigit():
                members = [c for c in parse_cpulist(_read(os.path.join(node_dir, entry, "cpulist"), ""))
                           if c in cpus]
                if members:
                    nodes[int(entry[4:])] = members
    if not nodes:
        nodes = {0: list(online)}
    for node, members in nodes.items():
        for cpu in members:
            cpus[cpu]["node"] = node
    nics = {}
    net_dir = os.path.join(root, "sys/class/net")
    if os.path.isdir(net_dir):
        for nic in sorted(os.listdir(net_dir)):
            # a NIC without a device (veth, bond, VLAN) has no NUMA node of its own
            if nic != "lo":
                nics[nic] = _nic_numa_node(root, nic)
    cmdline = _read(os.path.join(root, "proc/cmdline"), "")
    return {
        "cpus": cpus,
        "online": online,
        "offline": [c for c in present if c not in cpus],
        "nodes": nodes,
        "packages": sorted({c["package"] for c in cpus.values()}),
        "nics": nics,
        "isolated": parse_cpulist(_read(os.path.join(cpu_dir, "isolated"), "")),
        # the kernel prints "(null)" here when nohz_full was not given at boot
        "nohz_full": parse_cpulist(_read(os.path.join(cpu_dir, "nohz_full"), "").replace("(null)", "")),
        "cmdline": cmdline,
        **read_kernel(root),
    }


def physical_cores(topology):
    """Each physical core as the sorted tuple of its online thread siblings, lowest CPU first."""
    return sorted({tuple(info["siblings"]) for info in topology["cpus"].values()})


def _names(cpus):
    return format_cpulist(cpus) if cpus else "none"


def _given(value, name, topology):
    """A user-given CPU list, checked against the machine."""
    try:
        cpus = parse_cpulist(value)
    except ValueError as exc:
        raise PlanError(f"{name} is not a CPU list ('0-3,8'): {exc}") from None
    missing = [c for c in cpus if c not in topology["cpus"] and c not in topology["offline"]]
    if missing:
        raise PlanError(f"{name} names CPU {_names(missing)}, which this machine does not have "
                        f"(CPUs {_names(topology['online'])})")
    offline = [c for c in cpus if c in topology["offline"]]
    if offline:
        raise PlanError(f"{name} names CPU {_names(offline)}, which is offline")
    return cpus


def plan(topology, housekeeping=None, isolated=None, trading_nic=None, offline_siblings=False,
         housekeeping_cores_per_node=1, prefix=""):
    """The CPU plan. Default: the first `housekeeping_cores_per_node` physical cores (both
    siblings) of each NUMA node keep housekeeping, every other CPU is isolated. A given
    `housekeeping` and/or `isolated` list is validated instead. With `offline_siblings`, each
    isolated core keeps its first thread and its other threads go offline. `prefix` is put before
    the option names in messages (the role's variables are lowlatency_<option>)."""
    hk_name, iso_name = f"{prefix}housekeeping_cpus", f"{prefix}isolated_cpus"
    cpus = topology["cpus"]
    cores = physical_cores(topology)
    core_of = {cpu: core for core in cores for cpu in core}
    warnings = []

    if housekeeping is None and isolated is None:
        if housekeeping_cores_per_node < 1:
            raise PlanError(f"{prefix}housekeeping_cores_per_node must be at least 1")
        hk = set()
        for node in sorted(topology["nodes"]):
            node_cores = [core for core in cores if cpus[core[0]]["node"] == node]
            for core in node_cores[:housekeeping_cores_per_node]:
                hk.update(core)
        # CPU 0 takes the interrupts and timers nothing can move: it always keeps housekeeping
        hk.update(core_of[min(cpus)])
        iso = set(cpus) - hk
    else:
        hk = set(_given(housekeeping, hk_name, topology)) if housekeeping is not None else None
        iso = set(_given(isolated, iso_name, topology)) if isolated is not None else None
        if hk is not None and iso is not None:
            both = hk & iso
            if both:
                raise PlanError(f"{hk_name} and {iso_name} both name CPU {_names(both)}")
            neither = set(cpus) - hk - iso
            if neither:
                raise PlanError(f"CPU {_names(neither)} is in neither {hk_name} nor {iso_name}: "
                                f"every online CPU belongs to one of them")
        elif hk is not None:
            iso = set(cpus) - hk
        else:
            hk = set(cpus) - iso
        if not hk:
            raise PlanError(f"{iso_name} leaves no CPU for housekeeping: the kernel, interrupts "
                            f"and services need at least one core")
        if min(cpus) in iso:
            raise PlanError(f"{iso_name} names CPU {min(cpus)}: it takes the interrupts and timers "
                            f"nothing can move, and is never isolated")
        for core in cores:
            inside = set(core) & iso
            if inside and inside != set(core) and not offline_siblings:
                raise PlanError(
                    f"{iso_name} splits the physical core of CPUs {_names(core)} (thread siblings): "
                    f"isolate both threads, or set {prefix}offline_siblings to take the other "
                    f"thread offline")
    if not iso:
        warnings.append("this machine has no CPU left to isolate beyond housekeeping "
                        f"({_names(hk)}): nothing is isolated")

    offline = set()
    if offline_siblings:
        for core in cores:
            inside = [c for c in core if c in iso]
            offline.update(inside[1:])
            # an isolated core's other thread runs nothing if it is not isolated itself
            offline.update(c for c in core if inside and c not in iso)
        # siblings taken offline on an earlier run stay offline and in the isolated set
        offline.update(c for c in topology["offline"] if c not in hk)
        hk -= offline
        if not hk:
            raise PlanError(f"{prefix}offline_siblings would take every housekeeping CPU offline")
    isolated_all = sorted(iso | offline)
    running = sorted(iso - offline)

    nic_node = None
    if trading_nic:
        if trading_nic not in topology["nics"]:
            raise PlanError(f"{prefix}trading_nic '{trading_nic}' is not a NIC of this machine "
                            f"(it has {', '.join(sorted(topology['nics'])) or 'none'})")
        nic_node = topology["nics"][trading_nic]
        if nic_node is None:
            warnings.append(f"{trading_nic} reports no NUMA node: trading CPUs are taken from "
                            f"every node")
    near = [c for c in running if nic_node is not None and cpus[c]["node"] == nic_node]
    if nic_node is not None and running and not near:
        warnings.append(f"no isolated CPU is on NUMA node {nic_node} of {trading_nic}: trading CPUs "
                        f"cross the interconnect to reach it")
    trading = near or running

    by_node = {}
    for node, members in sorted(topology["nodes"].items()):
        by_node[str(node)] = {
            "housekeeping": format_cpulist(c for c in members if c in hk),
            "isolated": format_cpulist(c for c in members if c in iso and c not in offline),
        }
    return {
        "housekeeping": sorted(hk),
        "housekeeping_list": format_cpulist(hk),
        "housekeeping_mask": format_mask(hk),
        "isolated": isolated_all,
        "isolated_list": format_cpulist(isolated_all),
        "isolated_online": running,
        "isolated_online_list": format_cpulist(running),
        "offline": sorted(offline),
        "offline_list": format_cpulist(offline),
        "trading": trading,
        "trading_list": format_cpulist(trading),
        "trading_nic_node": nic_node,
        "nodes": by_node,
        "warnings": warnings,
    }


def summary(topology):
    """The machine's shape, for the module's facts."""
    cores = physical_cores(topology)
    return {
        "packages": len(topology["packages"]),
        "numa_nodes": len(topology["nodes"]),
        "physical_cores": len(cores),
        "threads_per_core": max(len(core) for core in cores),
        "online": format_cpulist(topology["online"]),
        "offline": format_cpulist(topology["offline"]),
        "nodes": {str(n): format_cpulist(m) for n, m in sorted(topology["nodes"].items())},
        "cores": [format_cpulist(core) for core in cores],
        "nics": {nic: node for nic, node in topology["nics"].items()},
        "isolated": format_cpulist(topology["isolated"]),
        "nohz_full": format_cpulist(topology["nohz_full"]),
        "cmdline": topology["cmdline"],
        "kernel": topology.get("kernel", ""),
        "realtime": topology.get("realtime", False),
    }
