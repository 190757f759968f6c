"""Action qb_template: ansible.builtin.template, its rendered file handed to qb_copy.

Ansible's template action renders the file and hands it to the copy action; this one is the
same code, handing it to qb_copy instead (one shell command reads the destination, no Python
module runs on the host for a file that is already as declared). Rendering, validation, diff,
check mode and the copy of a changed file are Ansible's own.
"""

from __future__ import annotations

from ansible.plugins.action.template import ActionModule as TemplateAction


class _ActionLoader:
    """The real action loader, except that the copy action the template action asks for is
    qb_copy."""

    def __init__(self, real):
        self._real = real

    def get(self, name, *args, **kwargs):
        return self._real.get("qb_copy" if name == "ansible.legacy.copy" else name, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._real, name)


class _SharedLoaders:
    def __init__(self, real):
        self._real = real
        self.action_loader = _ActionLoader(real.action_loader)

    def __getattr__(self, name):
        return getattr(self._real, name)


class ActionModule(TemplateAction):
    def run(self, tmp=None, task_vars=None):
        real = self._shared_loader_obj
        self._shared_loader_obj = _SharedLoaders(real)
        try:
            return super().run(tmp, task_vars)
        finally:
            self._shared_loader_obj = real
