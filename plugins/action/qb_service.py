"""Action qb_service: ansible.builtin.systemd_service, called only when the unit is not already
as the task asks.

A thin shim over quantbot_infra.units: for a task that asks a unit to be started or stopped
and/or enabled or not, one shell command reads its load, active and enablement state; the task
reports ok without starting Python on the host when that state holds, and runs the
systemd_service module, unchanged, otherwise (or for anything else it is asked: daemon_reload,
restarted, reloaded, masked, scope). Check and diff mode are the module's own.
"""

from __future__ import annotations

from quantbot_infra import units
from quantbot_infra.read_first import ReadFirstAction


class ActionModule(ReadFirstAction):
    MODULE = "ansible.legacy.systemd_service"

    def settled(self, args):
        if not units.plannable(args):
            return None
        if not units.holds(units.parse_state(*self.read(units.state_command(str(args["name"])))), args):
            return None
        asked = {k: v for k, v in args.items() if v is not None}
        return {**asked, "changed": False, "msg": "already as asked"}
