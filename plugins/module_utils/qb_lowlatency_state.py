# Pure functions behind qb_lowlatency_verify: read what a running kernel has in effect (command
# line, isolated and adaptive-tick CPUs, every interrupt's effective affinity, the default IRQ
# affinity, the unbound workqueues' cpumask, THP, CPU governors, sysctls, every task's allowed
# CPUs) under a root directory, and compare it with what the CPU plan asks for. Unit-tested on
# procfs/sysfs trees the tests write.

from __future__ import annotations

import glob
import os
import re

from ansible.module_utils.qb_cpu_topology import _names, _read, parse_cpulist, parse_mask, read_kernel

# task flags (include/linux/sched.h)
PF_KTHREAD = 0x00200000
PF_NO_SETAFFINITY = 0x04000000


def read_irqs(root):
    """IRQ number -> {cpus: where it is delivered, mask: its affinity mask, handlers}, for IRQs
    with a handler. The effective affinity is what the kernel uses (managed IRQs keep a wider
    mask and are delivered to its housekeeping part)."""
    irqs = {}
    for path in glob.glob(os.path.join(root, "proc/irq/[0-9]*")):
        handlers = sorted(e for e in os.listdir(path) if os.path.isdir(os.path.join(path, e)))
        if not handlers:
            continue
        mask = parse_cpulist(_read(os.path.join(path, "smp_affinity_list"), ""))
        effective = _read(os.path.join(path, "effective_affinity_list"))
        irqs[int(os.path.basename(path))] = {
            "cpus": parse_cpulist(effective) if effective is not None else mask,
            "mask": mask,
            "handlers": handlers,
        }
    return irqs


_QUEUE = re.compile(r"^(.*\D)[0-9]+$")  # a queue vector's name: a stem, then its number
_IRQ_THREAD = re.compile(r"^irq/([0-9]+)-")  # a threaded interrupt handler (PREEMPT_RT, threadirqs)


def per_cpu_queues(irqs, online):
    """IRQs of multi-queue devices whose vectors the kernel spread one per CPU over every
    online CPU (blk-mq and NIC queues, 'managed' interrupts): the kernel keeps each on its CPU
    whatever isolcpus says, and it fires only for I/O that CPU issues. Found by shape: the
    vectors sharing a handler-name stem, each on one CPU, together covering every online CPU."""
    stems = {}
    for irq, info in irqs.items():
        if len(info["mask"]) != 1 or len(info["handlers"]) != 1:
            continue
        m = _QUEUE.match(info["handlers"][0])
        if m:
            stems.setdefault(m.group(1), {})[irq] = info["mask"][0]
    out = set()
    for members in stems.values():
        if len(members) > 1 and sorted(members.values()) == sorted(online):
            out.update(members)
    return out


def read_tasks(root):
    """(pid, tid, name, flags, allowed CPUs) of every task."""
    tasks = []
    for status_path in glob.glob(os.path.join(root, "proc/[0-9]*/task/[0-9]*/status")):
        task_dir = os.path.dirname(status_path)
        status = _read(status_path)
        stat = _read(os.path.join(task_dir, "stat"))
        if status is None or stat is None:
            continue  # the task ended while it was read
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        # stat's second field is "(comm)" and may hold spaces: split after its last ')'
        after = stat[stat.rfind(")") + 2:].split()
        tasks.append({
            "pid": int(task_dir.split(os.sep)[-3]),
            "tid": int(os.path.basename(task_dir)),
            "name": fields.get("Name", "").strip(),
            "flags": int(after[6]) if len(after) > 6 else 0,
            "allowed": parse_cpulist(fields.get("Cpus_allowed_list", "").strip()),
        })
    return tasks


def read_state(root, sysctls=(), tasks=True):
    """What the verification compares, read under `root`."""
    cpu_dir = os.path.join(root, "sys/devices/system/cpu")
    governors = {}
    for path in glob.glob(os.path.join(cpu_dir, "cpu[0-9]*/cpufreq/scaling_governor")):
        governors[int(path.split(os.sep)[-3][3:])] = _read(path, "")
    thp = _read(os.path.join(root, "sys/kernel/mm/transparent_hugepage/enabled"))
    default_irq = _read(os.path.join(root, "proc/irq/default_smp_affinity"))
    workqueue = _read(os.path.join(root, "sys/devices/virtual/workqueue/cpumask"))
    return {
        "cmdline": (_read(os.path.join(root, "proc/cmdline"), "") or "").split(),
        **read_kernel(root),
        "isolated": parse_cpulist(_read(os.path.join(cpu_dir, "isolated"), "")),
        # "(null)" when nohz_full was not given at boot
        "nohz_full": parse_cpulist(_read(os.path.join(cpu_dir, "nohz_full"), "").replace("(null)", "")),
        "online": parse_cpulist(_read(os.path.join(cpu_dir, "online"), "")),
        "irqs": read_irqs(root),
        "default_irq_affinity": parse_mask(default_irq) if default_irq is not None else None,
        "workqueue": parse_mask(workqueue) if workqueue is not None else None,
        # "always madvise [never]" -> "never"
        "thp": thp[thp.index("[") + 1:thp.index("]")] if thp and "[" in thp else None,
        "governors": governors,
        "sysctls": {key: _read(os.path.join(root, "proc/sys", key.replace(".", "/"))) for key in sysctls},
        "tasks": read_tasks(root) if tasks else [],
    }


def _same_sysctl(wanted, actual):
    return " ".join(str(wanted).split()) == " ".join(str(actual).split())


