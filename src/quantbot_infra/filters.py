"""What the project's filter plugins share: a call into the package whose ValueError (a message
that says what to fix) becomes the AnsibleFilterError a playbook reports.

The filter plugins import the package plainly: on a controller without it (not the project's
virtualenv), Ansible skips the plugin with a warning that names the missing module; with a
topology inventory, its plugin stops the run before any play and says to run `make setup`."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError


def call(func, *args, **kwargs):
    try:
        return func(*args, **kwargs)
    except ValueError as exc:
        raise AnsibleFilterError(str(exc)) from None
