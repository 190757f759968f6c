"""The body of a documentation-only module: the work is its action plugin's, so the module runs
only when the action plugin path is not configured, and says so (before any argument check,
which would only name the arguments the documentation-only module does not declare)."""

from __future__ import annotations

import json
import sys


def refuse(name: str) -> None:
    print(json.dumps({"failed": True, "msg": f"{name} runs through its action plugin; the action "
                      "plugin path is not configured (plugins/action in ansible.cfg)"}))
    sys.exit(1)
