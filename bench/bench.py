#!/usr/bin/env python3
"""`make bench`: the project's settings against stock Ansible, side by side in one run.

Sections (each one skipped with a one-line reason when what it needs is missing):

- ``inventory``: topologies of 1,000 and 10,000 hosts: the plugin's parse, ``ansible-inventory
  --list`` and ``--graph``, without and with the inventory cache; beside them ansible-core's floor,
  ``--list`` of an INI file of as many hosts without any variable;
- ``runner``: the runner API's overhead over plain ``ansible-playbook`` for the same playbook;
- ``converge``: a no-change converge of ``site.yml`` on the dev fleet (``make up`` first) with
  stock Ansible (default settings, the builtin modules in place of the roles' qb_* actions), the
  project (its ansible.cfg and actions), and the project with Mitogen (opt-in, reported when installed),
  interleaved round by round; then one profiled run (slowest tasks and roles);
- ``first``: (only with ``--first``) the same three rows on fresh hosts: each row removes and
  recreates the dev fleet, then converges it once;
- ``suite``: ``make test``'s wall time per stage, from the last suite run on this machine.

Results: ``bench/results/<UTC time>.json`` with the machine's description; a table on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
BIN = ROOT / ".venv" / "bin"
SECTIONS = ("inventory", "runner", "converge", "profile", "first", "suite")

# Stock Ansible: only what the project needs to be found at all (its roles, plugins and
# collections, the topology inventory); everything else at ansible-core's defaults (5 forks,
# no pipelining, facts gathered by every play, no fact cache). The roles' qb_* actions are
# Ansible's own modules here (STOCK_ACTIONS): the same roles, run as stock Ansible runs them.
STOCK_CFG = """\
[defaults]
roles_path = {root}/roles
library = {root}/plugins/modules
module_utils = {root}/plugins/module_utils
filter_plugins = {root}/plugins/filter
lookup_plugins = {root}/plugins/lookup
action_plugins = {stock_actions}
inventory_plugins = {root}/plugins/inventory
collections_path = {root}/collections
inventory = {root}/inventories/dev
[inventory]
enable_plugins = quantbot_topology, ansible.builtin.host_list
"""


def machine() -> dict[str, Any]:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = int(next(ln.split()[1] for ln in Path("/proc/meminfo").read_text().splitlines()
                      if ln.startswith("MemTotal")))
    core = subprocess.run([BIN / "ansible", "--version"], capture_output=True, text=True).stdout
    docker = shutil.which("docker") and subprocess.run(
        ["docker", "version", "--format", "{{.Server.Version}}"], capture_output=True, text=True,
    ).stdout.strip()
    return {
        "cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(mem_kb / 2**20, 1),
        "kernel": platform.release(), "python": platform.python_version(),
        "ansible_core": core.splitlines()[0] if core else "unknown", "docker": docker or None,
        "commit": subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                                 capture_output=True, text=True).stdout.strip(),
    }


def run(cmd: list[str], env: dict[str, str] | None = None, log: Path | None = None,
        cwd: Path = ROOT) -> tuple[float, int, str]:
    """Wall seconds, exit status and output of one command."""
    start = time.monotonic()
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, env={**os.environ, **(env or {})},
                          capture_output=True, text=True)
    took = time.monotonic() - start
    out = proc.stdout + proc.stderr
    if log:
        log.write_text(out)
    return round(took, 2), proc.returncode, out


def median(values: list[float]) -> float:
    return round(statistics.median(values), 2)


# --------------------------------------------------------------------------- inventory

def topology(hosts: int) -> str:
    """An AWS-shaped topology of `hosts` hosts in ten classes over three AZs, with bastions."""
    groups = [["trading", "lowlatency"], ["gpu"], ["postgresql"], ["redis"], ["monitoring"],
              ["backup"], ["bastion"], [], [], []]
    per = hosts // len(groups)
    classes = "\n".join(f"  - {{name: c{i}, count: {per}, groups: {json.dumps(g)}, instance_type: m7i.large}}"
                        for i, g in enumerate(groups))
    return textwrap.dedent("""\
        plugin: quantbot_topology
        environment: prod
        provider: aws
        aws: {vpc_cidr: 10.20.0.0/16}
        regions: [{name: eu-west-1, azs: [eu-west-1a, eu-west-1b, eu-west-1c]}]
        classes:
        """) + classes + "\n"


PARSE = """
import sys, time
from ansible.parsing.dataloader import DataLoader
from ansible.inventory.manager import InventoryManager
from ansible.plugins.loader import init_plugin_loader
init_plugin_loader()
start = time.monotonic()
inv = InventoryManager(loader=DataLoader(), sources=[sys.argv[1]])
assert len(inv.hosts) == int(sys.argv[2]), len(inv.hosts)
print("parse_seconds", round(time.monotonic() - start, 3))
"""


FLOOR_ROW = "ansible-inventory --list, INI, no vars (floor)"


def bench_inventory(rounds: int, work: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for hosts in (1000, 10000):
        inv_dir = work / f"inv{hosts}"
        inv_dir.mkdir()
        (inv_dir / "topology.yml").write_text(topology(hosts))
        cache_dir = work / f"cache{hosts}"
        rows: dict[str, list[float]] = {}
        env_plain = {"ANSIBLE_INVENTORY_CACHE": "false"}
        env_cache = {"ANSIBLE_INVENTORY_CACHE": "true",
                     "ANSIBLE_INVENTORY_CACHE_PLUGIN": "ansible.builtin.jsonfile",
                     "ANSIBLE_INVENTORY_CACHE_CONNECTION": str(cache_dir)}
        # ansible-core's own cost for as many hosts: one INI file, one group, no variable at all;
        # no inventory plugin can make `--list` faster than this
        floor = work / f"ini{hosts}" / "hosts.ini"
        floor.parent.mkdir()
        floor.write_text("[fleet]\n" + "".join(f"h{i:05d}\n" for i in range(hosts)))
        env_floor = {"ANSIBLE_INVENTORY_ENABLED": "ansible.builtin.ini", **env_plain}
        # warm the cache once, so the cached rows measure a hit
        run([BIN / "ansible-inventory", "-i", inv_dir, "--list"], env_cache)
        for _ in range(rounds):
            for label, env in (("", env_plain), (" (cache)", env_cache)):
                took, rc, text = run([BIN / "python", "-c", PARSE, inv_dir / "topology.yml", hosts], env)
                if rc:
                    raise SystemExit(f"inventory parse failed:\n{text[-2000:]}")
                parsed = re.search(r"^parse_seconds (\S+)$", text, re.M)
                rows.setdefault("plugin parse" + label, []).append(float(parsed.group(1)))
                for flag in ("--list", "--graph"):
                    took, rc, text = run([BIN / "ansible-inventory", "-i", inv_dir, flag], env)
                    if rc:
                        raise SystemExit(f"ansible-inventory {flag} failed:\n{text[-2000:]}")
                    rows.setdefault(f"ansible-inventory {flag}" + label, []).append(took)
            took, rc, text = run([BIN / "ansible-inventory", "-i", floor, "--list"], env_floor)
            if rc:
                raise SystemExit(f"ansible-inventory --list of {floor} failed:\n{text[-2000:]}")
            rows.setdefault(FLOOR_ROW, []).append(took)
        out[str(hosts)] = {name: {"median_s": median(v), "runs_s": v} for name, v in rows.items()}
    return out


# --------------------------------------------------------------------------- runner

def bench_runner(rounds: int, work: Path) -> dict[str, Any]:
    # inside the project: the runner API takes playbooks from it
    book = ROOT / "bench" / "playbooks" / "noop.yml"
    inv = work / "localhost.ini"
    inv.write_text(f"localhost ansible_connection=local ansible_python_interpreter={BIN / 'python'}\n")
    env = {"ANSIBLE_INVENTORY_ENABLED": "ansible.builtin.ini"}
    api = (
        "import sys; from quantbot_infra.runner import run_playbook; "
        "r = run_playbook(sys.argv[1], 'dev', inventory=sys.argv[2]); sys.exit(0 if r.ok else 1)"
    )
    rows: dict[str, list[float]] = {"ansible-playbook": [], "runner API": []}
    for _ in range(rounds):
        took, rc, text = run([BIN / "ansible-playbook", "-i", inv, book], env)
        if rc:
            raise SystemExit(f"ansible-playbook failed:\n{text[-2000:]}")
        rows["ansible-playbook"].append(took)
        took, rc, text = run([BIN / "python", "-c", api, book, inv], env)
        if rc:
            raise SystemExit(f"runner API run failed:\n{text[-2000:]}")
        rows["runner API"].append(took)
    out = {name: {"median_s": median(v), "runs_s": v} for name, v in rows.items()}
    out["overhead_s"] = round(out["runner API"]["median_s"] - out["ansible-playbook"]["median_s"], 2)
    return out


# --------------------------------------------------------------------------- converge

RECAP = re.compile(r"^(\S+)\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


# each of the project's actions, as the builtin it stands in for: the builtin's own action
# (template, copy) or its module run directly (file, systemd_service, apt)
STOCK_ACTIONS = {
    "qb_template": "from ansible.plugins.action.template import ActionModule  # noqa: F401\n",
    "qb_copy": "from ansible.plugins.action.copy import ActionModule  # noqa: F401\n",
    **{name: textwrap.dedent(f"""\
        from ansible.plugins.action import ActionBase


        class ActionModule(ActionBase):
            def run(self, tmp=None, task_vars=None):
                result = super().run(tmp, task_vars)
                result.update(self._execute_module(module_name="ansible.legacy.{module}",
                                                   module_args=dict(self._task.args), task_vars=task_vars))
                return result
        """) for name, module in (("qb_file", "file"), ("qb_service", "systemd_service"),
                                  ("qb_packages", "apt"))},
}


def settings(work: Path) -> dict[str, dict[str, str] | None]:
    actions = work / "stock_actions"
    actions.mkdir(exist_ok=True)
    for name, code in STOCK_ACTIONS.items():
        (actions / f"{name}.py").write_text(code)
    missing = {p.stem for p in (ROOT / "plugins" / "action").glob("qb_*.py")} - set(STOCK_ACTIONS)
    if missing:
        raise SystemExit(f"bench: no stock stand-in for the project's actions {sorted(missing)}")
    stock = work / "stock.cfg"
    stock.write_text(STOCK_CFG.format(root=ROOT, stock_actions=actions))
    rows: dict[str, dict[str, str] | None] = {
        "stock Ansible": {"ANSIBLE_CONFIG": str(stock)},
        "project": {"ANSIBLE_CONFIG": str(ROOT / "ansible.cfg")},
    }
    try:
        # opt-in: installed by the user, never by the project
        import ansible_mitogen
        strategies = Path(ansible_mitogen.__file__).parent / "plugins" / "strategy"
        rows["project + Mitogen"] = {"ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
                                     "ANSIBLE_STRATEGY_PLUGINS": str(strategies),
                                     "ANSIBLE_STRATEGY": "mitogen_linear"}
    except ImportError:
        rows["project + Mitogen"] = None
    return rows


def slug(row: str) -> str:
    """A row's name as part of a log file's name."""
    return row.replace(" ", "-").replace("+", "plus")


def fleet_hosts() -> list[str]:
    _, rc, text = run([BIN / "ansible-inventory", "-i", ROOT / "inventories" / "dev", "--list"])
    if rc:
        raise SystemExit(f"the dev inventory does not load:\n{text[-2000:]}")
    return sorted(json.loads(text)["_meta"]["hostvars"])


def fleet_up(hosts: list[str]) -> bool:
    names = subprocess.run(["docker", "ps", "--format", "{{.Names}}"], capture_output=True,
                           text=True).stdout.split()
    return set(hosts) <= set(names)


def converge(env: dict[str, str], log: Path, extra: list[str] = ()) -> dict[str, Any]:
    took, rc, text = run([BIN / "ansible-playbook", ROOT / "playbooks" / "site.yml", *extra], env, log)
    recap = {h: {"ok": int(o), "changed": int(c), "unreachable": int(u), "failed": int(f)}
             for h, o, c, u, f in RECAP.findall(text)}
    return {"seconds": took, "rc": rc, "changed": sum(r["changed"] for r in recap.values()),
            "hosts": len(recap), "log": str(log.relative_to(ROOT))}


def profile(work: Path, logs: Path) -> dict[str, Any]:
    """One run of the project's settings with the JSON callback: per task, its wall time."""
    if not fleet_up(fleet_hosts()):
        return {"skipped": "the dev fleet is not running: `make up` first"}
    env = {"ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json"}
    took, _, text = run([BIN / "ansible-playbook", ROOT / "playbooks" / "site.yml"], env,
                        logs / "profile.json")
    if "{" not in text:
        where = (logs / "profile.json").relative_to(ROOT)
        return {"failed": f"the profiled run printed no JSON (see {where})"}
    return {"seconds": took, **profile_of(text)}


