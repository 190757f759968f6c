"""The order of a patch run: a canary first, then each class in batches (`serial` per class),
with the data tier's rules - PostgreSQL replicas before the primary, whose turn starts with a
planned switchover; Redis replicas before a sentinel failover of the primary - and one host at a
time where a host is a site's gateway or a trading host. Pure: the patch playbook feeds it what it
read on the hosts and turns the result into Ansible's `serial` batches.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

ONE_AT_A_TIME = ("vpn_gateway", "trading", "lowlatency")
DEFAULT_SERIAL = [1, "25%", "100%"]
_PCT = re.compile(r"^([1-9][0-9]?|100)%$")


class PatchPlanError(ValueError):
    """Input the plan cannot be made from; the message names the variable."""


def serial_sizes(spec, count: int, where: str = "patch_serial") -> list[int]:
    """Ansible's serial list (ints and "N%" of `count`, the last repeating) -> batch sizes that
    add up to `count`."""
    items = spec if isinstance(spec, list) else [spec]
    if not items:
        raise PatchPlanError(f"{where} is empty")
    sizes = []
    for item in items:
        if isinstance(item, int) and not isinstance(item, bool) and item >= 1:
            sizes.append(item)
        elif isinstance(item, str) and _PCT.match(item.strip()):
            sizes.append(max(1, math.floor(count * int(item.strip()[:-1]) / 100)))
        elif isinstance(item, str) and item.strip().isdigit() and int(item) >= 1:
            sizes.append(int(item))
        else:
            raise PatchPlanError(f"{where}: {item!r} is neither a whole number >= 1 nor a "
                                 "percentage like 25%")
    out, left, i = [], count, 0
    while left > 0:
        size = min(sizes[min(i, len(sizes) - 1)], left)
        out.append(size)
        left -= size
        i += 1
    return out


def _chunks(names: list[str], sizes: list[int]) -> list[list[str]]:
    out, at = [], 0
    for size in sizes:
        out.append(names[at:at + size])
        at += size
    return out


def _role(host: dict, key: str) -> str | None:
    value = host.get(key)
    return value if value in ("primary", "replica") else None


def plan(hosts: list[dict], serial: dict | None = None, canary: str = "", class_order=None,
         members: dict | None = None) -> dict:
    """hosts: in topology order, each {name, class, groups, todo (bool), pg_role, redis_role}
    (roles 'primary'/'replica' where the host is in that tier). serial: class -> serial list, key
    'default' for the rest. Returns batches (index, hosts, class, kind, action), up_to_date,
    warnings and serial (the batch sizes, for Ansible). members: class -> every host of the class
    in the inventory (a run limited to a primary still has its replicas to switch over to)."""
    serial = dict(serial or {})
    members = dict(members or {})
    in_run = {h["name"] for h in hosts}
    classes = list(dict.fromkeys(h["class"] for h in hosts))
    # the topology's classes: a run limited to some hosts still takes the environment's settings
    known = set(classes) | set(members)
    unknown = [k for k in serial if k != "default" and k not in known]
    if unknown:
        raise PatchPlanError(f"patch_serial names class {unknown[0]!r}, which the topology does not have")
    if class_order:
        bad = [c for c in class_order if c not in known]
        if bad:
            raise PatchPlanError(f"patch_class_order names class {bad[0]!r}, which the topology "
                                 "does not have")
        classes = [c for c in class_order if c in classes] + [c for c in classes if c not in class_order]
    todo = [h for h in hosts if h.get("todo")]
    up_to_date = [h["name"] for h in hosts if not h.get("todo")]
    by_name = {h["name"]: h for h in todo}
    warnings: list[str] = []

    if canary:
        if canary not in in_run:
            raise PatchPlanError(f"patch_canary {canary!r} is not one of the hosts of this run")
        if canary not in by_name:
            warnings.append(f"canary {canary} has nothing to patch: the first batch is the canary")
            canary = ""
        else:
            h = by_name[canary]
            for key, tier in (("pg_role", "PostgreSQL"), ("redis_role", "Redis")):
                if _role(h, key) == "primary":
                    raise PatchPlanError(f"patch_canary {canary} is the {tier} primary: choose a "
                                         "host whose patch cannot take the tier down (a replica)")

    batches: list[dict] = []

    def add(names, cls, kind, action=None):
        if names:
            batches.append({"index": len(batches) + 1, "hosts": list(names), "class": cls,
                            "kind": kind, "action": action})

    if canary:
        add([canary], by_name[canary]["class"], "canary")
    for cls in classes:
        class_hosts = [h for h in todo if h["class"] == cls and h["name"] != canary]
        if not class_hosts:
            continue
        spec = serial.get(cls, serial.get("default", DEFAULT_SERIAL))
        where = f"patch_serial[{cls!r}]" if cls in serial else "patch_serial['default']"
        groups = set().union(*(set(h.get("groups") or []) for h in class_hosts))
        if groups & set(ONE_AT_A_TIME):
            spec = 1
        tier = next(((key, action) for key, action, group in (
            ("pg_role", "pg_switchover", "postgresql"), ("redis_role", "redis_failover", "redis"))
            if group in groups), None)
        primary = None
        if tier:
            key, action = tier
            primaries = [h for h in class_hosts if _role(h, key) == "primary"]
            if len(primaries) > 1:
                raise PatchPlanError(f"class {cls} reports {len(primaries)} primaries "
                                     f"({', '.join(h['name'] for h in primaries)}): split-brain, "
                                     "not patching")
            primary = primaries[0] if primaries else None
            if primary:
                class_hosts = [h for h in class_hosts if h is not primary]
        names = [h["name"] for h in class_hosts]
        for chunk in _chunks(names, serial_sizes(spec, len(names), where)):
            add(chunk, cls, "batch")
        if primary:
            peers = [h["name"] for h in hosts if h["class"] == cls and _role(h, key) == "replica"]
            peers += [n for n in members.get(cls, []) if n != primary["name"] and n not in in_run]
            if not peers:
                warnings.append(f"{primary['name']} is the only member of {cls}: patched in place, "
                                "the tier is down while it restarts")
                action = None
            add([primary["name"]], cls, "primary", action)
    if not canary:
        # the first host that is no tier's primary goes first, alone
        first = next((b for b in batches if b["kind"] == "batch"), None)
        if first is None:
            if batches:
                warnings.append("no host can be the canary (only primaries to patch): none is used")
        else:
            lead = first["hosts"].pop(0)
            if not first["hosts"]:
                batches.remove(first)
            batches.insert(0, {"index": 0, "hosts": [lead], "class": first["class"], "kind": "canary",
                               "action": None})
        for i, batch in enumerate(batches, 1):
            batch["index"] = i
    out = {"batches": batches, "up_to_date": up_to_date, "warnings": warnings,
           "serial": [len(b["hosts"]) for b in batches],
           "order": [name for b in batches for name in b["hosts"]]}
    out["segments"] = segments(out, members)
    return out


MAX_SEGMENTS = 4


def segments(plan: dict, members: dict | None = None) -> list[dict]:
    """The plan cut where a primary's turn needs its tier's switchover first: each segment is a
    run of batches (one Ansible play with `serial` = their sizes), and every segment but maybe the
    first starts with that action - pg_switchover or redis_failover of `primary`, on the class's
    `members` (every host of the class in the inventory)."""
    members = dict(members or {})
    out: list[dict] = []
    for batch in plan.get("batches", []):
        if batch.get("action") or not out:
            before = None
            if batch.get("action"):
                cls = batch["class"]
                before = {"action": batch["action"], "class": cls, "primary": batch["hosts"][0],
                          "members": list(members.get(cls) or batch["hosts"])}
            out.append({"index": len(out) + 1, "before": before, "batches": [], "hosts": [],
                        "serial": []})
        seg = out[-1]
        seg["batches"].append(batch["index"])
        seg["hosts"] += batch["hosts"]
        seg["serial"].append(len(batch["hosts"]))
    if len(out) > MAX_SEGMENTS:
        raise PatchPlanError(f"the run needs {len(out) - 1} switchovers; patch.yml makes at most "
                             f"{MAX_SEGMENTS - 1} in one run: split it with --limit")
    return out


# --- the run's records and its resume point ----------------------------------------------------

def summary(plan: dict, records: list[dict]) -> dict:
    """The run's summary from its per-host records (host, batch, started, finished, packages,
    kernel, rebooted, services_restarted, gates, result): per batch its hosts, wall time (first
    start to last finish) and result; totals; the hosts not reached."""
    by_host = {r["host"]: r for r in records}
    batches = []
    for batch in plan.get("batches", []):
        done = [by_host[h] for h in batch["hosts"] if h in by_host]
        if not done:
            state = "not reached"
        elif any(r.get("result") != "patched" for r in done):
            state = "failed"
        elif len(done) < len(batch["hosts"]):
            state = "partial"
        else:
            state = "patched"
        wall = (round(max(r["finished"] for r in done) - min(r["started"] for r in done), 1)
                if done else None)
        batches.append({"index": batch["index"], "kind": batch["kind"], "action": batch.get("action"),
                        "hosts": batch["hosts"], "result": state, "wall_s": wall})
    failed = [r["host"] for r in records if r.get("result") != "patched"]
    return {
        "result": "failed" if failed else ("patched" if records else "nothing done"),
        "hosts_patched": sorted(r["host"] for r in records if r.get("result") == "patched"),
        "hosts_failed": failed,
        "hosts_not_reached": [h for b in plan.get("batches", []) for h in b["hosts"] if h not in by_host],
        "rebooted": sorted(r["host"] for r in records if r.get("rebooted")),
        "packages_changed": sum(1 for r in records for p in r.get("packages", [])
                                if p.get("before") != p.get("after")),
        "batches": batches,
    }


def switchovers(facts: dict) -> list[dict]:
    """The data tier's switchovers of a run, from the hosts' facts (dr_failover.yml's
    postgresql_failover, the redis role's redis_failover): once each, though a fact set once per
    play lands on every host of it."""
    found: list[dict] = []
    for host_facts in facts.values():
        for key in ("postgresql_failover", "redis_failover"):
            if key in host_facts and host_facts[key] not in found:
                found.append(host_facts[key])
    return found


def resume_point(plan: dict, records: list[dict]) -> dict | None:
    """Where an interrupted run stands: the hosts patched (skipped by --resume), the host that
    failed and why, and what is left. None when the run completed."""
    patched = {r["host"] for r in records if r.get("result") == "patched"}
    failed = [r for r in records if r.get("result") != "patched"]
    left = [h for b in plan.get("batches", []) for h in b["hosts"] if h not in patched]
    if not left:
        return None
    return {"done": sorted(patched), "left": left,
            "failed": [{"host": r["host"], "why": r.get("why", "")} for r in failed]}


def read_run(state_dir) -> tuple[dict, list[dict]] | None:
    """The plan and host records of the environment's current (or last) patch run, as
    patch.yml keeps them under <state_dir>/patch/run; None when no run was started."""
    run = Path(state_dir) / "patch" / "run"
    if not (run / "plan.json").is_file():
        return None
    plan_doc = json.loads((run / "plan.json").read_text())
    records = [json.loads(p.read_text()) for p in sorted((run / "hosts").glob("*.json"))]
    return plan_doc, records
