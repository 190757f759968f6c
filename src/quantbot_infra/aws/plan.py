"""What ``up`` or ``down`` would do: the desired resources against the observed ones. Pure.

Each step is ``create``, ``keep``, ``update`` (a kept resource whose rules, subnets or
termination protection differ), ``destroy``, ``foreign`` (not the environment's: kept),
``drift`` (differs in what cannot change in place: reported, not applied) or ``skip`` (the
endpoint lacks the API).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from quantbot_infra.aws.observe import Found, Observed
from quantbot_infra.aws.spec import KINDS, Resource

# settings of a kept resource that an update puts right
_SETTINGS = ("versioning", "encryption", "public_access", "lifecycle", "policy")
SYMBOL = {
    "create": "+",
    "keep": "=",
    "update": "~",
    "destroy": "-",
    "foreign": "!",
    "drift": "?",
    "skip": "x",
}


@dataclass
class Step:
    action: str
    kind: str
    key: str
    region: str
    name: str = ""
    id: str = ""
    detail: str = ""
    resource: Resource | None = None
    found: Found | None = None

    def line(self) -> str:
        what = self.key or self.id
        label = {"foreign": "foreign, kept", "drift": "drift, not applied"}.get(self.action, self.action)
        ident = f" {self.id}" if self.id else ""
        detail = f"  ({self.detail})" if self.detail else ""
        return f"  {SYMBOL[self.action]} {label:<14} {self.kind:<9} {what:<30}{ident}{detail}"


@dataclass
class Plan:
    env: str
    where: str
    steps: list[Step] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def of(self, *actions: str) -> list[Step]:
        return [s for s in self.steps if s.action in actions]

    @property
    def changes(self) -> bool:
        return bool(self.of("create", "update", "destroy"))

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for s in self.steps:
            out[s.action] = out.get(s.action, 0) + 1
        return out

    def summary(self) -> str:
        c = self.counts()
        parts = [f"{c.get(a, 0)} to {a}" for a in ("create", "update", "destroy")]
        parts.append(f"{c.get('keep', 0)} kept")
        parts += [
            f"{c[a]} {label}"
            for a, label in (("foreign", "foreign (kept)"), ("drift", "drifted"), ("skip", "skipped"))
            if c.get(a)
        ]
        return ", ".join(parts)

    def render(self) -> str:
        lines = [f"plan for {self.env} at {self.where}: {self.summary()}"]
        order = {k: i for i, k in enumerate(KINDS)}
        for s in sorted(
            self.steps,
            key=lambda s: (s.action in ("foreign", "skip"), s.region, order.get(s.kind, 99), s.key, s.id),
        ):
            lines.append(s.line())
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "env": self.env,
            "where": self.where,
            "summary": self.counts(),
            "notes": self.notes,
            "steps": [
                {
                    "action": s.action,
                    "kind": s.kind,
                    "key": s.key,
                    "region": s.region,
                    "id": s.id,
                    "detail": s.detail,
                }
                for s in self.steps
            ],
        }


def _differences(res: Resource, found: Found) -> tuple[list[str], list[str]]:
    """(what an update fixes, what cannot change in place)."""
    fix, drift = [], []
    for attr in res.compare:
        want, have = res.attrs.get(attr), found.attrs.get(attr)
        if attr == "rules":
            want_ids = {r.identity() for r in want}
            have_ids = {r.identity() for r in have}
            if want_ids != have_ids:
                fix.append(f"rules +{len(want_ids - have_ids)} -{len(have_ids - want_ids)}")
        elif attr == "subnets":
            if sorted(want) != sorted(have):
                fix.append("subnet associations")
        elif attr == "termination_protection":
            if bool(want) != bool(have):
                fix.append(f"termination protection {'on' if want else 'off'}")
        elif attr in _SETTINGS:
            if want != have:
                fix.append("the role's policy" if attr == "policy" else f"{attr} {have} -> {want}")
        elif want != have:
            drift.append(f"{attr} {have} -> {want}")
    return fix, drift


def plan_up(env: str, where: str, want: Iterable[Resource], obs: Observed) -> Plan:
    """Create what is missing, update what differs, destroy what the topology dropped."""
    plan = Plan(env, where)
    wanted = {r.key: r for r in want}
    for res in wanted.values():
        if res.kind in obs.unsupported:
            plan.steps.append(
                Step("skip", res.kind, res.key, res.region, res.name, detail=obs.unsupported[res.kind])
            )
            continue
        found = obs.owned.get(res.key)
        if found is None:
            plan.steps.append(
                Step("create", res.kind, res.key, res.region, res.name, resource=res, detail=_describe(res))
            )
            continue
        fix, drift = _differences(res, found)
        if drift:
            plan.steps.append(
                Step(
                    "drift",
                    res.kind,
                    res.key,
                    res.region,
                    res.name,
                    found.id,
                    "; ".join(drift) + ": change it by hand or remove the slot and add it again",
                    res,
                    found,
                )
            )
        if fix or not drift:
            plan.steps.append(
                Step(
                    "update" if fix else "keep",
                    res.kind,
                    res.key,
                    res.region,
                    res.name,
                    found.id,
                    "; ".join(fix),
                    res,
                    found,
                )
            )
    for key, found in obs.owned.items():
        if key not in wanted:
            plan.steps.append(
                Step(
                    "destroy",
                    found.kind,
                    key,
                    found.region,
                    found.name,
                    found.id,
                    _gone_reason(found),
                    found=found,
                )
            )
    _foreign(plan, obs)
    plan.notes += sorted(set(obs.unsupported.values()) - {s.detail for s in plan.of("skip")})
    return plan


def plan_down(env: str, where: str, obs: Observed, *, delete_backups: bool = False) -> Plan:
    """Destroy everything the environment owns and what its instances left behind; containers
    (VPC, subnets, gateway, route tables) that hold foreign resources are kept, and so is the
    off-site backup bucket unless ``delete_backups``."""
    plan = Plan(env, where)
    blocked_vpcs = {_vpc_of(f) for f in obs.foreign} - {None}
    for key, found in obs.owned.items():
        vpc_id = found.id if found.kind == "vpc" else _vpc_of(found)
        kept = None
        if found.kind == "bucket" and not delete_backups:
            kept = "the off-site backups outlive the environment: down --delete-backups removes them"
        elif found.kind in ("vpc", "subnet", "igw", "rtb") and vpc_id in blocked_vpcs:
            kept = "its VPC holds foreign resources"
        plan.steps.append(
            Step(
                "keep" if kept else "destroy",
                found.kind,
                key,
                found.region,
                found.name,
                found.id,
                kept or "",
                found=found,
            )
        )
    for f in obs.leftovers:
        plan.steps.append(Step("destroy", f.kind, "", f.region, f.name, f.id, "left behind", found=f))
    _foreign(plan, obs)
    if blocked_vpcs:
        plan.notes.append(
            "the VPC stays while it holds foreign resources: remove them (or their "
            "owner does), then run down again"
        )
    return plan


def _foreign(plan: Plan, obs: Observed) -> None:
    for f in obs.foreign:
        plan.steps.append(
            Step(
                "foreign",
                f.kind,
                f.key,
                f.region,
                f.name,
                f.id,
                "no ownership tags for this environment",
                found=f,
            )
        )


def _vpc_of(found: Found) -> str | None:
    if found.attrs.get("vpc_id"):
        return found.attrs["vpc_id"]
    return (found.attrs.get("vpc_ids") or [None])[0]


def _describe(res: Resource) -> str:
    a = res.attrs
    if res.kind in ("vpc", "subnet"):
        return a["cidr"] + (f" in {a['az']}" if "az" in a else "")
    if res.kind == "sg":
        return f"{len(a['rules'])} ingress rules"
    if res.kind == "bucket":
        return f"{res.name}: versioned, {a['encryption']}, private, old versions kept {a['lifecycle']} days"
    if res.kind == "profile":
        return f"{res.name}: the backup hosts' role, this bucket's objects only"
    if res.kind in ("nat", "eip", "rtb", "igw", "placement"):
        return res.name
    if res.kind == "instance":
        bits = [a["instance_type"], a["az"], "public" if a["public"] else "private"]
        if a["spot"]:
            bits.append("spot")
        if a["volume"]:
            bits.append(f"{a['volume']['size_gb']} GiB {a['volume']['type']} encrypted")
        if a["termination_protection"]:
            bits.append("termination protection")
        return ", ".join(bits)
    return ""


def _gone_reason(found: Found) -> str:
    if found.kind == "instance":
        return f"slot no longer in the topology ({found.attrs.get('instance_type')}, {found.attrs.get('az')})"
    return "no longer in the topology"
