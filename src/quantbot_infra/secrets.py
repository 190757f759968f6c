"""Secrets a role needs by name: given ones (Vault) win, missing ones are generated once into a
controller directory of the environment (0600 files in a 0700 folder) and read back afterwards.

Used by the `qb_secrets` lookup plugin; kept here so it is unit-tested without Ansible."""

from __future__ import annotations

import os
import re
import secrets
import string
from collections.abc import Iterable, Mapping
from pathlib import Path

NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
ALPHABET = string.ascii_letters + string.digits


class SecretError(Exception):
    """A secret is missing or its name is unusable; the message says which and what to do."""


def generate(length: int = 32) -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(length))


def _read_or_create(path: Path, length: int) -> str:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        value = path.read_text().strip()
        if not value:
            raise SecretError(f"{path}: file is empty; delete it to generate a new secret") from None
        return value
    value = generate(length)
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")
    return value


def resolve(
    names: Iterable[str],
    provided: Mapping[str, str] | None,
    directory: str | os.PathLike | None,
    generate_missing: bool,
    length: int = 32,
    label: str = "secret",
) -> dict[str, str]:
    """Return {name: secret} for every name, in the order given."""
    provided = dict(provided or {})
    out: dict[str, str] = {}
    for name in names:
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise SecretError(f"{label} name {name!r} is not usable (letters, digits, '_', '.', '-')")
        value = provided.get(name)
        if value is not None:
            if not str(value):
                raise SecretError(f"{label} {name!r} is given but empty")
            out[name] = str(value)
            continue
        if not generate_missing:
            raise SecretError(f"{label} {name!r} is missing: add it to the environment's Vault file "
                              "(generation is off for this environment)")
        if not directory:
            raise SecretError(f"{label} {name!r} is missing and no directory is set to generate it into")
        out[name] = _read_or_create(Path(directory) / name, length)
    return out
