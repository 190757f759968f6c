#!/usr/bin/python
"""Ansible module qb_copy: documentation only; the work is done by the action plugin of the
same name (plugins/action/qb_copy.py) (Ansible's copy action, reading the destination with one shell command)."""

from __future__ import annotations

DOCUMENTATION = r"""
module: qb_copy
short_description: Copy a file or content to a host, with no module call when it is already there
description:
  - Takes the arguments of M(ansible.builtin.copy) and means the same.
options:
  src:
    description: As for M(ansible.builtin.copy).
    type: path
  content:
    description: As for M(ansible.builtin.copy).
    type: str
extends_documentation_fragment: [qb_destination]
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

from ansible.module_utils.qb_action_only import refuse

if __name__ == "__main__":
    refuse("qb_copy")
