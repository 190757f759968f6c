#!/usr/bin/python
"""Ansible module qb_service: documentation only; the work is done by the action plugin of the
same name (plugins/action/qb_service.py), which calls ansible.builtin.systemd_service when it
must."""

from __future__ import annotations

DOCUMENTATION = r"""
module: qb_service
short_description: Keep a systemd unit started or stopped, enabled or not, calling systemd_service only when it is not
description:
  - Takes the arguments of M(ansible.builtin.systemd_service) and means the same.
  - When the task only asks for O(state=started) or O(state=stopped) and/or O(enabled), one shell
    command reads the unit's load, active and enablement state (no Python started on the host);
    the task reports C(ok) when the unit already is as asked and runs
    M(ansible.builtin.systemd_service) otherwise.
  - The judgement is the module's own - started holds while the unit is active or activating,
    stopped while it is neither nor deactivating. Enablement is judged only from
    C(systemctl is-enabled) printing C(enabled), or C(disabled) with no SysV script beside the
    unit; static, alias, indirect, masked and unknown units go to the module.
  - Any other request (O(daemon_reload=true), restarted, reloaded, O(masked=true), O(scope))
    goes to M(ansible.builtin.systemd_service) unchanged.
options:
  name:
    description: The unit.
    type: str
    required: true
  state:
    description: As for M(ansible.builtin.systemd_service).
    type: str
    choices: [started, stopped, restarted, reloaded]
  enabled:
    description: As for M(ansible.builtin.systemd_service).
    type: bool
  daemon_reload:
    description: As for M(ansible.builtin.systemd_service); a reload always runs the module.
    type: bool
    default: false
attributes:
  check_mode: {support: full}
  diff_mode: {support: none}
extends_documentation_fragment: []
"""

EXAMPLES = r"""
- name: Run chrony
  qb_service:
    name: chrony.service
    state: started
    enabled: true
"""

RETURN = r"""
msg:
  description: C(already as asked) when no module ran.
  returned: when the unit already was as asked
  type: str
"""

from ansible.module_utils.qb_action_only import refuse

if __name__ == "__main__":
    refuse("qb_service")
