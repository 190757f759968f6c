"""Which of a role's Debian packages a host still lacks, from one read of its package list per run.

A no-change converge used to spend a full `apt` module call (python-apt loading the package
cache on the host) on every role's install task of every host: 74 calls and 107 s of the dev
fleet's 515 s. The `qb_packages` action reads the host's installed packages once per playbook
run (one `dpkg-query`, no Python started on the host), and calls `apt` only for a task that
names a package not installed.

The list is kept in the host's facts tagged with the run that read it; a list read by another
run (the fact cache keeps facts between runs) is never trusted, so a package removed by hand
between two runs is installed again by the next one.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

# what the apt module accepts and this planner can decide from names alone
PLANNED_STATES = frozenset({"present"})
# every package dpkg knows, with its selection/status/error flags ("ii " = installed)
DPKG_QUERY = "dpkg-query -W -f '${Package}\\t${db:Status-Abbrev}\\n'"


def parse_dpkg_query(text: str) -> set[str]:
    """The installed packages in DPKG_QUERY's output: status flag (second letter) 'i', and no
    error flag (third), so a half-installed or failed package counts as missing and apt runs."""
    out = set()
    for line in text.splitlines():
        name, _, abbrev = line.partition("\t")
        if len(abbrev) >= 2 and abbrev[1] == "i" and abbrev[2:3].strip() == "":
            out.add(name.strip())
    return out


def run_id(pid: int | None = None) -> str:
    """The playbook run's identity: the controller process's pid and start time (clock ticks
    since boot, field 22 of /proc/<pid>/stat), so a reused pid is another run."""
    pid = os.getppid() if pid is None else pid
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            stat = f.read()
    except OSError:
        return f"{pid}:unknown"
    # the command name (field 2) may hold spaces and parentheses: split after its last ')'
    return f"{pid}:{stat.rsplit(')', 1)[1].split()[19]}"


def names(value: str | Iterable[str] | None) -> list[str]:
    """The apt module's `name`: a list, or one string of comma-separated names."""
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else list(value)
    return [str(n).strip() for n in items if str(n).strip()]


def plannable(args: dict) -> bool:
    """True when the task only asks for named packages to be present: no version pins, globs,
    .deb files, upgrades or removals (those always go to the apt module)."""
    wanted = names(args.get("name"))
    return (
        bool(wanted)
        and args.get("state", "present") in PLANNED_STATES
        and not any(set(n) & set("=*?[]/") for n in wanted)
        and not any(args.get(k) for k in ("deb", "upgrade", "autoremove", "purge", "force"))
    )


def seen_this_run(seen: object, run: str) -> set[str] | None:
    """The installed names recorded by this run, or None when they must be read again."""
    if isinstance(seen, dict) and seen.get("run") == run and isinstance(seen.get("packages"), list):
        return set(seen["packages"])
    return None


def missing(wanted: Iterable[str], installed: set[str]) -> list[str]:
    """Wanted names not installed, in the task's order; an architecture suffix (name:amd64) is
    matched by its name."""
    return [n for n in wanted if n.split(":", 1)[0] not in installed]


def record(run: str, installed: Iterable[str]) -> dict:
    """The fact to keep for the rest of the run."""
    return {"run": run, "packages": sorted(set(installed))}
