#!/usr/bin/python
"""Ansible module qb_copy: documentation only; the work is done by the action plugin of the
same name (plugins/action/qb_copy.py) (Ansible's copy action, reading the destination with one shell command)."""

from __future__ import annotations

DOCUMENTATION = r"""
module: qb_copy
short_description: Copy a file or content to a host, with no module call when it is already there
description:
  - Takes the arguments of M(ansible.builtin.copy) and means the same.
  - The destination is read with one shell command (its type, mode, owner, group and SHA-1);
    when the file's content, mode, owner and group already are as declared, the task reports
    C(ok) without starting Python on the host. Ansible's own action reads it with the stat
    module and then holds the attributes with the file module, two module calls per file.
  - Anything else (a file that differs, a missing file, a link, a directory as destination, a
    symbolic mode, SELinux or C(chattr) attributes) takes M(ansible.builtin.copy)'s own path;
    validation, backup, diff and check mode are its own.
options:
  src:
    description: As for M(ansible.builtin.copy).
    type: path
  content:
    description: As for M(ansible.builtin.copy).
    type: str
  dest:
    description: As for M(ansible.builtin.copy).
    type: path
    required: true
  mode:
    description: As for M(ansible.builtin.copy); an octal mode is judged without a module call, other forms go to the module.
    type: raw
  owner:
    description: As for M(ansible.builtin.copy).
    type: str
  group:
    description: As for M(ansible.builtin.copy).
    type: str
  validate:
    description: As for M(ansible.builtin.copy); runs only when the file changes.
    type: str
  backup:
    description: As for M(ansible.builtin.copy).
    type: bool
    default: false
  force:
    description: As for M(ansible.builtin.copy).
    type: bool
    default: true
attributes:
  check_mode: {support: full}
  diff_mode: {support: full}
extends_documentation_fragment: []
"""

EXAMPLES = r"""
- name: Install the CA certificate
  qb_copy:
    src: "{{ pki_ca_dir }}/ca.crt"
    dest: /etc/quantbot/pki/ca.crt
    mode: "0644"
"""

RETURN = r"""
checksum:
  description: SHA-1 of the file as declared.
  returned: success
  type: str
"""

from ansible.module_utils.basic import AnsibleModule


def main() -> None:
    module = AnsibleModule(argument_spec={}, supports_check_mode=True, bypass_checks=True)
    module.fail_json(msg="qb_copy runs through its action plugin; the action plugin path is "
                         "not configured (plugins/action in ansible.cfg)")


if __name__ == "__main__":
    main()
