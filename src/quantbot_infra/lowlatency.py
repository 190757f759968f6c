"""Controller side of the low-latency role: the kernel command line a CPU plan asks for, which of
its tokens the running kernel lacks (a reboot is due), and the latency gate's arithmetic over a
cyclictest histogram. Pure functions; the filter plugin `qb_lowlatency` is a shim over them."""

from __future__ import annotations

import re

# tokens the role owns: a token of the running command line with one of these keys and another
# value is stale, and a reboot is due
OWNED_KEYS = (
    "isolcpus", "nohz_full", "rcu_nocbs", "irqaffinity", "skew_tick", "tsc", "nosoftlockup",
    "processor.max_cstate", "intel_idle.max_cstate", "transparent_hugepage", "hugepagesz",
    "hugepages", "default_hugepagesz", "nmi_watchdog", "nohz",
)
_SIZE = re.compile(r"^[0-9]+[KMG]$")


def kernel_cmdline(plan: dict, settings: dict) -> list[str]:
    """The command-line tokens for `plan` (qb_cpu_topology's) under the role's `settings`:
    isolcpus_flags, nohz_full, rcu_nocbs, irqaffinity, skew_tick, tsc_reliable, nosoftlockup,
    max_cstate, thp, hugepage_size, hugepages_per_node, extra. A ValueError names the setting."""
    isolated = str(plan.get("isolated_list") or "")
    housekeeping = str(plan.get("housekeeping_list") or "")
    if not housekeeping:
        raise ValueError("the CPU plan has no housekeeping CPU")
    tokens: list[str] = []
    if isolated:
        flags = list(settings.get("isolcpus_flags") or [])
        bad = [f for f in flags if f not in ("managed_irq", "domain", "nohz")]
        if bad:
            raise ValueError(f"lowlatency_isolcpus_flags: unknown flag {bad[0]!r} "
                             "(managed_irq, domain, nohz)")
        tokens.append("isolcpus=" + ",".join([*flags, isolated]))
        if settings.get("nohz_full", True):
            tokens.append(f"nohz_full={isolated}")
        if settings.get("rcu_nocbs", True):
            tokens.append(f"rcu_nocbs={isolated}")
    if settings.get("irqaffinity", True):
        tokens.append(f"irqaffinity={housekeeping}")
    if settings.get("skew_tick", True):
        tokens.append("skew_tick=1")
    if settings.get("tsc_reliable", True):
        tokens.append("tsc=reliable")
    if settings.get("nosoftlockup", True):
        tokens.append("nosoftlockup")
    cstate = settings.get("max_cstate")
    if cstate is not None and cstate != "":
        if not str(cstate).isdigit():
            raise ValueError(f"lowlatency_max_cstate must be a whole number or null, got {cstate!r}")
        tokens += [f"processor.max_cstate={cstate}", f"intel_idle.max_cstate={cstate}"]
    thp = settings.get("thp")
    if thp:
        if thp not in ("never", "madvise", "always"):
            raise ValueError(f"lowlatency_thp must be never, madvise or always, got {thp!r}")
        tokens.append(f"transparent_hugepage={thp}")
    pages = settings.get("hugepages_per_node") or {}
    if pages:
        size = str(settings.get("hugepage_size") or "2M")
        if not _SIZE.match(size):
            raise ValueError(f"lowlatency_hugepage_size must look like 2M or 1G, got {size!r}")
        nodes = {str(n) for n in (plan.get("nodes") or {})}
        per_node = []
        for node, count in sorted(pages.items(), key=lambda kv: int(kv[0])):
            if nodes and str(node) not in nodes:
                raise ValueError(f"lowlatency_hugepages_per_node names NUMA node {node}, which this "
                                 f"machine does not have (nodes {', '.join(sorted(nodes))})")
            if not str(count).isdigit():
                raise ValueError(f"lowlatency_hugepages_per_node[{node}] must be a whole number")
            per_node.append(f"{node}:{count}")
        tokens += [f"default_hugepagesz={size}", f"hugepagesz={size}", "hugepages=" + ",".join(per_node)]
    for token in settings.get("extra") or []:
        if not token or any(c.isspace() for c in str(token)) or '"' in str(token):
            raise ValueError(f"lowlatency_cmdline_extra: {token!r} is not one command-line token")
        tokens.append(str(token))
    return tokens


