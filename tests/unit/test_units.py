"""quantbot_infra.units: the one-command unit reader behind qb_service. The outputs below were
printed by state_command on a test host of the project's image (bookworm, systemd 252)."""

import pytest

from quantbot_infra import units

SSH = "QB_UNIT LoadState=loaded ActiveState=active enabled=enabled\nQB_UNIT initd\n"
PG = "QB_UNIT LoadState=loaded ActiveState=active enabled=enabled\n"
MISSING = "QB_UNIT LoadState=not-found ActiveState=inactive enabled=\n"
STATIC = "QB_UNIT LoadState=loaded ActiveState=active enabled=static\n"
MASKED = "QB_UNIT LoadState=masked ActiveState=inactive enabled=masked\n"
STOPPED = "QB_UNIT LoadState=loaded ActiveState=inactive enabled=disabled\n"
STOPPED_SYSV = STOPPED + "QB_UNIT initd\n"
STOPPING = "QB_UNIT LoadState=loaded ActiveState=deactivating enabled=disabled\n"


def judged(stdout, **args):
    return units.holds(units.parse_state(0, stdout), {"name": "x", **args})


@pytest.mark.parametrize(("stdout", "args", "held"), [
    (SSH, {"state": "started", "enabled": True}, True),  # a SysV script does not matter when enabled
    (PG, {"state": "started"}, True),
    (PG, {"state": "stopped"}, False),
    (PG, {"enabled": False}, False),
    (STOPPED, {"state": "stopped", "enabled": False}, True),
    (STOPPED, {"state": "started"}, False),
    (STOPPED_SYSV, {"enabled": False}, False),  # the module asks the SysV script
    (STOPPING, {"state": "stopped"}, False),  # as the module: a unit still stopping is stopped again
    (STATIC, {"state": "started"}, True),
    (STATIC, {"enabled": True}, False),  # static, alias, indirect: the module knows
    (MISSING, {"state": "stopped"}, False),  # the module reports a missing unit
    (MASKED, {"state": "stopped"}, False),
    # enabled as a templated value reads as the module reads it
    (PG, {"enabled": "yes"}, True),
    (PG, {"enabled": "no"}, False),
    (STOPPED, {"enabled": "false"}, True),
    (PG, {"enabled": "maybe"}, False),  # not a boolean: the module refuses it
])
def test_the_module_is_skipped_only_when_the_unit_already_is_as_asked(stdout, args, held):
    assert judged(stdout, **args) is held


@pytest.mark.parametrize(("args", "plannable"), [
    ({"name": "ssh", "state": "started", "enabled": True}, True),
    ({"name": "ssh", "enabled": False}, True),
    ({"name": "ssh", "state": "started", "daemon_reload": False}, True),
    ({"name": "ssh"}, False),
    ({"name": "ssh", "state": "restarted"}, False),
    ({"name": "ssh", "state": "reloaded"}, False),
    ({"name": "ssh", "state": "started", "daemon_reload": True}, False),
    ({"name": "ssh", "state": "started", "masked": False}, True),
    ({"name": "ssh", "masked": True, "state": "stopped"}, False),
    ({"name": "ssh", "state": "started", "scope": "user"}, False),
    ({"state": "started"}, False),
])
def test_only_what_the_reader_can_judge_takes_the_fast_path(args, plannable):
    assert units.plannable(args) is plannable


def test_output_it_does_not_understand_goes_to_the_module():
    assert units.parse_state(1, PG) is None
    assert units.parse_state(0, "") is None
    assert units.parse_state(0, "QB_UNIT enabled=enabled\n") is None
    assert not units.holds(None, {"name": "x", "state": "started"})


def test_the_command_quotes_the_unit_name():
    cmd = units.state_command("a b.service")
    assert "-- 'a b.service'" in cmd and "'/etc/init.d/a b'" in cmd
