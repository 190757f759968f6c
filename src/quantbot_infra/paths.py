"""Where the project's files are: the playbook project (repo root) and its ignored state."""

from __future__ import annotations

import os
import re
from pathlib import Path

from quantbot_infra.topology import ENVIRONMENTS

_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")


class ProjectError(RuntimeError):
    """The project layout or local state is not what a command needs."""


def project_dir() -> Path:
    """The playbook project: $QB_PROJECT_DIR, else the checkout this package was installed from,
    else the current directory if it looks like one."""
    candidates = []
    if os.environ.get("QB_PROJECT_DIR"):
        candidates.append(Path(os.environ["QB_PROJECT_DIR"]))
    candidates.append(Path(__file__).resolve().parents[2])
    candidates.append(Path.cwd())
    for c in candidates:
        if (c / "ansible.cfg").is_file() and (c / "playbooks").is_dir():
            return c.resolve()
    raise ProjectError(
        "cannot find the quantbot-infra project (ansible.cfg + playbooks/); "
        "run from the checkout or set QB_PROJECT_DIR"
    )


def inventory_dir(env: str, root: Path | None = None) -> Path:
    root = root or project_dir()
    path = root / "inventories" / env
    if not path.is_dir():
        known = sorted(p.name for p in (root / "inventories").iterdir() if p.is_dir())
        raise ProjectError(f"unknown environment {env!r}; expected one of {known}")
    return path


def state_dir(env: str | None = None, root: Path | None = None) -> Path:
    """Ignored folder for generated keys, secrets, facts and run artifacts ($QB_STATE_DIR
    overrides the project's ``.state``)."""
    if os.environ.get("QB_STATE_DIR") and root is None:
        path = Path(os.environ["QB_STATE_DIR"])
    else:
        path = (root or project_dir()) / ".state"
    if env is not None:
        # a relocated state (a test's own) may hold an environment of another name
        relocated = bool(os.environ.get("QB_STATE_DIR")) and root is None and _NAME.match(env)
        if env not in ENVIRONMENTS and not relocated:
            raise ProjectError(f"unknown environment {env!r}; expected one of {list(ENVIRONMENTS)}")
        path = path / env
    return path


def playbook_path(name: str, root: Path | None = None) -> Path:
    """Resolve ``site``, ``site.yml`` or ``playbooks/site.yml`` to a playbook file."""
    root = root or project_dir()
    p = Path(name)
    options = [p, root / p, root / "playbooks" / p]
    if p.suffix not in (".yml", ".yaml"):
        options += [root / "playbooks" / f"{name}.yml"]
    for option in options:
        if option.is_file():
            return option.resolve()
    available = sorted(x.stem for x in (root / "playbooks").glob("*.yml"))
    raise ProjectError(f"playbook {name!r} not found; available: {', '.join(available)}")