def profile_of(text: str) -> dict[str, Any]:
    """Per task, role and action: wall time and executions, from the JSON callback's output."""
    # the callback's document, then whatever ansible-playbook printed on stderr after it
    data, _ = json.JSONDecoder().raw_decode(text, text.index("{"))

    def secs(d):
        if "end" not in d:  # a play that ran no task
            return 0.0
        end, start = (datetime.fromisoformat(d[k].rstrip("Z")) for k in ("end", "start"))
        return (end - start).total_seconds()

    tasks, roles, actions, plays, results = [], {}, {}, {}, 0
    for play in data["plays"]:
        name = play["play"]["name"]
        plays[name] = round(plays.get(name, 0.0) + secs(play["play"]["duration"]), 1)
        for task in play["tasks"]:
            t = secs(task["task"]["duration"])
            label = task["task"]["name"]
            role = label.split(" : ", 1)[0] if " : " in label else f"(play) {name}"
            ran = [h for h in task["hosts"].values() if not h.get("skipped")]
            action = next((h["action"] for h in task["hosts"].values() if h.get("action")), "?")
            results += len(task["hosts"])
            tasks.append({"task": label, "play": name, "action": action, "seconds": round(t, 2),
                          "hosts": len(task["hosts"]), "executed": len(ran)})
            roles[role] = roles.get(role, 0.0) + t
            a = actions.setdefault(action, {"seconds": 0.0, "executions": 0})
            a["seconds"] += t
            a["executions"] += len(ran)
    tasks.sort(key=lambda t: -t["seconds"])
    by_time = sorted(actions.items(), key=lambda x: -x[1]["seconds"])
    return {"tasks": len(tasks), "task_host_results": results, "plays": plays,
            "slowest_tasks": tasks[:25],
            "roles": dict(sorted(((r, round(s, 1)) for r, s in roles.items()), key=lambda x: -x[1])),
            "actions": {a: {"seconds": round(v["seconds"], 1), "executions": v["executions"]}
                        for a, v in by_time}}


