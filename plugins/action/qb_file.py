"""Action qb_file: ansible.builtin.file, called only when a directory or an absent path is not
already as the task asks.

A thin shim over quantbot_infra.remote_files: for a task asking for a directory (with mode,
owner, group) or for nothing to be at a path, one shell command reads the path; the task
reports ok without starting Python on the host when it already is as asked, and runs the file
module, unchanged, otherwise (and for every other state or argument). Check and diff mode are
the module's own.
"""

from __future__ import annotations

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

try:
    from quantbot_infra import remote_files
except ImportError as exc:  # pragma: no cover - depends on the controller's environment
    remote_files = None
    _MISSING = str(exc)


class ActionModule(ActionBase):
    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        if remote_files is None:
            raise AnsibleActionFail(f"the quantbot_infra package is not importable ({_MISSING}); "
                                    "run 'make setup' and use the project's virtualenv")
        args = dict(self._task.args)
        path = remote_files.file_plannable(args)
        if path:
            out = self._low_level_execute_command(remote_files.stat_command(path, checksum=False),
                                                  sudoable=True)
            stat = remote_files.parse_stat(out.get("rc", 1), out.get("stdout", ""), checksum=False)
            if remote_files.holds(stat, args):
                result.update(remote_files.unchanged(stat, path))
                return result
        result.update(self._execute_module(module_name="ansible.legacy.file", module_args=args,
                                           task_vars=task_vars))
        return result
