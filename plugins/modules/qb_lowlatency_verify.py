#!/usr/bin/python
# quantbot-infra: prove that a low-latency CPU plan is in effect on the running kernel.

from __future__ import annotations

DOCUMENTATION = r"""
module: qb_lowlatency_verify
short_description: Check that a low-latency CPU plan is in effect on the running kernel
description:
  - Reads what the running kernel has in effect and compares it with the plan, in one pass
    - every wanted kernel command-line token in C(/proc/cmdline);
    - C(/sys/devices/system/cpu/isolated) and C(nohz_full) equal to the isolated CPUs;
    - every interrupt with a handler delivered (effective affinity) to housekeeping CPUs only,
      and C(/proc/irq/default_smp_affinity) inside housekeeping;
    - the unbound workqueues' cpumask equal to housekeeping;
    - transparent hugepages, the CPU frequency governor and the given sysctls;
    - the pinned kernel release running, and PREEMPT_RT where it is wanted;
    - no task that may float onto an isolated CPU (per-CPU kernel threads and tasks pinned
      wholly inside the isolated set are expected there).
  - Fails, listing every problem, when anything is not in effect; read-only, the same in check
    mode. Checks a machine cannot answer (no cpufreq driver in a VM) are reported as not
    applicable, never as passed.
options:
  housekeeping:
    description: Housekeeping CPUs (kernel notation).
    type: str
    required: true
  isolated:
    description: Isolated CPUs (kernel notation; empty when nothing is isolated).
    type: str
    default: ""
  offline:
    description: CPUs the plan takes offline.
    type: str
    default: ""
  cmdline:
    description: Tokens the kernel command line must hold.
    type: list
    elements: str
    default: []
  nohz_full:
    description: Whether the isolated CPUs must also be adaptive-tick (nohz_full) CPUs.
    type: bool
    default: true
  thp:
    description: Wanted transparent hugepage mode; empty skips the check.
    type: str
    default: ""
  governor:
    description: Wanted CPU frequency governor; empty skips the check.
    type: str
    default: ""
  sysctls:
    description: Sysctl name -> wanted value.
    type: dict
    default: {}
  irqs:
    description: Check interrupt affinities.
    type: bool
    default: true
  workqueue:
    description: Check the unbound workqueues' cpumask.
    type: bool
    default: true
  tasks:
    description: Check that no task may float onto an isolated CPU.
    type: bool
    default: true
  kernel:
    description: The kernel release that must be running (the one the role pinned); empty skips.
    type: str
    default: ""
  realtime:
    description: The running kernel must be PREEMPT_RT (C(/sys/kernel/realtime) is 1).
    type: bool
    default: false
  root:
    description: Where procfs and sysfs are found (V(/) on a machine; a written tree in tests).
    type: path
    default: /
author: quantbot-infra
"""

EXAMPLES = r"""
- name: Prove the plan after the reboot
  qb_lowlatency_verify:
    housekeeping: "{{ qb_cpu_plan.housekeeping_list }}"
    isolated: "{{ qb_cpu_plan.isolated_list }}"
    cmdline: "{{ _lowlatency_cmdline }}"
    thp: never
    sysctls: {kernel.timer_migration: "0"}
"""

RETURN = r"""
problems:
  description: What is not in effect, one line each (empty when the plan holds).
  returned: always
  type: list
  elements: str
checked:
  description: Each check -> C(ok), C(failed) or why it does not apply to this machine.
  returned: always
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.qb_lowlatency_state import problems, read_state


def main():
    module = AnsibleModule(
        argument_spec=dict(
            housekeeping=dict(type="str", required=True),
            isolated=dict(type="str", default=""),
            offline=dict(type="str", default=""),
            cmdline=dict(type="list", elements="str", default=[]),
            nohz_full=dict(type="bool", default=True),
            thp=dict(type="str", default=""),
            governor=dict(type="str", default=""),
            sysctls=dict(type="dict", default={}),
            irqs=dict(type="bool", default=True),
            workqueue=dict(type="bool", default=True),
            tasks=dict(type="bool", default=True),
            kernel=dict(type="str", default=""),
            realtime=dict(type="bool", default=False),
            root=dict(type="path", default="/"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    sysctls = {k: str(v) for k, v in p["sysctls"].items()}
    state = read_state(p["root"], sysctls=list(sysctls), tasks=p["tasks"])
    found, checked = problems(
        state, p["housekeeping"], p["isolated"], cmdline=p["cmdline"], nohz_full=p["nohz_full"],
        thp=p["thp"] or None, governor=p["governor"] or None, sysctls=sysctls,
        workqueue=p["workqueue"], irqs=p["irqs"], tasks=p["tasks"], offline=p["offline"],
        kernel=p["kernel"] or None, realtime=p["realtime"])
    if found:
        module.fail_json(msg="the low-latency plan is not in effect: " + " | ".join(found),
                         problems=found, checked=checked)
    module.exit_json(changed=False, problems=[], checked=checked)


if __name__ == "__main__":
    main()
