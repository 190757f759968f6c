# quantbot-infra: what a patch run reads on a host - apt's simulated upgrade and needrestart's
# batch report - as plain data. Pure functions, unit-tested on captured outputs.

from __future__ import annotations

import fnmatch
import os
import re

REBOOT_FLAG = "/var/run/reboot-required"
# apt and dpkg in C locale, never asking; needrestart lists, never restarts
APT_ENV = {"LANG": "C", "LC_ALL": "C", "DEBIAN_FRONTEND": "noninteractive", "NEEDRESTART_MODE": "l"}

# "Inst openssl [3.0.11-1~deb12u2] (3.0.15-1~deb12u1 Debian-Security:12/stable-security [amd64])"
# "Inst linux-image-6.1.0-28-amd64 (6.1.119-1 Debian-Security:12/stable-security [amd64])"
_INST = re.compile(r"^Inst (?P<name>\S+) (?:\[(?P<current>[^\]]+)\] )?"
                   r"\((?P<candidate>\S+) (?P<origins>[^\[]*?) ?\[(?P<arch>[^\]]+)\]\)")
_REMV = re.compile(r"^Remv (?P<name>\S+)(?: \[(?P<current>[^\]]+)\])?")

# packages after whose upgrade only a reboot puts the new code in place
DEFAULT_REBOOT_PACKAGES = ("linux-image-*", "intel-microcode", "amd64-microcode", "libc6", "systemd", "dbus")


def parse_simulation(text):
    """`apt-get -s -o Debug::NoLocking=1 dist-upgrade` -> upgrades, new installs and removals."""
    upgrades, removals = [], []
    for line in text.splitlines():
        match = _INST.match(line)
        if match:
            origins = [o.strip() for o in match.group("origins").split(",") if o.strip()]
            upgrades.append({
                "name": match.group("name"),
                "current": match.group("current"),
                "candidate": match.group("candidate"),
                "origins": origins,
                "security": any(_is_security(o) for o in origins),
                "new": match.group("current") is None,
            })
            continue
        match = _REMV.match(line)
        if match:
            removals.append({"name": match.group("name"), "current": match.group("current")})
    return {"upgrades": upgrades, "removals": removals}


def _is_security(origin):
    # "Debian-Security:12/stable-security", "quantbot-test:bookworm-security"
    archive = origin.split("/", 1)[-1] if "/" in origin else origin.split(":", 1)[-1]
    return archive.endswith("-security") or origin.lower().startswith("debian-security")


def reboot_flag(path=REBOOT_FLAG):
    """Whether a package asked for a reboot (Debian's reboot-required flag), and which ones did."""
    packages = []
    if os.path.exists(path + ".pkgs"):
        with open(path + ".pkgs") as handle:
            packages = sorted({line.strip() for line in handle if line.strip()})
    return os.path.exists(path), packages


def parse_needrestart(text):
    """`needrestart -b` -> kernel running/expected/status and the services to restart.
    Kernel status (NEEDRESTART-KSTA): 0 unknown, 1 current, 2 ABI-compatible upgrade pending,
    3 version upgrade pending."""
    out = {"kernel_running": None, "kernel_expected": None, "kernel_status": 0,
           "services": [], "containers": [], "sessions": []}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        value = value.strip()
        if key == "NEEDRESTART-KCUR":
            out["kernel_running"] = value
        elif key == "NEEDRESTART-KEXP":
            out["kernel_expected"] = value
        elif key == "NEEDRESTART-KSTA":
            out["kernel_status"] = int(value) if value.isdigit() else 0
        elif key == "NEEDRESTART-SVC" and value:
            out["services"].append(value)
        elif key == "NEEDRESTART-CONT" and value:
            out["containers"].append(value)
        elif key == "NEEDRESTART-SESS" and value:
            out["sessions"].append(value)
    # "systemd-manager": PID 1 itself runs outdated code (daemon-reexec, not a restart)
    out["systemd_reexec"] = "systemd-manager" in out["services"]
    out["services"] = sorted({s for s in out["services"] if s != "systemd-manager"})
    out["kernel_pending"] = out["kernel_status"] in (2, 3)
    return out


def reboot_packages(upgrades, patterns=DEFAULT_REBOOT_PACKAGES):
    """The upgraded packages that will need a reboot (name patterns, fnmatch)."""
    return sorted(u["name"] for u in upgrades if any(fnmatch.fnmatchcase(u["name"], p) for p in patterns))


def services_mapping(upgrades, package_files, processes):
    """Services whose processes run code an upgrade replaces (a binary or a shared library of
    an upgraded package mapped into them): they restart after it, as needrestart will find.
    processes: [{unit, paths}] (each process's systemd service and mapped files)."""
    names = {u["name"] for u in upgrades}
    replaced = {path for package, files in package_files.items() if package in names for path in files}
    return sorted({p["unit"] for p in processes if p["unit"] and replaced & set(p["paths"])})


def restart_services(upgrades, unit_files, running):
    """Running services whose unit file an upgraded package ships: they restart after it.
    unit_files: package -> its files (dpkg -L); running: the running services' names."""
    names = {u["name"] for u in upgrades}
    out = set()
    for package, files in unit_files.items():
        if package not in names:
            continue
        for path in files:
            unit = path.rsplit("/", 1)[-1]
            if "/systemd/system/" in path and unit.endswith(".service") and unit in running:
                out.add(unit)
    return sorted(out)


def processes(proc="/proc"):
    """Each service process's systemd unit, the files it maps (its binary, its libraries) and
    those of them replaced on disk since it started (maps marks them "(deleted)")."""
    out = []
    for pid in os.listdir(proc):
        if not pid.isdigit():
            continue
        try:
            with open(f"{proc}/{pid}/cgroup") as handle:
                cgroup = handle.read()
            unit = next((part for part in cgroup.strip().split("/") if part.endswith(".service")), None)
            if not unit:
                continue
            paths, deleted = set(), set()
            with open(f"{proc}/{pid}/maps") as handle:
                for line in handle:
                    fields = line.split(None, 5)
                    if len(fields) == 6 and fields[5].startswith("/"):
                        path = fields[5].strip()
                        if path.endswith(" (deleted)"):
                            path = path[:-len(" (deleted)")]
                            deleted.add(path)
                        paths.add(path)
            paths.add(os.readlink(f"{proc}/{pid}/exe").replace(" (deleted)", ""))
        except OSError:
            continue  # ended while read, or a kernel thread
        out.append({"unit": unit, "paths": sorted(paths), "deleted": sorted(deleted)})
    return out


def stale_services(procs, prefixes=("/usr/", "/lib/", "/lib64/", "/bin/", "/sbin/", "/opt/")):
    """Services running code replaced on disk (needrestart's answer where it is not installed):
    a process maps a deleted file of the system's own folders (not a deleted temporary file)."""
    return sorted({p["unit"] for p in procs if any(d.startswith(prefixes) for d in p.get("deleted", []))})