def missing_tokens(tokens: list[str], cmdline: str) -> list[str]:
    """The wanted tokens the running command line lacks, and the role-owned tokens it has with
    another value (listed as '-token'): a reboot is due when this is not empty."""
    running = cmdline.split()
    out = [t for t in tokens if t not in running]
    out += ["-" + t for t in running if t.split("=", 1)[0] in OWNED_KEYS and t not in tokens]
    return out


# --- which kernel boots ------------------------------------------------------------------------

RT_MARK = "-rt-"


def _version_key(version: str) -> list:
    """Natural order of kernel releases (6.1.0-10 after 6.1.0-9), as GRUB's own sort -V."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part)
            for part in re.findall(r"[0-9]+|[^0-9]+", version)]


def boot_kernel(boot_files: list[str], realtime: bool, fs_uuid: str) -> dict:
    """The kernel the role pins as GRUB's default, from the names in /boot and the root file
    system's UUID (GRUB's menu entry ids carry it): with `realtime` the newest PREEMPT_RT kernel;
    without it the newest ordinary one, but only where an RT kernel is installed too (GRUB's own
    order puts "-rt-amd64" first at the same release). Nothing pinned otherwise. Returns version,
    grub_default (None when nothing is pinned) and why."""
    kernels = sorted({name[len("vmlinuz-"):] for name in boot_files if name.startswith("vmlinuz-")},
                     key=_version_key)
    rt = [k for k in kernels if RT_MARK in k]
    plain = [k for k in kernels if RT_MARK not in k]
    if realtime:
        if not rt:
            return {"version": None, "grub_default": None,
                    "why": "no PREEMPT_RT kernel in /boot yet (it is installed first; in check mode "
                           "it is not)"}
        version, why = rt[-1], "the newest PREEMPT_RT kernel (lowlatency_rt_kernel_enabled)"
    elif rt and plain:
        version, why = plain[-1], "an RT kernel is installed but not wanted: the newest ordinary one"
    else:
        return {"version": None, "grub_default": None, "why": "one kind of kernel: GRUB's default"}
    if not re.fullmatch(r"[0-9A-Fa-f-]+", fs_uuid or ""):
        raise ValueError(f"cannot pin kernel {version}: the root file system's UUID is {fs_uuid!r}")
    return {"version": version, "why": why,
            "grub_default": f"gnulinux-advanced-{fs_uuid}>gnulinux-{version}-advanced-{fs_uuid}"}


# --- latency gate ---------------------------------------------------------------------------

def _quantile(histogram: dict[int, int], overflow: int, total: int, q: float, ceiling: int) -> int:
    """Smallest latency (us) with at least q of the samples at or below it; samples past the
    histogram's range count as `ceiling` (the run's max)."""
    need = q * total
    seen = 0
    for latency in sorted(histogram):
        seen += histogram[latency]
        if seen >= need:
            return latency
    return ceiling if overflow else max(histogram, default=0)


def latency_summary(result: dict) -> dict:
    """cyclictest's --json output (with -h) -> per-CPU and overall max, p99, p99.99, samples."""
    threads = result.get("thread") or {}
    if not threads:
        raise ValueError("cyclictest wrote no thread results")
    per_cpu = {}
    merged: dict[int, int] = {}
    overflow_all = 0
    total_all = 0
    worst = 0
    for data in threads.values():
        hist = {int(k): int(v) for k, v in (data.get("histogram") or {}).items()}
        cycles = int(data.get("cycles", sum(hist.values())))
        overflow = max(0, cycles - sum(hist.values()))
        high = int(data.get("max", 0))
        cpu = str(data.get("cpu"))
        per_cpu[cpu] = {
            "samples": cycles, "min_us": int(data.get("min", 0)), "avg_us": float(data.get("avg", 0)),
            "max_us": high, "p99_us": _quantile(hist, overflow, cycles, 0.99, high),
            "p9999_us": _quantile(hist, overflow, cycles, 0.9999, high), "overflows": overflow,
        }
        for k, v in hist.items():
            merged[k] = merged.get(k, 0) + v
        overflow_all += overflow
        total_all += cycles
        worst = max(worst, high)
    return {
        "samples": total_all,
        "max_us": worst,
        "p99_us": _quantile(merged, overflow_all, total_all, 0.99, worst),
        "p9999_us": _quantile(merged, overflow_all, total_all, 0.9999, worst),
        "cpus": per_cpu,
    }


