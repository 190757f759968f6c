"""Action qb_service: ansible.builtin.systemd_service, called only when the unit is not already
as the task asks.

A thin shim over quantbot_infra.units: for a task that asks a unit to be started or stopped
and/or enabled or not, one shell command reads its load, active and enablement state; the task
reports ok without starting Python on the host when that state holds, and runs the
systemd_service module, unchanged, otherwise (or for anything else it is asked: daemon_reload,
restarted, reloaded, masked, scope). Check and diff mode are the module's own.
"""

from __future__ import annotations

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

try:
    from quantbot_infra import units
except ImportError as exc:  # pragma: no cover - depends on the controller's environment
    units = None
    _MISSING = str(exc)


class ActionModule(ActionBase):
    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        if units is None:
            raise AnsibleActionFail(f"the quantbot_infra package is not importable ({_MISSING}); "
                                    "run 'make setup' and use the project's virtualenv")
        args = dict(self._task.args)
        if units.plannable(args):
            out = self._low_level_execute_command(units.state_command(str(args["name"])), sudoable=True)
            state = units.parse_state(out.get("rc", 1), out.get("stdout", ""))
            if units.holds(state, args):
                result.update({k: v for k, v in args.items() if v is not None})
                result.update(changed=False, msg="already as asked")
                return result
        result.update(self._execute_module(module_name="ansible.legacy.systemd_service",
                                           module_args=args, task_vars=task_vars))
        return result
