"""A patch run refuses inside a freeze window before touching any host, and an override needs a
reason, which goes to the environment's audit log. No host is needed: the dev inventory's hosts
are never contacted (none runs here, so a contacted host would show as unreachable)."""

import json

from tests.integration.test_precheck import ROOT, ansible_playbook

NYSE = json.dumps({"patch_market_hours": [{"venue": "XNYS", "timezone": "America/New_York",
                                           "days": ["mon", "tue", "wed", "thu", "fri"],
                                           "open": "09:30", "close": "16:00"}]})
MONDAY_1000_NEW_YORK = "patch_now=2026-12-07T15:00:00+00:00"


def audit_lines():
    log = ROOT / ".state" / "dev" / "audit.log"
    return log.read_text().splitlines() if log.exists() else []


def test_inside_market_hours_the_run_refuses_before_any_host():
    before = audit_lines()
    out, text = ansible_playbook("playbooks/patch.yml", "-e", NYSE, "-e", MONDAY_1000_NEW_YORK)
    assert out.returncode != 0
    assert ("refusing to patch dev: market hours of XNYS: 2026-12-07 09:30 -> 2026-12-07 16:00 "
            "America/New_York. Nothing was changed.") in text, text[-2000:]
    assert "Simulate the upgrade" not in text and "UNREACHABLE" not in text
    assert audit_lines() == before


def test_an_override_without_a_reason_is_refused():
    out, text = ansible_playbook("playbooks/patch.yml", "-e", NYSE, "-e", MONDAY_1000_NEW_YORK,
                                 "-e", "patch_override_freeze=true", "-e", "patch_override_reason=because")
    assert out.returncode != 0
    assert "--override-freeze needs --reason with at least 10 characters" in text
    assert "UNREACHABLE" not in text


def test_an_override_with_a_reason_is_audited_then_the_hosts_are_read():
    before = audit_lines()
    out, text = ansible_playbook("playbooks/patch.yml", "-e", NYSE, "-e", MONDAY_1000_NEW_YORK,
                                 "-e", "patch_override_freeze=true", "-e", "patch_plan_only=true",
                                 "-e",
                                 "patch_override_reason='CVE fix for the exchange gateway, desk approved'",
                                 "--limit", "dev-gpu-01")
    new = [json.loads(line) for line in audit_lines()[len(before):]]
    assert [(r["event"], r["env"], r["reason"]) for r in new] == [
        ("patch_freeze_override", "dev", "CVE fix for the exchange gateway, desk approved")]
    assert new[0]["freezes"] == [
        "market hours of XNYS: 2026-12-07 09:30 -> 2026-12-07 16:00 America/New_York"]
    # past the freeze check the run goes on to the hosts (none runs here)
    assert out.returncode != 0 and "UNREACHABLE" in text


def test_outside_market_hours_there_is_nothing_to_override():
    _out, text = ansible_playbook("playbooks/patch.yml", "-e", NYSE,
                                  "-e", "patch_now=2026-12-05T15:00:00+00:00", "--limit", "dev-gpu-01")
    assert "refusing to patch" not in text and "UNREACHABLE" in text
