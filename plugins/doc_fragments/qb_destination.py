"""Documentation shared by qb_copy and qb_template: the destination reader both hand a file to."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  dest:
    description: As for the builtin module.
    type: path
    required: true
  mode:
    description:
      - As for the builtin module; an octal mode is judged without a module call, other forms go
        to the module.
    type: raw
  owner:
    description: As for the builtin module.
    type: str
  group:
    description: As for the builtin module.
    type: str
  validate:
    description: As for the builtin module; runs only when the file changes.
    type: str
  backup:
    description: As for the builtin module.
    type: bool
    default: false
  force:
    description: As for the builtin module.
    type: bool
    default: true
notes:
  - The destination is read with one shell command (its type, mode, owner, group and SHA-1);
    when the file's content, mode, owner and group already are as declared, the task reports
    C(ok) without starting Python on the host. Ansible's own action reads it with the stat
    module and then holds the attributes with the file module, two module calls per file.
  - Anything else (a file that differs, a missing file, a link, a directory as destination, a
    symbolic mode, SELinux or C(chattr) attributes) takes the builtin module's own path;
    validation, backup, diff and check mode are its own.
attributes:
  check_mode: {support: full}
  diff_mode: {support: full}
"""
