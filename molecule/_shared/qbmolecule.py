"""Helpers shared by the molecule scenarios' testinfra checks: hosts by name, the project's
playbooks and modules run against the scenario's inventory, readers for their output, and the
secret scan every tier's hosts get (journal, /var/log, processes)."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import tarfile
import time
from pathlib import Path

import testinfra

INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
STATE = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])
PROJECT = Path(os.environ["MOLECULE_PROJECT_DIRECTORY"])
ENV = {
    **os.environ,
    "ANSIBLE_INVENTORY_ENABLED": "ansible.builtin.yaml,ansible.builtin.ini",
    "ANSIBLE_ROLES_PATH": str(PROJECT / "roles"),
    "ANSIBLE_LIBRARY": str(PROJECT / "plugins" / "modules"),
    "ANSIBLE_MODULE_UTILS": str(PROJECT / "plugins" / "module_utils"),
    "ANSIBLE_FILTER_PLUGINS": str(PROJECT / "plugins" / "filter"),
    "ANSIBLE_LOOKUP_PLUGINS": str(PROJECT / "plugins" / "lookup"),
    "ANSIBLE_ACTION_PLUGINS": str(PROJECT / "plugins" / "action"),
    "ANSIBLE_NOCOLOR": "1",
    "ANSIBLE_FORCE_COLOR": "0",
}


def host(name: str):
    return testinfra.get_host(f"ansible://{name}?ansible_inventory={INVENTORY}")


def root_host(name: str):
    """The test's own view of a host: docker exec as root, so the checks (which act as clients
    and as an attacker) never go through the sudo the playbooks use and never reach its log."""
    return testinfra.get_host(f"docker://root@{name}")


def wait_for(what: str, check, timeout: float = 120, every: float = 1.0, retry_on: tuple = ()):
    """Poll `check` until it returns something truthy; fail naming `what` after `timeout` s.
    Exceptions of the types in `retry_on` count as a falsy answer (kept as the last one)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except retry_on as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")


def playbook(name: str, *args: str, check: bool = True, inventory: str | None = None,
             timeout: int = 900) -> subprocess.CompletedProcess:
    cmd = ["ansible-playbook", "-i", inventory or INVENTORY, str(PROJECT / "playbooks" / name), *args]
    result = subprocess.run(cmd, capture_output=True, text=True, env=ENV, cwd=PROJECT, timeout=timeout)
    if check:
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    return result


def flat(result: subprocess.CompletedProcess) -> str:
    """A playbook's output with its line wrapping undone (messages may be folded)."""
    return " ".join((result.stdout + "\n" + result.stderr).split())


def recap(output: str) -> dict[str, dict[str, int]]:
    """PLAY RECAP counters by host."""
    out = {}
    for line in output.splitlines():
        m = re.match(r"^(\S+)\s+:\s+(.*)$", line)
        if m and "ok=" in m.group(2):
            out[m.group(1)] = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m.group(2))}
    return out


def module_run(hostname: str, name: str, args: str, *extra: str,
               inventory: str | None = None) -> tuple[subprocess.CompletedProcess, dict]:
    """Run one module ad hoc; returns the process and the module's result for the host."""
    cmd = ["ansible", "-i", inventory or INVENTORY, hostname, "-m", name, "-a", args, *extra]
    env = {**ENV, "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1", "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json"}
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=PROJECT, timeout=120)
    doc = json.JSONDecoder().raw_decode(result.stdout[result.stdout.index("{"):])[0]
    return result, doc["plays"][0]["tasks"][0]["hosts"][hostname]


def module(hostname: str, name: str, args: str, *extra: str) -> dict:
    """Run one module ad hoc and return its result (it must succeed)."""
    result, out = module_run(hostname, name, args, *extra)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    return out


def state_secrets(minimum: int, root: Path = STATE) -> dict[str, str]:
    """Every secret the run generated into the environment's state at `root` (the scenario's
    qb_state_dir: passwords, keys), by file: each secrets/ file whole, and one base64 line of
    each private key (the CA's and the hosts')."""
    found = {}
    for path in (root / "secrets").rglob("*"):
        if path.is_file():
            found[str(path.relative_to(root))] = path.read_text().strip()
    for key in (root / "pki").rglob("*.key"):
        found[str(key.relative_to(root))] = key.read_text().splitlines()[2]
    # a scan for nothing passes by itself: the state must hold what the tier generates
    assert len(found) >= minimum and all(len(v) >= 16 for v in found.values()), sorted(found)
    return found


def hits(text: str, where: str, values: dict[str, str]) -> list[str]:
    return [f"{name} in {where}" for name, value in values.items() if value in text]


# Every process's command line and environment, each distinct string once, to the file named
# by argv[1]: one pass, then again ten times a second for argv[2] seconds or until the marker
# file /run/qb-sampler.stop appears (bounded, so a failed test leaves nothing running).
PROCESS_SAMPLER = r"""
import glob, os, sys, time
seen, end = set(), time.time() + float(sys.argv[2])
with open(sys.argv[1], "w") as out:
    while True:
        for proc in glob.glob("/proc/[0-9]*"):
            for name in ("cmdline", "environ"):
                try:
                    data = open(proc + "/" + name, "rb").read()
                except OSError:
                    continue
                for part in data.split(b"\0"):
                    if part and part not in seen:
                        seen.add(part)
                        out.write(part.decode("utf-8", "replace") + "\n")
        out.flush()
        if time.time() >= end or os.path.exists("/run/qb-sampler.stop"):
            break
        time.sleep(0.1)
"""


def host_leaks(name: str, values: dict[str, str], processes: bool = True) -> list[str]:
    """Where on a host any of `values` shows: its journal since boot (each sudo command line and
    module invocation), every file under /var/log (the collector's shipped logs included) and,
    with `processes`, the command lines and environments of what runs now. Read as root through
    docker exec, so the scan itself leaves nothing in the host's logs."""

    def run(*cmd: str, ok: tuple[int, ...] = (0,)) -> bytes:
        done = subprocess.run(["docker", "exec", name, *cmd], capture_output=True, check=False)
        if done.returncode not in ok:
            raise subprocess.CalledProcessError(done.returncode, done.args, done.stdout, done.stderr)
        return done.stdout

    found = hits(
        run("journalctl", "--no-pager", "-o", "cat").decode("utf-8", "replace"), f"{name}'s journal", values
    )
    # tar's status 1: a file grew while it was read (a collector writes its own journal into
    # /var/log as it goes); what was read is in the archive
    archive = run("tar", "--warning=no-file-changed", "-C", "/var/log", "-cf", "-", ".", ok=(0, 1))
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        files = [m for m in tar.getmembers() if m.isfile()]
        assert files, f"{name}: nothing under /var/log"
        for member in files:
            text = tar.extractfile(member).read().decode("utf-8", "replace")
            found += hits(text, f"{name}:/var/log/{member.name.lstrip('./')}", values)
    if processes:
        seen = run("python3", "-c", PROCESS_SAMPLER, "/dev/stdout", "0").decode("utf-8", "replace")
        assert "/sbin/init" in seen or "systemd" in seen, f"{name}: no process read"
        found += hits(seen, f"{name}'s running command lines or environments", values)
    return found
