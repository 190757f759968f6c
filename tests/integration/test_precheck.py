"""Inputs are checked before any host changes: a wrong-typed role variable stops the run in the
precheck (naming the variable, the host and the expected type) and a --limit that matches no
host says so. No host is needed: the dev inventory's hosts are never contacted (none runs here,
so a contacted host would show as unreachable)."""

import os
import subprocess
import sys
from pathlib import Path

from quantbot_infra import cli
from quantbot_infra.runner import run_playbook

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def ansible_playbook(*args):
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}")
    out = subprocess.run([str(BIN / "ansible-playbook"), "-i", "inventories/dev", *args], capture_output=True,
                         text=True, cwd=ROOT, env=env, check=False, timeout=300)
    return out, " ".join((out.stdout + out.stderr).split())


def test_wrong_typed_variable_stops_the_run_before_any_host_is_touched():
    out, text = ansible_playbook("playbooks/site.yml", "-e", "postgresql_port=abc")
    assert out.returncode != 0
    for host in ("dev-pg-01", "dev-pg-02"):
        assert (f"{host}: role postgresql: argument 'postgresql_port' is of type str and we were unable to "
                "convert to int") in text, text[-3000:]
    assert "nothing was changed on any host" in text
    # the run ended in the precheck: no later play started, no host was contacted
    assert "Baseline every host" not in text and "UNREACHABLE" not in text


def test_every_bad_input_of_every_host_is_named_at_once():
    out, text = ansible_playbook("playbooks/site.yml", "-e", "base_users_enabled=maybe",
                                 "-e", '{"redis_sentinel_quorum": "two"}')
    assert out.returncode != 0
    bad_bool = "role base: argument 'base_users_enabled' is of type str and we were unable to convert to bool"
    assert f"dev-trading-01: {bad_bool}" in text
    assert "dev-redis-01: role base: argument 'base_users_enabled'" in text
    assert ("role redis: argument 'redis_sentinel_quorum' is of type str and we were unable to convert "
            "to int") in text
    assert "UNREACHABLE" not in text


def test_runner_reports_the_bad_input_with_host_and_no_host_contacted():
    result = run_playbook("data", "dev", extra_vars={"redis_port": "six"})
    assert not result.ok
    assert all(h.unreachable == 0 and h.changed == 0 for h in result.hosts.values())
    failed = {f.host: f.message for f in result.failed_tasks}
    assert set(failed) == {"dev-redis-01", "dev-redis-02", "dev-redis-03"}
    assert ("argument 'redis_port' is of type str and we were unable to convert to int"
            in failed["dev-redis-01"])


def test_limit_matching_no_host_says_so_and_runs_nothing(capsys):
    result = run_playbook("site", "dev", limit="dev-nosuch-*")
    assert not result.ok and result.rc != 0
    assert result.hosts == {}
    inventory = ROOT / "inventories" / "dev"
    assert result.error == f"--limit 'dev-nosuch-*' matches no host of {inventory}: nothing was run"
    rc = cli.main(["run", "site", "--env", "dev", "--limit", "dev-nosuch-*"])
    assert rc == 2
    out = capsys.readouterr().out
    assert "error: --limit 'dev-nosuch-*' matches no host" in out
