"""Run one of the project's modules on localhost through ansible's ad-hoc command, as a play
would (module_utils and all), and return its one-line (-o) output."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def module(name: str, args: dict, *extra: str) -> subprocess.CompletedProcess:
    env = {"PYTHONPATH": str(ROOT / "src"), "ANSIBLE_MODULE_UTILS": str(ROOT / "plugins" / "module_utils"),
           "ANSIBLE_LIBRARY": str(ROOT / "plugins" / "modules"), "PATH": f"{BIN}:/usr/bin:/bin"}
    return subprocess.run(
        [str(BIN / "ansible"), "localhost", "-c", "local", "-m", name, "-a", json.dumps(args), "-o", *extra],
        capture_output=True, text=True, env=env, cwd=ROOT, check=False)
