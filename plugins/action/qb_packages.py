"""Action qb_packages: the apt module, called only when a package the task names is missing.

A thin shim over quantbot_infra.packages: it reads the host's package list once per playbook
run (one dpkg-query), keeps it in the host's facts for the rest of the run, and
hands the task to ansible.builtin.apt, unchanged, whenever a named package is not installed (or
the task asks for more than named packages being present). Check and diff mode are the apt
module's own.
"""

from __future__ import annotations

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

try:
    from quantbot_infra import packages
except ImportError as exc:  # pragma: no cover - depends on the controller's environment
    packages = None
    _MISSING = str(exc)

FACT = "qb_packages_seen"


class ActionModule(ActionBase):
    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        if packages is None:
            raise AnsibleActionFail(f"the quantbot_infra package is not importable ({_MISSING}); "
                                    "run 'make setup' and use the project's virtualenv")
        args = dict(self._task.args)
        if not packages.plannable(args):
            result.update(self._apt(args, task_vars))
            return result
        run = packages.run_id()
        installed = packages.seen_this_run((task_vars.get("ansible_facts") or {}).get(FACT), run)
        fresh = installed is None
        if fresh:
            # a C program, no Python on the host; dpkg's status file is readable without sudo
            read = self._low_level_execute_command(packages.DPKG_QUERY, sudoable=False)
            if read.get("rc") != 0:
                # no dpkg to ask: apt decides, as a plain apt task would
                result.update(self._apt(args, task_vars))
                return result
            installed = packages.parse_dpkg_query(read.get("stdout", ""))
        wanted = packages.names(args["name"])
        lacking = packages.missing(wanted, installed)
        if lacking:
            result.update(self._apt(args, task_vars))
            if not result.get("failed") and not self._task.check_mode:
                installed |= {n.split(":", 1)[0] for n in wanted}
                fresh = True
        else:
            result.update(changed=False, msg="already installed: " + ", ".join(wanted))
        result["packages_missing"] = lacking
        if fresh:
            # kept for the rest of the run; the next task of the host reads it from its facts
            result["ansible_facts"] = {FACT: packages.record(run, installed)}
        return result

    def _apt(self, args, task_vars):
        return self._execute_module("ansible.builtin.apt", module_args=args, task_vars=task_vars)
