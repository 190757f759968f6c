"""Action qb_copy: ansible.builtin.copy, reading the destination with one shell command.

A thin shim over quantbot_infra.remote_files. Ansible's copy action reads the destination with
the stat module and, when the checksums match, calls the file module to hold mode and owner: two
Python modules on the host for a file that is already right. This action reads type, mode,
owner, group and checksum with one shell command instead, and skips the file module when every
attribute the task names already holds. Everything else (a file that differs, a link, a
directory, symbolic modes, SELinux attributes, validation, backup, diff and check mode) is the
copy action's own code, unchanged.
"""

from __future__ import annotations

from ansible.plugins.action.copy import ActionModule as CopyAction

from quantbot_infra import remote_files


class ActionModule(CopyAction):
    def run(self, tmp=None, task_vars=None):
        self._qb_seen = {}
        return super().run(tmp, task_vars)

    def _execute_remote_stat(self, path, all_vars, follow, tmp=None, checksum=True):
        out = self._low_level_execute_command(remote_files.stat_command(path, checksum), sudoable=True)
        stat = remote_files.parse_stat(out.get("rc", 1), out.get("stdout", ""), checksum)
        if stat is None:
            return super()._execute_remote_stat(path, all_vars, follow, checksum=checksum)
        self._qb_seen[path] = stat
        return stat

    def _execute_module(self, module_name=None, module_args=None, *args, **kwargs):
        if module_name == "ansible.legacy.file" and module_args:
            path = module_args.get("dest") or module_args.get("path")
            stat = getattr(self, "_qb_seen", {}).get(path)
            if remote_files.holds(stat, module_args):
                return remote_files.unchanged(stat, path)
        return super()._execute_module(module_name, module_args, *args, **kwargs)
