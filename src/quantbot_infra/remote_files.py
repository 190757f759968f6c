"""A file's state on a host read with one shell command, so that a copy, template or file task
whose path is already as declared costs no Python module on the host.

ansible.builtin.copy (and template, which hands its rendered file to copy) reads the destination
with the stat module, and when the checksums match calls the file module to hold mode and owner:
two module calls for a file that is already right. The qb_copy and qb_template actions ask these
functions instead: one command (POSIX sh, coreutils' stat and sha1sum) reads type, mode, owner,
group and checksum, and the file module is skipped when every attribute the task names already
holds. The qb_file action asks them for directories, existing files' attributes and absent
paths. Anything they cannot
judge (a link, a mode in symbolic form, SELinux or chattr attributes, output they do not
understand) answers ``None``/``False``, and the action takes Ansible's own path.
"""

from __future__ import annotations

import re
import shlex
from typing import Any

MARK = "QB_FILE"
# attributes of the file module that the stat command does not read: a task naming one of them
# always goes to the module
UNREAD = ("seuser", "serole", "selevel", "setype", "attributes")


def stat_command(path: str, checksum: bool = True) -> str:
    """One shell command printing the state of ``path`` (never following a link)."""
    q = shlex.quote(path)
    digest = f" && {{ [ ! -f {q} ] || sha1sum -- {q}; }}" if checksum else ""
    return (f"LC_ALL=C; if [ -L {q} ]; then echo {MARK} link; elif [ -e {q} ]; then "
            f"stat -c '{MARK} %F|%a|%U|%G|%u|%g|%s' -- {q}{digest}; else echo {MARK} absent; fi")


def parse_stat(rc: int, stdout: str, checksum: bool = True) -> dict[str, Any] | None:
    """The stat module's answer (the keys the copy action reads) from ``stat_command``'s output;
    ``None`` when the output is not understood or names a link."""
    if rc != 0:
        return None
    lines = [ln for ln in (stdout or "").splitlines() if ln.strip()]
    marks = [i for i, ln in enumerate(lines) if ln.startswith(MARK + " ")]
    if len(marks) != 1:
        return None
    i = marks[0]
    body = lines[i][len(MARK) + 1:]
    if body == "absent":
        # as Ansible's own reader: a checksum that matches nothing
        return {"exists": False, "isdir": False, "islnk": False, "isreg": False, "checksum": "1"}
    fields = body.split("|")
    if len(fields) != 7 or not re.fullmatch(r"[0-7]{1,4}", fields[1]):
        return None
    kind, mode, owner, group, uid, gid, size = fields
    if not (uid.isdigit() and gid.isdigit() and size.isdigit()):
        return None
    isreg = kind in ("regular file", "regular empty file")
    digest = ""
    if isreg and checksum:
        rest = lines[i + 1:]
        if len(rest) != 1:
            return None
        token = rest[0].split()[0].lstrip("\\")
        if not re.fullmatch(r"[0-9a-f]{40}", token):
            return None
        digest = token
    return {
        "exists": True, "isdir": kind == "directory", "islnk": False, "isreg": isreg,
        "mode": f"{int(mode, 8):04o}", "pw_name": owner, "gr_name": group,
        "uid": int(uid), "gid": int(gid), "size": int(size), "checksum": digest,
    }


def _mode(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and re.fullmatch(r"[0-7]{3,4}", value):
        return int(value, 8)
    return None


def holds(stat: dict[str, Any] | None, args: dict[str, Any]) -> bool:
    """Whether the path ``stat`` describes already is as the file module ``args`` ask: a regular
    file (state file, as the copy action asks), a directory or nothing (state absent), with every
    attribute the task names (so the module would change nothing)."""
    state = args.get("state") or "file"
    if not stat or state not in ("file", "directory", "absent"):
        return False
    if state == "absent":
        return not stat["exists"]
    if not stat.get("isreg" if state == "file" else "isdir"):
        return False
    if any(args.get(k) not in (None, "") for k in UNREAD):
        return False
    if args.get("mode") is not None:
        wanted = _mode(args["mode"])
        if wanted is None or wanted != int(stat["mode"], 8):
            return False
    for key, name, number in (("owner", "pw_name", "uid"), ("group", "gr_name", "gid")):
        if args.get(key) not in (None, "") and str(args[key]) not in (stat[name], str(stat[number])):
            return False
    return True


# what a file task may name and still be judged from the reader's output; any other argument
# (recurse, src, force, follow, timestamps) goes to the module
FILE_JUDGED = {"path", "dest", "name", "state", "mode", "owner", "group", *UNREAD}


def file_plannable(args: dict[str, Any]) -> str | None:
    """The path of a file task that asks for a directory, for the attributes of an existing
    file (state file, named) or for nothing to be there, when the reader can judge it; ``None``
    otherwise."""
    if args.get("state") not in ("directory", "file", "absent"):
        return None
    if any(v not in (None, False, "") for k, v in args.items() if k not in FILE_JUDGED):
        return None
    path = args.get("path") or args.get("dest") or args.get("name")
    return str(path) if path else None


def unchanged(stat: dict[str, Any], path: str) -> dict[str, Any]:
    """What the file module returns for a path it left as it was."""
    if not stat["exists"]:
        return {"changed": False, "path": path, "state": "absent"}
    return {"changed": False, "path": path, "dest": path,
            "state": "directory" if stat["isdir"] else "file", "mode": stat["mode"],
            "owner": stat["pw_name"], "group": stat["gr_name"], "uid": stat["uid"],
            "gid": stat["gid"], "size": stat["size"]}
