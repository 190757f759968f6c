#!/usr/bin/python
"""Ansible module qb_file: documentation only; the work is done by the action plugin of the
same name (plugins/action/qb_file.py), which calls ansible.builtin.file when it must."""

from __future__ import annotations

DOCUMENTATION = r"""
module: qb_file
short_description: Keep a directory, a file's attributes or nothing at a path, calling the file module only when it is not
description:
  - Takes the arguments of M(ansible.builtin.file) and means the same.
  - For O(state=directory), O(state=file) (an existing file's mode, owner and group) and
    O(state=absent), one shell command reads the path's type, mode,
    owner and group (no Python started on the host); the task reports C(ok) when the path
    already is as asked and runs M(ansible.builtin.file) otherwise.
  - Every other state, and any argument the reader does not judge (O(recurse), O(src),
    O(force), O(follow), timestamps, SELinux or C(chattr) attributes, a symbolic mode, a link at
    the path), goes to M(ansible.builtin.file) unchanged.
options:
  path:
    description: As for M(ansible.builtin.file).
    type: path
    required: true
    aliases: [dest, name]
  state:
    description: As for M(ansible.builtin.file).
    type: str
  mode:
    description: As for M(ansible.builtin.file).
    type: raw
  owner:
    description: As for M(ansible.builtin.file).
    type: str
  group:
    description: As for M(ansible.builtin.file).
    type: str
attributes:
  check_mode: {support: full}
  diff_mode: {support: full}
extends_documentation_fragment: []
"""

EXAMPLES = r"""
- name: Create journald's drop-in directory
  qb_file:
    path: /etc/systemd/journald.conf.d
    state: directory
    mode: "0755"
"""

RETURN = r"""
state:
  description: The path's state after the task.
  returned: success
  type: str
"""

from ansible.module_utils.qb_action_only import refuse

if __name__ == "__main__":
    refuse("qb_file")