def bench_converge(rounds: int, work: Path, logs: Path) -> dict[str, Any]:
    hosts = fleet_hosts()
    if not fleet_up(hosts):
        return {"skipped": f"the dev fleet ({len(hosts)} hosts) is not running: `make up` first"}
    rows = settings(work)
    out: dict[str, Any] = {"hosts": len(hosts)}
    runs: dict[str, list[dict[str, Any]]] = {}
    # a first run of the project's settings so every row starts from a converged fleet
    warm = converge(rows["project"], logs / "converge-warm.log")
    if warm["rc"]:
        return {"failed": f"the dev fleet does not converge (see {warm['log']})"}
    for i in range(rounds):
        for name, env in rows.items():
            if env is None:
                continue
            res = converge(env, logs / f"converge-{slug(name)}-{i}.log")
            if res["rc"] or res["changed"]:
                res["note"] = "not a clean no-change run: see its log"
            runs.setdefault(name, []).append(res)
    for name, env in rows.items():
        if env is None:
            out[name] = {"skipped": "Mitogen is not installed (opt-in row: install it in the venv to see it)"}
            continue
        out[name] = {"median_s": median([r["seconds"] for r in runs[name]]), "runs": runs[name]}
    base = out["stock Ansible"]["median_s"]
    for name in rows:
        if "median_s" in out[name]:
            out[name]["speedup_vs_stock"] = round(base / out[name]["median_s"], 2)
    return out


