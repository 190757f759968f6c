#!/usr/bin/python
"""Ansible module qb_template: documentation only; the work is done by the action plugin of the
same name (plugins/action/qb_template.py) (Ansible's template action, handing its file to qb_copy)."""

from __future__ import annotations

DOCUMENTATION = r"""
module: qb_template
short_description: Render a template onto a host, with no module call when the file is already as rendered
description:
  - Takes the arguments of M(ansible.builtin.template) and means the same. The same action renders the file, then hands it to M(qb_copy) instead of M(ansible.builtin.copy).
  - The destination is read with one shell command (its type, mode, owner, group and SHA-1);
    when the file's content, mode, owner and group already are as declared, the task reports
    C(ok) without starting Python on the host. Ansible's own action reads it with the stat
    module and then holds the attributes with the file module, two module calls per file.
  - Anything else (a file that differs, a missing file, a link, a directory as destination, a
    symbolic mode, SELinux or C(chattr) attributes) takes M(ansible.builtin.template)'s own path;
    validation, backup, diff and check mode are its own.
options:
  src:
    description: As for M(ansible.builtin.template).
    type: path
    required: true
  dest:
    description: As for M(ansible.builtin.template).
    type: path
    required: true
  mode:
    description: As for M(ansible.builtin.template); an octal mode is judged without a module call, other forms go to the module.
    type: raw
  owner:
    description: As for M(ansible.builtin.template).
    type: str
  group:
    description: As for M(ansible.builtin.template).
    type: str
  validate:
    description: As for M(ansible.builtin.template); runs only when the file changes.
    type: str
  backup:
    description: As for M(ansible.builtin.template).
    type: bool
    default: false
  force:
    description: As for M(ansible.builtin.template).
    type: bool
    default: true
attributes:
  check_mode: {support: full}
  diff_mode: {support: full}
extends_documentation_fragment: []
"""

EXAMPLES = r"""
- name: Write chrony.conf
  qb_template:
    src: chrony.conf.j2
    dest: /etc/chrony/chrony.conf
    mode: "0644"
  notify: base restart chrony
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
    module.fail_json(msg="qb_template runs through its action plugin; the action plugin path is "
                         "not configured (plugins/action in ansible.cfg)")


if __name__ == "__main__":
    main()
