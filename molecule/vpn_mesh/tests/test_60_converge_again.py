"""After every drill (key rotation, a ruleset that cut the run off and was reverted, rulesets
refused by nft's check) the declared state is back: a check run reports nothing to change on any
host. Molecule's idempotence step already proved that a real second run changes nothing; a check
run proves that the state the drills leave is the declared one, without a third full converge."""

from conftest import playbook, recap


def test_check_mode_reports_no_change_after_the_drills():
    checked = recap(playbook("network.yml", "--check").stdout)
    assert len(checked) >= 6
    assert {h: (c["changed"], c["failed"]) for h, c in checked.items()} == dict.fromkeys(checked, (0, 0))
