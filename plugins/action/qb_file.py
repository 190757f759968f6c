"""Action qb_file: ansible.builtin.file, called only when a directory, an existing file's
attributes or an absent path are not already as the task asks.

A thin shim over quantbot_infra.remote_files: for a task asking for a directory (with mode,
owner, group), for an existing file's mode, owner and group, or for nothing to be at a path,
one shell command reads the path; the task
reports ok without starting Python on the host when it already is as asked, and runs the file
module, unchanged, otherwise (and for every other state or argument). Check and diff mode are
the module's own.
"""

from __future__ import annotations

from quantbot_infra import remote_files
from quantbot_infra.read_first import ReadFirstAction


class ActionModule(ReadFirstAction):
    MODULE = "ansible.legacy.file"

    def settled(self, args):
        path = remote_files.file_plannable(args)
        if not path:
            return None
        stat = remote_files.parse_stat(*self.read(remote_files.stat_command(path, checksum=False)),
                                       checksum=False)
        return remote_files.unchanged(stat, path) if remote_files.holds(stat, args) else None
