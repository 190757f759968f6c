"""After every drill, the declared state is back and a re-run changes nothing."""

from conftest import playbook, recap


def test_check_mode_then_real_run_report_no_change():
    checked = recap(playbook("network.yml", "--check").stdout)
    assert {h: c["changed"] for h, c in checked.items()} == dict.fromkeys(checked, 0)
    again = recap(playbook("network.yml").stdout)
    assert {h: c["changed"] for h, c in again.items()} == dict.fromkeys(again, 0)
