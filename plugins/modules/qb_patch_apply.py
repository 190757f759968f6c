#!/usr/bin/python
# quantbot-infra: upgrade exactly the packages a patch plan named, and say what must follow.

from __future__ import annotations

DOCUMENTATION = r"""
module: qb_patch_apply
short_description: Upgrade the packages a patch plan named, at the versions it named
description:
  - Installs each planned package at its planned version (one apt call; new packages a kernel
    upgrade pulls in are marked automatically installed), keeping changed configuration files
    (C(--force-confold)), then reads what must follow - services to restart and whether the
    kernel changed - from C(needrestart -b) where it is installed, and C(/var/run/reboot-required).
  - A version the indexes no longer offer fails the task before anything is installed.
  - Returns the host's record - versions before and after, kernel running and expected.
  - Check mode reports the planned changes and makes none.
options:
  packages:
    description: The plan's upgrades (each with C(name), C(candidate) and C(new)), as M(qb_patch_plan) returns them.
    type: list
    elements: dict
    required: true
author: quantbot-infra
"""

EXAMPLES = r"""
- name: Upgrade what the plan named
  qb_patch_apply:
    packages: "{{ patch_host_plan.upgrades }}"
  register: patch_applied
"""

RETURN = r"""
packages:
  description: One entry per planned package with C(name), C(before) and C(after) versions.
  returned: always
  type: list
  elements: dict
services:
  description: Services running outdated code (needrestart), to be restarted.
  returned: always
  type: list
  elements: str
systemd_reexec:
  description: "systemd itself runs outdated code (needrestart's C(systemd-manager)); re-execute it."
  returned: always
  type: bool
reboot_required:
  description: The running kernel is older than the newest installed one, or a package asked for a reboot.
  returned: always
  type: bool
reboot_reasons:
  description: Why a reboot is required.
  returned: always
  type: list
  elements: str
kernel:
  description: C(running) and C(expected) (the newest installed) kernel releases.
  returned: always
  type: dict
"""

import os
import shutil

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.qb_patch import (
    APT_ENV,
    REBOOT_FLAG,
    parse_needrestart,
    processes,
    reboot_flag,
    stale_services,
)


def versions(module, names):
    if not names:
        return {}
    _rc, out, _err = module.run_command(
        ["dpkg-query", "-W", "-f", "${Package} ${db:Status-Abbrev} ${Version}\n", *names], environ_update=APT_ENV)
    found = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1].startswith("ii"):
            found[parts[0]] = parts[2]
    return found


def reboot_state(module):
    reasons = []
    flagged, packages = reboot_flag()
    if flagged:
        reasons.append(f"{REBOOT_FLAG} ({' '.join(packages) or 'no package named'})")
    services, expected, reexec = [], None, False
    if shutil.which("needrestart"):
        _rc, out, _err = module.run_command(["needrestart", "-b", "-r", "l"], environ_update=APT_ENV)
        report = parse_needrestart(out)
        services, expected, reexec = report["services"], report["kernel_expected"], report["systemd_reexec"]
        if report["kernel_pending"]:
            reasons.append(f"kernel {report['kernel_running']} runs, {expected} is installed")
    else:
        # without needrestart: the services whose processes map a file the upgrade replaced
        services = stale_services(processes())
    return services, expected, reasons, reexec


def main():
    module = AnsibleModule(
        argument_spec=dict(packages=dict(type="list", elements="dict", required=True)),
        supports_check_mode=True,
    )
    planned = module.params["packages"]
    for i, item in enumerate(planned):
        if not item.get("name") or not item.get("candidate"):
            module.fail_json(msg=f"packages[{i}] lacks name or candidate (give the plan's upgrades)")
    names = [p["name"] for p in planned]
    running = os.uname().release
    before = versions(module, names)
    todo = [p for p in planned if before.get(p["name"]) != p["candidate"]]
    if module.check_mode or not todo:
        services, expected, reasons, reexec = reboot_state(module)
        module.exit_json(
            changed=bool(todo),
            packages=[{"name": p["name"], "before": before.get(p["name"]),
                       "after": p["candidate"] if module.check_mode else before.get(p["name"])} for p in planned],
            services=services, systemd_reexec=reexec, reboot_required=bool(reasons),
            reboot_reasons=reasons, kernel={"running": running, "expected": expected or running})

    rc, out, err = module.run_command(["apt-get", "-q", "update"], environ_update=APT_ENV)
    if rc != 0:
        module.fail_json(msg="apt-get update failed: " + (err or out).strip()[-400:])
    command = ["apt-get", "install", "-y", "-q", "--no-install-recommends",
               "-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold",
               *[f"{p['name']}={p['candidate']}" for p in todo]]
    rc, out, err = module.run_command(command, environ_update=APT_ENV)
    if rc != 0:
        module.fail_json(msg="the upgrade failed: " + (err or out).strip()[-600:],
                         packages=[{"name": n, "before": before.get(n), "after": None} for n in names])
    new = [p["name"] for p in todo if p.get("new")]
    if new:
        module.run_command(["apt-mark", "auto", *new], check_rc=True, environ_update=APT_ENV)
    after = versions(module, names)
    wrong = [f"{p['name']} is {after.get(p['name'])}, planned {p['candidate']}" for p in planned
             if after.get(p["name"]) != p["candidate"]]
    if wrong:
        module.fail_json(msg="the upgrade did not reach the planned versions: " + "; ".join(wrong))
    services, expected, reasons, reexec = reboot_state(module)
    module.exit_json(
        changed=True,
        packages=[{"name": n, "before": before.get(n), "after": after.get(n)} for n in names],
        services=services, systemd_reexec=reexec, reboot_required=bool(reasons),
        reboot_reasons=reasons, kernel={"running": running, "expected": expected or running},
    )


if __name__ == "__main__":
    main()
