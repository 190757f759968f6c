"""A systemd unit's state read with one shell command, so that a task asking for a unit to be
running (or stopped) and enabled (or not) costs no Python module on the host when it already is.

The qb_service action asks these functions; the judgement is ansible.builtin.systemd_service's
own: ``started`` holds while the unit is active or activating, ``stopped`` while it is neither
those nor deactivating. Enablement is judged only from ``systemctl is-enabled`` printing exactly
``enabled``, or ``disabled`` with no SysV script beside the unit; anything else (static, alias,
indirect, masked, a unit systemd does not know, output not understood) answers ``None`` and the
action runs the module, which knows those cases.
"""

from __future__ import annotations

import shlex
from typing import Any

from ansible.module_utils.parsing.convert_bool import boolean

MARK = "QB_UNIT"
# what the fast path judges; any other argument (daemon_reload, masked, scope, force, no_block,
# restarted or reloaded states) goes to the module
JUDGED = {"name", "state", "enabled"}
RUNNING = {"active", "activating"}


def plannable(args: dict[str, Any]) -> bool:
    """Whether the task only asks what ``holds`` can judge."""
    if not args.get("name") or any(v not in (None, False) for k, v in args.items() if k not in JUDGED):
        return False
    if args.get("state") not in (None, "started", "stopped"):
        return False
    return args.get("state") is not None or args.get("enabled") is not None


def state_command(name: str) -> str:
    q = shlex.quote(name)
    base = shlex.quote("/etc/init.d/" + name.removesuffix(".service"))
    return (f"LC_ALL=C; echo {MARK} $(systemctl show -p LoadState -p ActiveState -- {q} | tr '\\n' ' ')"
            f" enabled=$(systemctl is-enabled -- {q} 2>/dev/null); [ -e {base} ] && echo {MARK} initd; true")


def parse_state(rc: int, stdout: str) -> dict[str, Any] | None:
    if rc != 0:
        return None
    lines = [ln.split()[1:] for ln in (stdout or "").splitlines() if ln.startswith(MARK + " ")]
    if not lines:
        return None
    fields = dict(f.split("=", 1) for f in lines[0] if "=" in f)
    if not {"LoadState", "ActiveState"} <= set(fields):
        return None
    return {"load": fields["LoadState"], "active": fields["ActiveState"],
            "enabled": fields.get("enabled", ""), "initd": ["initd"] in lines[1:]}


def holds(state: dict[str, Any] | None, args: dict[str, Any]) -> bool:
    """Whether the unit already is as ``args`` ask (so the module would change nothing)."""
    if not state or state["load"] != "loaded":
        return False
    wanted = args.get("state")
    if wanted == "started" and state["active"] not in RUNNING:
        return False
    if wanted == "stopped" and state["active"] in RUNNING | {"deactivating"}:
        return False
    enabled = args.get("enabled")
    if enabled is not None:
        # as the module reads it: "no" is false; a value that is no boolean is the module's to refuse
        try:
            enabled = boolean(enabled, strict=True)
        except TypeError:
            return False
        # as the module: `is-enabled` saying enabled settles it; disabled is left to the module
        # where a SysV script may still enable the service
        if state["enabled"] == "enabled":
            return enabled
        if state["enabled"] != "disabled" or state["initd"]:
            return False
        return not enabled
    return True
