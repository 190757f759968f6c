"""Filters of the monitoring tier: thin shims over quantbot_infra.monitoring."""

from __future__ import annotations

from quantbot_infra import monitoring
from quantbot_infra.filters import call as _call


def qb_file_sd(jobs, groups, hostvars):
    """'<job>/<host>.json' -> file_sd document, for every host of every job's group."""
    hosts = sorted({h for job in jobs for h in monitoring._job_hosts(job, groups)})
    keys = ["qb_private_ip", "qb_role_groups", *monitoring.TARGET_LABELS.values()]
    plain = {h: {k: (hostvars.get(h) or {}).get(k) for k in keys} for h in hosts}
    return _call(monitoring.file_sd_files, jobs, groups, plain)


def qb_blackbox_jobs(probes):
    return _call(monitoring.blackbox_jobs, probes)


def qb_bcrypt(password, context):
    return _call(monitoring.bcrypt_hash, password, context)


def qb_alertmanager_config(receivers, secrets, routing, venues, timing):
    return _call(monitoring.alertmanager_config, receivers, secrets, routing, venues, timing)


class FilterModule:
    def filters(self):
        return {
            "qb_file_sd": qb_file_sd,
            "qb_blackbox_jobs": qb_blackbox_jobs,
            "qb_bcrypt": qb_bcrypt,
            "qb_alertmanager_config": qb_alertmanager_config,
        }