def bench_first(work: Path, logs: Path) -> dict[str, Any]:
    hosts = fleet_hosts()
    out: dict[str, Any] = {"hosts": len(hosts)}
    for name, env in settings(work).items():
        if env is None:
            out[name] = {"skipped": "Mitogen is not installed"}
            continue
        row = slug(name)
        _, rc, text = run([BIN / "quantbot-infra", "down", "dev"], log=logs / f"first-{row}-down.log")
        if rc:
            raise SystemExit(f"`quantbot-infra down dev` failed:\n{text[-2000:]}")
        _, rc, text = run([BIN / "ansible-playbook", ROOT / "playbooks" / "provision.yml"],
                          {"ANSIBLE_CONFIG": str(ROOT / "ansible.cfg")}, logs / f"first-{row}-provision.log")
        if rc:
            raise SystemExit(f"provisioning the dev fleet failed:\n{text[-2000:]}")
        out[name] = converge(env, logs / f"first-{row}.log")
    return out


# --------------------------------------------------------------------------- suite

def bench_suite() -> dict[str, Any]:
    record = ROOT / ".state" / "test-results" / "last-run.tsv"
    if not record.exists():
        return {"skipped": "no `make test` has run on this machine yet"}
    fields = dict(line.split(" ", 1) for line in record.read_text().splitlines() if " " in line)
    meta = {k: fields.pop(k) for k in ("commit", "finished", "lanes") if k in fields}
    # not "failed": that key marks a section that could not be measured
    meta["failed_jobs"] = int(fields.pop("failed", 0))
    return {**meta, "stages_s": {k: int(v) for k, v in fields.items()}}


