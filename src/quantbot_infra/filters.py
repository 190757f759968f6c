"""What the project's filter plugins share: a call into the package whose ValueError (a message
that says what to fix) becomes the AnsibleFilterError a playbook reports."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError


def call(func, *args, **kwargs):
    try:
        return func(*args, **kwargs)
    except ValueError as exc:
        raise AnsibleFilterError(str(exc)) from None
