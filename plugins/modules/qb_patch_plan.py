#!/usr/bin/python
# quantbot-infra: what patching a host would do, read without changing it.

from __future__ import annotations

DOCUMENTATION = r"""
module: qb_patch_plan
short_description: The upgrades a patch run would make on a host, and what would follow them
description:
  - Refreshes the package indexes into a private folder (the host's own apt lists and caches are
    not touched), simulates a full upgrade against them, and returns the packages that would be
    upgraded or newly installed (current and candidate versions, origins, whether each is a
    security update), what would be removed, whether a reboot would follow (a package matching
    O(reboot_packages), or one already pending in C(/var/run/reboot-required)) and which running
    services would restart (those whose unit file an upgraded package ships, and those whose
    processes map a binary or shared library an upgraded package replaces).
  - Read-only: the same in check mode. One call per host.
options:
  security_only:
    description: Only updates from a security archive (an origin whose suite ends in C(-security)).
    type: bool
    default: false
  reboot_packages:
    description: Package name patterns (fnmatch) whose upgrade needs a reboot.
    type: list
    elements: str
    default: [linux-image-*, intel-microcode, amd64-microcode, libc6, systemd, dbus]
  origins:
    description:
      - Only updates from these origins (fnmatch patterns on apt's C(Origin:Suite) strings, such as
        C(Debian-Security:*) or the organisation's mirror); the rest is listed as held back. Empty takes every origin.
    type: list
    elements: str
    default: []
  refresh:
    description: Refresh the indexes (into the private folder) before simulating.
    type: bool
    default: true
author: quantbot-infra
"""

EXAMPLES = r"""
- name: Read what the patch would do
  qb_patch_plan:
    security_only: "{{ patch_security_only }}"
  register: patch_plan
"""

RETURN = r"""
upgrades:
  description: Packages that would be upgraded or installed (name, current, candidate, origins, security, new).
  returned: always
  type: list
  elements: dict
held_back:
  description: Upgrades left out by O(security_only).
  returned: always
  type: list
  elements: str
removals:
  description: Packages the upgrade would remove.
  returned: always
  type: list
  elements: dict
reboot:
  description: C(predicted) (the packages that need it), C(pending) (already required before the run).
  returned: always
  type: dict
restarts:
  description: Running services that would restart.
  returned: always
  type: list
  elements: str
kernel:
  description: The running kernel release.
  returned: always
  type: str
"""

import fnmatch
import os
import shutil
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.qb_patch import (
    APT_ENV,
    parse_simulation,
    processes,
    reboot_flag,
    reboot_packages,
    restart_services,
    services_mapping,
)

_HOST_LISTS = "/var/lib/apt/lists"


def _apt_options(work):
    # the private index folder (apt's download sandbox user must be able to write it) and a
    # private package cache: the refresh builds it once and the simulation reads it
    return ["-o", f"Dir::State::Lists={work}/lists", "-o", f"Dir::Cache::pkgcache={work}/pkgcache.bin",
            "-o", f"Dir::Cache::srcpkgcache={work}/srcpkgcache.bin", "-o", "Debug::NoLocking=1",
            "-o", "APT::Sandbox::User=root"]


def _package_files(name):
    """The files dpkg installed for a package (its .list in dpkg's database)."""
    for candidate in (name, f"{name}:{os.uname().machine.replace('x86_64', 'amd64')}", f"{name}:all"):
        path = os.path.join("/var/lib/dpkg/info", f"{candidate}.list")
        if os.path.exists(path):
            with open(path) as handle:
                listed = [line.rstrip("\n") for line in handle]
            # merged /usr: a process maps /usr/lib/... where dpkg lists /lib/...
            return listed + ["/usr" + f for f in listed if f.startswith(("/lib/", "/lib64/", "/bin/", "/sbin/"))]
    return []


def main():
    module = AnsibleModule(
        argument_spec=dict(
            security_only=dict(type="bool", default=False),
            reboot_packages=dict(type="list", elements="str",
                                 default=["linux-image-*", "intel-microcode", "amd64-microcode",
                                          "libc6", "systemd", "dbus"]),
            origins=dict(type="list", elements="str", default=[]),
            refresh=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    p = module.params
    # on disk, not a RAM-backed /tmp: a Debian host's indexes and their caches take about 170 MB
    work = tempfile.mkdtemp(prefix="qb-patch-plan.", dir="/var/tmp")
    try:
        lists = os.path.join(work, "lists")
        # a copy of the host's indexes: the refresh then fetches only what the archives changed
        # since (apt's If-Modified-Since and index diffs) and drops what no source names any
        # more; the host's own lists are never written
        if os.path.isdir(_HOST_LISTS):
            shutil.copytree(_HOST_LISTS, lists, ignore=shutil.ignore_patterns("lock", "partial"))
        os.makedirs(os.path.join(lists, "partial"), exist_ok=True)
        if p["refresh"]:
            rc, out, err = module.run_command(["apt-get", "-q", *_apt_options(work), "update"],
                                              environ_update=APT_ENV)
            if rc != 0 or "Failed to fetch" in out + err:
                module.fail_json(msg="refreshing the package indexes failed: " + (err or out).strip()[-400:])
        rc, out, err = module.run_command(
            ["apt-get", "-s", *_apt_options(work), "dist-upgrade"], environ_update=APT_ENV)
        if rc != 0:
            module.fail_json(msg="the simulated upgrade failed: " + (err or out).strip()[-400:])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    simulated = parse_simulation(out)
    upgrades = simulated["upgrades"]
    held_back = []
    if p["security_only"]:
        held_back += [u["name"] for u in upgrades if not u["security"]]
        upgrades = [u for u in upgrades if u["security"]]
    if p["origins"]:
        wanted = [u for u in upgrades
                  if any(fnmatch.fnmatchcase(o, pattern) for o in u["origins"] for pattern in p["origins"])]
        held_back += [u["name"] for u in upgrades if u not in wanted]
        upgrades = wanted
    held_back = sorted(held_back)

    # the running services, and the unit files the upgraded (installed) packages ship
    rc, running_out, _ = module.run_command(
        ["systemctl", "list-units", "--type=service", "--state=running", "--no-legend", "--plain"])
    running = {line.split()[0] for line in running_out.splitlines() if line.strip()}
    installed = [u["name"] for u in upgrades if not u["new"]]
    files = {name: _package_files(name) for name in installed}

    pending, pending_pkgs = reboot_flag()
    module.exit_json(
        changed=False,
        upgrades=upgrades,
        held_back=held_back,
        removals=simulated["removals"],
        reboot={"predicted": reboot_packages(upgrades, p["reboot_packages"]), "pending": pending,
                "pending_packages": pending_pkgs},
        restarts=sorted(set(restart_services(upgrades, files, running))
                        | set(services_mapping(upgrades, files, processes()))),
        kernel=os.uname().release,
    )


if __name__ == "__main__":
    main()
