"""Base of the actions that settle a task from one shell command on the host and run the builtin
module only when they must (qb_file, qb_service): a shell command costs the host no Python, a
module a Python process that imports Ansible's module code (about 0.7 s a task on these hosts)."""

from __future__ import annotations

from typing import Any

from ansible.plugins.action import ActionBase


class ReadFirstAction(ActionBase):
    TRANSFERS_FILES = False
    # the builtin module that does the work whenever the read does not settle the task
    MODULE = ""

    def settled(self, args: dict[str, Any]) -> dict[str, Any] | None:
        """The task's result when what ``read`` finds already is as ``args`` ask, else None."""
        raise NotImplementedError

    def read(self, command: str) -> tuple[int, str]:
        """Run ``command`` on the host (through become, as the module would run)."""
        out = self._low_level_execute_command(command, sudoable=True)
        return out.get("rc", 1), out.get("stdout", "")

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        args = dict(self._task.args)
        answer = self.settled(args)
        if answer is None:
            answer = self._execute_module(module_name=self.MODULE, module_args=args, task_vars=task_vars)
        result.update(answer)
        return result
