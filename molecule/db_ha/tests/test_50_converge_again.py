"""After backup, restore and both failovers the roles still converge to the same state: a check
run reports nothing to change. The real run that changes nothing is test_90's (it also samples
every process for secrets), so the scenario converges once more, not twice."""

from conftest import playbook, recap


def test_check_mode_reports_nothing_to_change_after_the_drills():
    checked = recap(playbook("data.yml", "--check").stdout)
    assert checked and all(c["changed"] == 0 and c["failed"] == 0 for c in checked.values()), checked
