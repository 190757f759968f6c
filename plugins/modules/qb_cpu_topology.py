#!/usr/bin/python
# quantbot-infra: the machine's CPU topology and the low-latency CPU plan derived from it.

from __future__ import annotations

DOCUMENTATION = r"""
module: qb_cpu_topology
short_description: Read a machine's CPU topology from sysfs and derive its low-latency CPU plan
description:
  - Reads sockets, NUMA nodes, physical cores and their thread siblings, online and offline CPUs,
    each NIC's NUMA node, the kernel's current C(isolated) and C(nohz_full) lists and
    C(/proc/cmdline), and returns a CPU plan, housekeeping versus isolated CPUs.
  - "Default plan: the first physical core (both siblings) of each NUMA node keeps housekeeping
    (the kernel's timers, RCU callbacks, interrupts, every service); every other CPU is isolated.
    CPU 0 is never isolated. Trading CPUs are the isolated CPUs on the trading NIC's NUMA node
    when it has any."
  - A given O(housekeeping_cpus) and/or O(isolated_cpus) is validated instead (overlap, a CPU
    the machine does not have or that is offline, thread siblings split between the two, nothing
    left for housekeeping), failing with a message that names the variable.
  - Read-only; runs the same in check mode. Sets the facts C(qb_cpu_topology) and C(qb_cpu_plan).
options:
  housekeeping_cpus:
    description: CPUs that keep housekeeping (kernel notation V(0-1,8-9) or a list); the rest is isolated.
    type: raw
  isolated_cpus:
    description: CPUs to isolate; the rest keeps housekeeping. With O(housekeeping_cpus), every online CPU must be in exactly one.
    type: raw
  housekeeping_cores_per_node:
    description: For the default plan, how many physical cores of each NUMA node keep housekeeping.
    type: int
    default: 1
  trading_nic:
    description: The exchange-facing NIC; trading CPUs are preferably on its NUMA node.
    type: str
  offline_siblings:
    description: Each isolated core keeps one thread; its other threads are listed in RV(plan.offline) to be taken offline.
    type: bool
    default: false
  variable_prefix:
    description: Put before option names in error messages, so they name the caller's variables (the role passes V(lowlatency_)).
    type: str
    default: ""
  root:
    description: Where sysfs and procfs are found (V(/) on a machine; a captured tree in tests).
    type: path
    default: /
"""

EXAMPLES = r"""
- name: Plan the CPUs of a trading host
  qb_cpu_topology:
    trading_nic: enp129s0

- name: Refuse a hand-written plan that splits a core's thread siblings
  qb_cpu_topology:
    isolated_cpus: 2,6-7
    variable_prefix: lowlatency_
"""

RETURN = r"""
topology:
  description: The machine's shape (also the fact C(qb_cpu_topology)).
  returned: always
  type: dict
  contains:
    packages: {description: Sockets, type: int}
    numa_nodes: {description: NUMA nodes with online CPUs, type: int}
    physical_cores: {description: Physical cores with online CPUs, type: int}
    threads_per_core: {description: Most online threads of one core, type: int}
    online: {description: Online CPUs, type: str}
    offline: {description: Present but offline CPUs, type: str}
    nodes: {description: "NUMA node -> its online CPUs", type: dict}
    cores: {description: Each physical core's online CPUs, type: list}
    nics: {description: "NIC -> its NUMA node (null where the platform does not say)", type: dict}
    isolated: {description: What the kernel isolates now (/sys/devices/system/cpu/isolated), type: str}
    nohz_full: {description: The kernel's adaptive-tick CPUs now, type: str}
    cmdline: {description: The running kernel's command line, type: str}
    kernel: {description: The running kernel's release (C(uname -r)), type: str}
    realtime: {description: Whether the running kernel is PREEMPT_RT, type: bool}
plan:
  description: The CPU plan (also the fact C(qb_cpu_plan)); every C(*_list) is in kernel notation.
  returned: always
  type: dict
  contains:
    housekeeping_list: {description: "CPUs for the kernel, interrupts and services (irqaffinity, CPUAffinity)", type: str}
    housekeeping_mask: {description: "The housekeeping CPUs as a hex cpumask (the workqueue cpumask's notation)", type: str}
    isolated_list: {description: "CPUs for isolcpus, nohz_full and rcu_nocbs (siblings to take offline included)", type: str}
    isolated_online_list: {description: Isolated CPUs that stay online, type: str}
    offline_list: {description: Thread siblings to take offline (O(offline_siblings)), type: str}
    trading_list: {description: "Isolated CPUs for the trading processes: those on the trading NIC's node first", type: str}
    trading_nic_node: {description: The trading NIC's NUMA node, type: int}
    nodes: {description: "NUMA node -> its housekeeping and isolated CPUs", type: dict}
    warnings: {description: What the plan could not do as asked, type: list}
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.qb_cpu_topology import PlanError, plan, read_topology, summary


def main():
    module = AnsibleModule(
        argument_spec=dict(
            housekeeping_cpus=dict(type="raw"),
            isolated_cpus=dict(type="raw"),
            housekeeping_cores_per_node=dict(type="int", default=1),
            trading_nic=dict(type="str"),
            offline_siblings=dict(type="bool", default=False),
            variable_prefix=dict(type="str", default=""),
            root=dict(type="path", default="/"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    try:
        topology = read_topology(p["root"])
        result = plan(
            topology,
            housekeeping=p["housekeeping_cpus"] if p["housekeeping_cpus"] not in (None, "") else None,
            isolated=p["isolated_cpus"] if p["isolated_cpus"] not in (None, "") else None,
            trading_nic=p["trading_nic"] or None,
            offline_siblings=p["offline_siblings"],
            housekeeping_cores_per_node=p["housekeeping_cores_per_node"],
            prefix=p["variable_prefix"],
        )
    except PlanError as exc:
        module.fail_json(msg=str(exc))
    shape = summary(topology)
    for warning in result["warnings"]:
        module.warn(warning)
    module.exit_json(changed=False, topology=shape, plan=result,
                     ansible_facts={"qb_cpu_topology": shape, "qb_cpu_plan": result})


if __name__ == "__main__":
    main()