def problems(state, housekeeping, isolated, cmdline=(), nohz_full=True, thp=None, governor=None,
             sysctls=None, workqueue=True, irqs=True, tasks=True, offline=(), kernel=None,
             realtime=False):
    """What is not in effect, one line each, and what was checked ('ok' or why not applicable)."""
    hk, iso = set(parse_cpulist(housekeeping)), set(parse_cpulist(isolated))
    out, checked = [], {}

    missing = [t for t in cmdline if t not in state["cmdline"]]
    if missing:
        out.append(f"kernel command line lacks {' '.join(missing)} (running: {' '.join(state['cmdline'])})")
    checked["cmdline"] = "ok" if not missing else "failed"

    kernel_wrong = []
    if kernel and state["kernel"] != kernel:
        kernel_wrong.append(f"the running kernel is {state['kernel']}, GRUB's pinned default is {kernel}")
    if realtime and not state["realtime"]:
        kernel_wrong.append(f"the running kernel {state['kernel']} is not PREEMPT_RT "
                            "(no /sys/kernel/realtime)")
    out += kernel_wrong
    if kernel or realtime:
        checked["kernel"] = "failed" if kernel_wrong else "ok"

    isolation = []
    if sorted(iso) != state["isolated"]:
        isolation.append(f"isolated CPUs are {_names(state['isolated'])}, the plan isolates {_names(iso)}")
    if nohz_full and iso and sorted(iso) != state["nohz_full"]:
        isolation.append(f"nohz_full CPUs are {_names(state['nohz_full'])}, the plan wants {_names(iso)}")
    out += isolation
    checked["isolation"] = "failed" if isolation else "ok"

    still_online = [c for c in parse_cpulist(offline) if c in state["online"]]
    if still_online:
        out.append(f"CPU {_names(still_online)} should be offline (thread siblings of isolated cores)")

    queues = per_cpu_queues(state["irqs"], state["online"])
    if irqs:
        bad = []
        kept = []
        for irq, info in sorted(state["irqs"].items()):
            onto = [c for c in info["cpus"] if c in iso]
            if not onto:
                continue
            if irq in queues:
                kept.append(f"{irq} ({info['handlers'][0]})")
            else:
                bad.append(f"{irq} ({','.join(info['handlers'])}) on CPU {_names(onto)}")
        if bad:
            out.append("interrupts delivered to isolated CPUs: " + "; ".join(bad))
        default = state["default_irq_affinity"]
        wide = default is not None and set(default) - hk
        if wide:
            out.append(f"the default IRQ affinity is CPU {_names(default)}, beyond housekeeping "
                       f"{_names(hk)}")
        checked["irqs"] = "failed" if bad or wide else "ok" + (
            f" ({len(kept)} per-CPU queue interrupt(s) stay with their isolated CPU and fire only "
            f"for I/O it issues: {', '.join(kept)})" if kept else "")

    if workqueue:
        mask = state["workqueue"]
        if mask is None:
            checked["workqueue"] = "not applicable: no /sys/devices/virtual/workqueue/cpumask"
        elif set(mask) != hk:
            out.append(f"the unbound workqueues run on CPU {_names(mask)}, not housekeeping {_names(hk)}")
            checked["workqueue"] = "failed"
        else:
            checked["workqueue"] = "ok"

    if thp:
        if state["thp"] is None:
            checked["thp"] = "not applicable: no transparent hugepage support"
        elif state["thp"] != thp:
            out.append(f"transparent hugepages are '{state['thp']}', wanted '{thp}'")
            checked["thp"] = "failed"
        else:
            checked["thp"] = "ok"

    if governor:
        if not state["governors"]:
            checked["governor"] = "not applicable: no cpufreq driver (a VM, or frequency fixed by firmware)"
        else:
            wrong = sorted(c for c, g in state["governors"].items() if g != governor)
            if wrong:
                out.append(f"CPU {_names(wrong)} not on the '{governor}' governor")
            checked["governor"] = "failed" if wrong else "ok"

    wrong = [f"{k}={state['sysctls'].get(k)} (wanted {v})" for k, v in (sysctls or {}).items()
             if state["sysctls"].get(k) is not None and not _same_sysctl(v, state["sysctls"][k])]
    absent = [k for k in (sysctls or {}) if state["sysctls"].get(k) is None]
    if wrong:
        out.append("sysctls not in effect: " + ", ".join(wrong))
    checked["sysctls"] = "failed" if wrong else "ok" + (
        f" (not in this kernel: {', '.join(absent)})" if absent else "")

    if tasks and iso:
        floating, queue_threads = [], []
        for task in state["tasks"]:
            allowed = set(task["allowed"])
            if task["flags"] & PF_NO_SETAFFINITY or not allowed & iso:
                continue  # per-CPU kernel threads, and tasks kept off the isolated CPUs
            kthread = bool(task["flags"] & PF_KTHREAD)
            if allowed <= iso and not kthread:
                continue  # a process pinned inside the isolated set on purpose (the trading workload)
            threaded = _IRQ_THREAD.match(task["name"]) if kthread else None
            if threaded and int(threaded.group(1)) in queues:
                # PREEMPT_RT runs each interrupt's handler in a thread: a per-CPU queue's thread
                # runs only when its interrupt fires, for I/O its CPU issued
                queue_threads.append(task["name"])
                continue
            kind = "kernel thread" if kthread else "task"
            floating.append(f"{kind} {task['name']} ({task['pid']}/{task['tid']}) may run on "
                            f"CPU {_names(allowed & iso)}")
        if floating:
            out.append(f"{len(floating)} task(s) may run on isolated CPUs: " + "; ".join(floating[:10])
                       + ("; …" if len(floating) > 10 else ""))
        checked["tasks"] = "failed" if floating else "ok" + (
            f" ({len(queue_threads)} threaded handler(s) of per-CPU queue interrupts run where their "
            f"interrupt fires: {', '.join(sorted(queue_threads))})" if queue_threads else "")
    return out, checked
