#!/usr/bin/python
"""Ansible module qb_template: documentation only; the work is done by the action plugin of the
same name (plugins/action/qb_template.py) (Ansible's template action, handing its file to qb_copy)."""

from __future__ import annotations

DOCUMENTATION = r"""
module: qb_template
short_description: Render a template onto a host, with no module call when the file is already as rendered
description:
  - Takes the arguments of M(ansible.builtin.template) and means the same. The same action renders the file, then hands it to M(qb_copy) instead of M(ansible.builtin.copy).
options:
  src:
    description: As for M(ansible.builtin.template).
    type: path
    required: true
extends_documentation_fragment: [qb_destination]
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

from ansible.module_utils.qb_action_only import refuse

if __name__ == "__main__":
    refuse("qb_template")
