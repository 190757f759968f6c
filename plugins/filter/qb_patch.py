"""Filters of the patch playbook: thin shims over quantbot_infra.freeze and quantbot_infra.patching.

Each turns the package's ValueError into an AnsibleFilterError whose message says what to fix.
"""

from __future__ import annotations

from datetime import datetime

from quantbot_infra import freeze, patching
from quantbot_infra.filters import call as _call


def _now(text):
    if not text:
        return freeze.utcnow()
    try:
        value = datetime.fromisoformat(str(text))
    except ValueError:
        raise ValueError(f"patch_now: {text!r} is not an ISO date and time with its offset") from None
    if value.tzinfo is None:
        raise ValueError(f"patch_now: {text!r} lacks its offset (e.g. +00:00)")
    return value


def patch_freezes(windows, market_hours, now=""):
    """``patch_freeze_windows | qb_patch_freezes(patch_market_hours, patch_now)``: the freezes in
    force now (or at `now`, an ISO time with offset), each {kind, name, zone, start, end, text}."""
    def run():
        return [f.as_dict() for f in freeze.active(_now(now), windows or [], market_hours or [])]
    return _call(run)


def patch_order(hosts, serial=None, canary="", class_order=None, members=None):
    """``hosts | qb_patch_order(patch_serial, patch_canary, patch_class_order, members)``: batches,
    their sizes for `serial`, and the hosts in order."""
    return _call(patching.plan, list(hosts), dict(serial or {}), str(canary or ""), list(class_order or []),
                 dict(members or {}))


def patch_summary(plan, records):
    """``plan_record | qb_patch_summary(records)``: the run's summary from its host records."""
    return _call(patching.summary, dict(plan or {}), list(records or []))


def patch_unchanged(upgrades):
    """``patch_host_plan.upgrades | qb_patch_unchanged``: a host's record of packages it was to
    upgrade but did not (its run stopped first): each at its current version before and after."""
    return [{"name": u["name"], "before": u.get("current"), "after": u.get("current")}
            for u in upgrades or []]


class FilterModule:
    def filters(self):
        return {"qb_patch_freezes": patch_freezes, "qb_patch_order": patch_order,
                "qb_patch_summary": patch_summary, "qb_patch_unchanged": patch_unchanged}