# --------------------------------------------------------------------------- table

def table(result: dict[str, Any]) -> str:
    lines = [f"machine: {result['machine']['cores']} cores, {result['machine']['cpu']}, "
             f"{result['machine']['memory_gib']} GiB; {result['machine']['ansible_core']}"]

    def row(label, value):
        lines.append(f"  {label:<44} {value}")

    for section in SECTIONS:
        data = result.get(section)
        if data is None:
            continue
        lines.append(f"{section}:")
        if "skipped" in data or "failed" in data:
            row("", data.get("skipped") or data.get("failed"))
            continue
        if section == "inventory":
            for hosts, rows in data.items():
                for name, v in rows.items():
                    row(f"{int(hosts):,} hosts: {name}", f"{v['median_s']:7.2f} s")
        elif section == "runner":
            for name in ("ansible-playbook", "runner API"):
                row(name, f"{data[name]['median_s']:7.2f} s")
            row("overhead of the runner API", f"{data['overhead_s']:7.2f} s")
        elif section in ("converge", "first"):
            for name, v in data.items():
                if not isinstance(v, dict):
                    continue
                if "skipped" in v:
                    row(name, v["skipped"])
                else:
                    secs = v.get("median_s", v.get("seconds"))
                    extra = f"  {v['speedup_vs_stock']:.2f}x stock's speed" if "speedup_vs_stock" in v else ""
                    row(f"{name} ({data['hosts']} hosts)", f"{secs:7.1f} s{extra}")
        elif section == "profile":
            row("profiled run (project settings)", f"{data['seconds']:7.1f} s, {data['tasks']} tasks, "
                                                   f"{data['task_host_results']} task results")
            for role, secs in list(data["roles"].items())[:10]:
                row(f"  role {role}"[:44], f"{secs:7.1f} s")
            for action, v in list(data["actions"].items())[:6]:
                row(f"  {action} ({v['executions']} calls)"[:44], f"{v['seconds']:7.1f} s")
            for t in data["slowest_tasks"][:10]:
                row(f"  {t['task']}"[:44], f"{t['seconds']:7.2f} s")
        elif section == "suite":
            row(f"last `make test` ({data.get('commit')}, {data.get('lanes')} lanes)",
                data.get("finished", ""))
            for name, secs in data["stages_s"].items():
                row(name, f"{secs:7d} s")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", action="append", choices=SECTIONS, help="run only these sections")
    p.add_argument("--first", action="store_true", help="also the first converge (recreates the dev fleet)")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds of the quick sections")
    p.add_argument("--converge-rounds", type=int, default=1, help="interleaved rounds of the converge rows")
    p.add_argument("--profile-log", type=Path, metavar="FILE",
                   help="section profile: read this earlier profiled run's output instead of running one")
    args = p.parse_args(argv)
    wanted = args.only or [s for s in SECTIONS if s != "first" or args.first]
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    logs = RESULTS / f"{stamp}-logs"
    logs.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {"started": stamp, "machine": machine()}
    out = RESULTS / f"{stamp}.json"
    with tempfile.TemporaryDirectory(prefix="qb-bench-") as tmp:
        work = Path(tmp)
        for section in wanted:
            print(f"== {section}", file=sys.stderr, flush=True)
            if section == "inventory":
                result[section] = bench_inventory(args.rounds, work)
            elif section == "runner":
                result[section] = bench_runner(args.rounds, work)
            elif section == "converge":
                result[section] = bench_converge(args.converge_rounds, work, logs)
            elif section == "profile" and args.profile_log:
                result[section] = {"from": str(args.profile_log), **profile_of(args.profile_log.read_text())}
                result[section]["seconds"] = round(sum(result[section]["plays"].values()), 1)
            elif section == "profile":
                result[section] = profile(work, logs)
            elif section == "first":
                result[section] = bench_first(work, logs)
            elif section == "suite":
                result[section] = bench_suite()
            # kept after every section, so a later one's failure loses nothing measured
            out.write_text(json.dumps(result, indent=2) + "\n")
    print(table(result))
    print(f"results: {out.relative_to(ROOT)} (logs: {logs.relative_to(ROOT)}/)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
