"""Filters of the low-latency role and its latency gate: thin shims over quantbot_infra.lowlatency.

Each turns the package's ValueError into an AnsibleFilterError whose message says what to fix.
"""

from __future__ import annotations

from quantbot_infra import lowlatency
from quantbot_infra.filters import call as _call


def lowlatency_cmdline(plan, settings):
    """``qb_cpu_plan | qb_lowlatency_cmdline(settings)``: the kernel command-line tokens."""
    return _call(lowlatency.kernel_cmdline, dict(plan), dict(settings))


def lowlatency_missing(tokens, cmdline):
    """``tokens | qb_lowlatency_missing(running_cmdline)``: what a reboot would change."""
    return _call(lowlatency.missing_tokens, list(tokens), str(cmdline))


def lowlatency_time_mode(ethtool_t, wanted, nic):
    """``ethtool_stdout | qb_lowlatency_time_mode(lowlatency_time_mode, nic)``: ptp, chrony_hw or
    software, why, and the NIC's PTP clock index."""
    stamping = lowlatency.timestamping(str(ethtool_t)) if str(ethtool_t or "").strip() else None
    return _call(lowlatency.time_mode, str(wanted), stamping, str(nic or ""))


def lowlatency_boot_kernel(listing, realtime):
    """``"uuid\\nfile\\nfile…" | qb_lowlatency_boot_kernel(rt_enabled)``: the root file system's
    UUID, then the names in /boot (one per line) -> the kernel GRUB is to boot by default."""
    lines = [line.strip() for line in str(listing or "").splitlines() if line.strip()]
    return _call(lowlatency.boot_kernel, lines[1:], bool(realtime), lines[0] if lines else "")


def latency_summary(result):
    """``cyclictest_json | qb_latency_summary``: max, p99 and p99.99 overall and per CPU."""
    return _call(lowlatency.latency_summary, dict(result))


def latency_verdict(summary, previous, max_us, regression_pct):
    """``summary | qb_latency_verdict(previous_summary, max_us, regression_pct)``"""
    return _call(lowlatency.latency_verdict, dict(summary), dict(previous) if previous else None,
                 int(max_us), float(regression_pct))


class FilterModule:
    def filters(self):
        return {
            "qb_lowlatency_cmdline": lowlatency_cmdline,
            "qb_lowlatency_missing": lowlatency_missing,
            "qb_lowlatency_time_mode": lowlatency_time_mode,
            "qb_lowlatency_boot_kernel": lowlatency_boot_kernel,
            "qb_latency_summary": latency_summary,
            "qb_latency_verdict": latency_verdict,
        }