def latency_verdict(summary: dict, previous: dict | None, max_us: int, regression_pct: float) -> dict:
    """The gate: fail when the max is above `max_us`, or p99.99 is more than `regression_pct`
    percent worse than the previous run's."""
    reasons = []
    if summary["max_us"] > max_us:
        reasons.append(f"max latency {summary['max_us']} us is above the threshold of {max_us} us")
    change = None
    if previous and previous.get("p9999_us"):
        change = round(100.0 * (summary["p9999_us"] - previous["p9999_us"]) / previous["p9999_us"], 1)
        if change > regression_pct:
            reasons.append(f"p99.99 {summary['p9999_us']} us is {change}% worse than the previous "
                           f"run's {previous['p9999_us']} us (allowed: {regression_pct}%)")
    return {"passed": not reasons, "reasons": reasons, "p9999_change_pct": change}


# --- time ------------------------------------------------------------------------------------

def timestamping(ethtool_t: str) -> dict:
    """`ethtool -T NIC` -> its PTP hardware clock (index or None) and whether it timestamps
    packets in hardware both ways (older and newer ethtool layouts alike)."""
    phc = None
    match = re.search(r"^PTP Hardware Clock:\s*(\S+)", ethtool_t, re.M)
    if match and match.group(1).isdigit():
        phc = int(match.group(1))
    words = set(re.findall(r"^\s*([a-z-]+)", ethtool_t, re.M))
    return {"phc": phc, "hardware": {"hardware-transmit", "hardware-receive"} <= words}


def time_mode(wanted: str, stamping: dict | None, nic: str) -> dict:
    """How the host keeps time: `ptp` (ptp4l disciplines the NIC's clock, chrony follows it as a
    reference clock), `chrony_hw` (chrony with the NIC's hardware timestamps) or `software`
    (chrony as the base role runs it). `wanted` is auto or one of them; a mode the NIC cannot
    do is refused naming the variable."""
    if wanted not in ("auto", "ptp", "chrony_hw", "software"):
        raise ValueError(f"lowlatency_time_mode must be auto, ptp, chrony_hw or software, got {wanted!r}")
    if not nic:
        if wanted in ("ptp", "chrony_hw"):
            raise ValueError(f"lowlatency_time_mode {wanted} needs lowlatency_trading_nic")
        return {"mode": "software", "why": "no trading NIC named: chrony with software timestamps",
                "phc": None}
    if stamping is None:
        if wanted in ("ptp", "chrony_hw"):
            raise ValueError(f"lowlatency_time_mode {wanted}: ethtool -T {nic} said nothing")
        return {"mode": "software", "why": f"ethtool -T {nic} said nothing (not installed yet in a check "
                "run?): chrony with software timestamps", "phc": None}
    if wanted == "auto":
        wanted = "ptp" if stamping["phc"] is not None else "chrony_hw" if stamping["hardware"] else "software"
    if wanted == "ptp" and stamping["phc"] is None:
        raise ValueError(f"lowlatency_time_mode ptp: {nic} has no PTP hardware clock (ethtool -T)")
    if wanted == "chrony_hw" and not stamping["hardware"]:
        raise ValueError(f"lowlatency_time_mode chrony_hw: {nic} has no hardware timestamping (ethtool -T)")
    why = {
        "ptp": f"{nic} has PTP hardware clock /dev/ptp{stamping['phc']}: ptp4l disciplines it, "
               "chrony follows it",
        "chrony_hw": f"{nic} timestamps in hardware: chrony uses its timestamps",
        "software": f"{nic} has no PTP hardware clock and no hardware timestamping: chrony with software "
                    "timestamps",
    }[wanted]
    return {"mode": wanted, "why": why, "phc": stamping["phc"]}
