#!/usr/bin/python
"""Ansible module qb_packages: documentation only; the work is done by the action plugin of the
same name (plugins/action/qb_packages.py), which calls ansible.builtin.apt when it must."""

from __future__ import annotations

DOCUMENTATION = r"""
module: qb_packages
short_description: Make sure Debian packages are installed, calling apt only when one is missing
description:
  - Takes the arguments of M(ansible.builtin.apt) and means the same. When the task only asks
    for named packages to be present, the host's installed packages are read once per playbook
    run (one C(dpkg-query), no Python started on the host) and M(ansible.builtin.apt) runs only if one of the
    named packages is missing; otherwise the task reports C(ok) without another module call.
  - Any other request (version pins, globs, C(deb), C(upgrade), C(state) other than present) goes
    to M(ansible.builtin.apt) unchanged.
  - The list is kept in the fact C(qb_packages_seen) with the identity of the run that read it;
    a list read by another run is read again, so the fact cache never hides a removed package.
options:
  name:
    description: Package names (a list, or a comma-separated string).
    type: list
    elements: str
  state:
    description: As for M(ansible.builtin.apt).
    type: str
    default: present
  install_recommends:
    description: As for M(ansible.builtin.apt).
    type: bool
  update_cache:
    description: As for M(ansible.builtin.apt); only when apt runs.
    type: bool
  cache_valid_time:
    description: As for M(ansible.builtin.apt); only when apt runs.
    type: int
attributes:
  check_mode: {support: full}
  diff_mode: {support: full}
extends_documentation_fragment: []
"""

EXAMPLES = r"""
- name: Install Redis
  qb_packages:
    name: [redis-server, redis-sentinel]
    install_recommends: false
  register: redis_packages
"""

RETURN = r"""
packages_missing:
  description: The named packages that were not installed when the task started.
  returned: when the task only names packages to be present
  type: list
  elements: str
"""

from ansible.module_utils.qb_action_only import refuse

if __name__ == "__main__":
    refuse("qb_packages")
