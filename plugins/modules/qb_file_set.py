#!/usr/bin/python
"""Module `qb_file_set`: make a directory hold exactly a set of files, in one call."""

from __future__ import annotations

DOCUMENTATION = r"""
module: qb_file_set
short_description: Write a set of files under one directory in one call, and remove the ones that left the set
description:
  - Writes every file of O(files) under O(path) whose content differs, atomically (a temporary
    file in the same directory, validated, then renamed over the old one), and sets owner,
    group and mode.
  - With O(purge), files under O(path) matching O(purge_glob) that are not in O(files) are
    removed, so a file whose source left the inventory disappears with it.
  - One round trip replaces a loop of template tasks; check mode and diff are supported.
options:
  path:
    description: Directory the files live under (created when missing).
    type: path
    required: true
  files:
    description: Relative path -> content. Sub-directories are created.
    type: dict
    required: true
  owner:
    description: Owner of the files and directories.
    type: str
  group:
    description: Group of the files and directories.
    type: str
  mode:
    description: Mode of the files (octal string).
    type: str
    default: "0644"
  directory_mode:
    description: Mode of the directories created.
    type: str
    default: "0755"
  purge:
    description: Remove files under O(path) that match O(purge_glob) and are not in O(files).
    type: bool
    default: false
  purge_glob:
    description: Which files O(purge) may remove (relative to O(path), recursive C(**) allowed).
    type: str
    default: "**/*"
  validate:
    description:
      - Command run on each new or changed file before it lands, C(%s) being the temporary
        file; a non-zero exit leaves every file as it was and fails the task.
    type: str
author: quantbot-infra
"""

EXAMPLES = r"""
- name: Prometheus file_sd targets, one file per host
  qb_file_set:
    path: /etc/prometheus/file_sd
    files: "{{ jobs | qb_file_sd(groups, hostvars) | dict2items | items2dict(value_name='value') }}"
    group: prometheus
    purge: true
    purge_glob: "*/*.json"
"""

RETURN = r"""
written:
  description: Relative paths written (created or changed).
  type: list
  elements: str
  returned: always
removed:
  description: Relative paths removed by O(purge).
  type: list
  elements: str
  returned: always
"""

import glob
import grp
import os
import pwd
import shlex
import subprocess
import tempfile

from ansible.module_utils.basic import AnsibleModule


def _ids(module, owner, group):
    try:
        uid = pwd.getpwnam(owner).pw_uid if owner else -1
        gid = grp.getgrnam(group).gr_gid if group else -1
    except KeyError as exc:
        module.fail_json(msg=f"qb_file_set: no such user or group: {exc}")
    return uid, gid


def _read(path):
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def _attrs_differ(path, uid, gid, mode):
    st = os.stat(path)
    return ((uid != -1 and st.st_uid != uid) or (gid != -1 and st.st_gid != gid)
            or (st.st_mode & 0o7777) != mode)


def main():
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "required": True},
            "files": {"type": "dict", "required": True},
            "owner": {"type": "str"},
            "group": {"type": "str"},
            "mode": {"type": "str", "default": "0644"},
            "directory_mode": {"type": "str", "default": "0755"},
            "purge": {"type": "bool", "default": False},
            "purge_glob": {"type": "str", "default": "**/*"},
            "validate": {"type": "str"},
        },
        supports_check_mode=True,
    )
    p = module.params
    root = os.path.realpath(p["path"])
    mode, dmode = int(p["mode"], 8), int(p["directory_mode"], 8)
    uid, gid = _ids(module, p["owner"], p["group"])
    wanted = {}
    for rel, content in p["files"].items():
        full = os.path.realpath(os.path.join(root, rel))
        if not full.startswith(root + os.sep):
            module.fail_json(msg=f"qb_file_set: {rel!r} is not a path under {root}")
        wanted[full] = ("" if content is None else str(content)).encode()

    write, attrs, before, after = [], [], [], []
    for full, content in sorted(wanted.items()):
        old = _read(full)
        if old != content:
            write.append(full)
            if module._diff:
                before.append(f"# {full}\n" + ("" if old is None else old.decode(errors="replace")))
                after.append(f"# {full}\n" + content.decode())
        elif _attrs_differ(full, uid, gid, mode):
            attrs.append(full)
    remove = []
    if p["purge"] and os.path.isdir(root):
        for found in glob.glob(os.path.join(root, p["purge_glob"]), recursive=True):
            found = os.path.realpath(found)
            if os.path.isfile(found) and found not in wanted:
                remove.append(found)
                if module._diff:
                    before.append(f"# {found}\n" + _read(found).decode(errors="replace"))
                    after.append(f"# {found} (removed)\n")
    result = {
        "changed": bool(write or attrs or remove),
        "written": [os.path.relpath(f, root) for f in write],
        "removed": sorted(os.path.relpath(f, root) for f in remove),
    }
    if module._diff and (before or after):
        result["diff"] = {"before": "\n".join(before), "after": "\n".join(after)}
    if module.check_mode or not result["changed"]:
        module.exit_json(**result)

    # stage and validate every changed file before any of them lands
    staged = []
    try:
        for full in write:
            directory = os.path.dirname(full)
            if not os.path.isdir(directory):
                os.makedirs(directory, mode=dmode)
                os.chown(directory, uid, gid)
            fd, tmp = tempfile.mkstemp(dir=directory, prefix=".qb_file_set.")
            staged.append((tmp, full))
            with os.fdopen(fd, "wb") as handle:
                handle.write(wanted[full])
            os.chmod(tmp, mode)
            os.chown(tmp, uid, gid)
            if p["validate"]:
                if "%s" not in p["validate"]:
                    module.fail_json(msg="qb_file_set: validate must contain %s")
                cmd = [tmp if part == "%s" else part for part in shlex.split(p["validate"])]
                proc = subprocess.run(cmd, capture_output=True, text=True)
                if proc.returncode != 0:
                    module.fail_json(msg=f"qb_file_set: {os.path.relpath(full, root)} failed validation "
                                         f"({p['validate']}): {(proc.stdout + proc.stderr).strip()}",
                                     written=[], removed=[])
        for tmp, full in staged:
            os.replace(tmp, full)
        staged = []
    finally:
        for tmp, _full in staged:
            if os.path.exists(tmp):
                os.unlink(tmp)
    for full in attrs:
        os.chmod(full, mode)
        os.chown(full, uid, gid)
    for full in remove:
        os.unlink(full)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
