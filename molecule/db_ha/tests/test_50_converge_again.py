"""After backup, restore and both failovers the roles still converge to the same state: a check
run reports nothing to change, and a real run changes nothing (the running primaries win)."""

from conftest import playbook, recap


def test_check_mode_then_idempotent_run_after_the_drills():
    checked = recap(playbook("data.yml", "--check").stdout)
    assert checked and all(c["changed"] == 0 and c["failed"] == 0 for c in checked.values()), checked
    ran = recap(playbook("data.yml").stdout)
    assert ran and all(c["changed"] == 0 and c["failed"] == 0 for c in ran.values()), ran
