"""The runner API against real systemd containers over SSH."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from quantbot_infra import paths
from quantbot_infra.runner import run_playbook

from .conftest import docker_exec

pytestmark = pytest.mark.integration
HERE = Path(__file__).parent
HOSTS = ["dev-app-01", "dev-app-02"]


@pytest.fixture(scope="module")
def converged(itest_inventory):
    events = []
    first = run_playbook("site", "dev", inventory=itest_inventory, on_event=events.append)
    assert first.ok, first.failed_tasks
    return first, events


def test_converge_reports_per_host_changes_and_streams_events(converged):
    result, events = converged
    assert result.status == "successful" and result.rc == 0
    assert sorted(h for h in result.hosts if h != "localhost") == HOSTS
    assert all(result.hosts[h].changed > 0 and result.hosts[h].failed == 0 for h in HOSTS)
    kinds = {e.get("event") for e in events}
    assert {"playbook_on_start", "playbook_on_task_start", "runner_on_ok", "playbook_on_stats"} <= kinds
    assert Path(result.artifact_dir, "job_events").is_dir()
    # the converge really happened on the hosts
    assert "PasswordAuthentication no" in docker_exec("dev-app-01", "cat", "/etc/ssh/sshd_config").stdout


def _package_tasks(events) -> dict[tuple[str, str], dict]:
    """(host, task) -> result of every qb_packages task of a run (its streamed events, or the
    events ansible-runner kept in the run's artifacts)."""
    return {(e["event_data"]["host"], e["event_data"]["task"]): e["event_data"]["res"] for e in events
            if e.get("event") == "runner_on_ok" and e["event_data"].get("task_action") == "qb_packages"}


def test_a_package_removed_between_runs_is_installed_again(converged, itest_inventory):
    # the fact cache still holds the previous run's package list, which names lsof
    assert docker_exec("dev-app-02", "dpkg", "-r", "lsof").returncode == 0
    events = []
    again = run_playbook("site", "dev", inventory=itest_inventory, tags=["base"], on_event=events.append)
    assert again.ok, again.failed_tasks
    installs = _package_tasks(events)
    assert installs["dev-app-02", "Install essential packages"]["packages_missing"] == ["lsof"]
    assert installs["dev-app-02", "Install essential packages"]["changed"] is True
    assert installs["dev-app-01", "Install essential packages"]["packages_missing"] == []
    status = docker_exec("dev-app-02", "dpkg-query", "-W", "-f", "${Status}", "lsof")
    assert status.stdout == "install ok installed"


def test_check_mode_reports_drift_without_fixing_it(converged, itest_inventory):
    conf = "/etc/systemd/journald.conf.d/50-quantbot.conf"
    drift = docker_exec("dev-app-02", "sed", "-i", "s/MaxRetentionSec=.*/MaxRetentionSec=1day/", conf)
    assert drift.returncode == 0
    check = run_playbook("site", "dev", inventory=itest_inventory, check=True, diff=True,
                         tags=["base_journald"], limit="dev-app-02")
    assert check.ok and check.check
    # the drifted file, and the restart it would trigger
    assert check.hosts["dev-app-02"].changed == 2
    assert "MaxRetentionSec=1day" in docker_exec("dev-app-02", "cat", conf).stdout
    fix = run_playbook("site", "dev", inventory=itest_inventory, tags=["base_journald"],
                       limit="dev-app-02")
    assert fix.hosts["dev-app-02"].changed >= 1
    assert "MaxRetentionSec=30day" in docker_exec("dev-app-02", "cat", conf).stdout
    # the content is right but its mode and owner drifted: qb_template reads all three
    assert docker_exec("dev-app-02", "sh", "-c", f"chmod 0600 {conf} && chown ansible {conf}").returncode == 0
    fix = run_playbook("site", "dev", inventory=itest_inventory, tags=["base_journald"], limit="dev-app-02")
    assert fix.hosts["dev-app-02"].changed >= 1
    assert docker_exec("dev-app-02", "stat", "-c", "%a %U", conf).stdout.split() == ["644", "root"]


def test_a_stopped_and_disabled_service_is_reported_by_check_mode_and_restored(converged, itest_inventory):
    # qb_service reads the unit's state with one command: a unit that drifted must still show
    assert docker_exec("dev-app-02", "sh", "-c", "systemctl disable --now chrony").returncode == 0
    check = run_playbook("site", "dev", inventory=itest_inventory, check=True, tags=["base_chrony"],
                         limit="dev-app-02")
    assert check.ok and check.hosts["dev-app-02"].changed == 1
    assert docker_exec("dev-app-02", "systemctl", "is-active", "chrony").stdout.strip() == "inactive"
    fix = run_playbook("site", "dev", inventory=itest_inventory, tags=["base_chrony"], limit="dev-app-02")
    assert fix.ok and fix.hosts["dev-app-02"].changed == 1
    state = docker_exec("dev-app-02", "sh", "-c", "systemctl is-active chrony; systemctl is-enabled chrony")
    assert state.stdout.split() == ["active", "enabled"]


def test_failed_task_is_reported_with_host_and_message(itest_inventory):
    result = run_playbook(str(HERE / "playbooks" / "failing.yml"), "dev", inventory=itest_inventory)
    assert not result.ok and result.status == "failed" and result.rc != 0
    assert result.hosts["dev-app-01"].failed == 1
    assert result.hosts["dev-app-02"].failed == 0 and result.hosts["dev-app-02"].ok == 1
    [failure] = result.failed_tasks
    assert failure.host == "dev-app-01"
    assert failure.task == "Fail on the first app host only"
    assert failure.message == "deliberate failure on dev-app-01"


def test_limit_restricts_the_run(converged, itest_inventory):
    result = run_playbook("verify", "dev", inventory=itest_inventory, limit="dev-app-02")
    assert result.ok
    assert [h for h in result.hosts if h.startswith("dev-")] == ["dev-app-02"]
    assert result.facts["dev-app-02"]["sshd_password_auth"] == "no"


def test_secrets_never_reach_the_artifacts(itest_inventory, tmp_path, monkeypatch):
    vaulted, passed = "QBVAULTMARKER7c1e", "QBPASSEDMARKER93ad"
    vault_pass = tmp_path / "vault-pass"
    vault_pass.write_text("itest-vault-password\n")
    bindir = Path(sys.executable).parent
    enc = subprocess.run(
        [str(bindir / "ansible-vault"), "encrypt_string", "--vault-password-file", str(vault_pass),
         vaulted, "--name", "itest_vaulted_secret"],
        capture_output=True, text=True, check=True)
    assert vaulted not in enc.stdout
    (itest_inventory / "group_vars" / "all.yml").write_text(enc.stdout)
    monkeypatch.setenv("QB_VAULT_PASSWORD_FILE", str(vault_pass))
    try:
        result = run_playbook(str(HERE / "playbooks" / "secret.yml"), "dev",
                              inventory=itest_inventory, diff=True, verbosity=2,
                              secret_vars={"itest_passed_secret": passed})
    finally:
        (itest_inventory / "group_vars" / "all.yml").unlink()
    assert result.ok, result.failed_tasks
    # the secrets were really used ...
    assert docker_exec("dev-app-01", "cat", "/root/vaulted").stdout == vaulted
    assert docker_exec("dev-app-01", "cat", "/root/passed").stdout == passed
    # ... and appear nowhere in what the run left behind (artifacts, audit log, fact cache)
    runs_dir = Path(result.artifact_dir).parents[1]
    state = runs_dir.parent
    grep = subprocess.run(["grep", "-rl", "-e", vaulted, "-e", passed, str(state)],
                          capture_output=True, text=True, check=False)
    assert grep.returncode == 1, f"secret found in {grep.stdout}"
    assert any(Path(result.artifact_dir).rglob("*.json"))
    # ansible-runner's env files (which would hold variables in clear) are never written
    assert not Path(runs_dir, "env", "extravars").exists()
    assert not [p for p in Path("/tmp").glob("qb-secret-*") if p.stat().st_uid == os.getuid()]
    # the audit log records the run, naming the secret without its value
    record = json.loads((state / "audit.log").read_text().splitlines()[-1])
    assert record["playbook"].endswith("secret.yml") and record["status"] == "successful"
    assert record["secret_names"] == ["itest_passed_secret"]


def test_cli_run_json(converged, itest_inventory):
    bindir = Path(sys.executable).parent
    out = subprocess.run(
        [str(bindir / "quantbot-infra"), "run", "verify", "--env", "dev", "--inventory",
         str(itest_inventory), "--json"], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["ok"] is True and data["status"] == "successful"
    assert set(HOSTS) <= set(data["hosts"])


def test_provision_again_changes_nothing(itest_inventory):
    again = run_playbook("provision", "dev", inventory=itest_inventory)
    assert again.ok and again.hosts["localhost"].changed == 0


def _ssh(key: Path, user: str, port: int) -> subprocess.CompletedProcess:
    # a login attempt to the test's own container, published on loopback
    return subprocess.run(
        ["ssh", "-i", str(key), "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
         "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
         "-o", "ConnectTimeout=10", "-p", str(port), f"{user}@127.0.0.1", "id -un"],
        capture_output=True, text=True, check=False)


def test_admin_logs_in_with_key_only_and_is_removed(converged, itest_inventory, tmp_path):
    key, other, dkey = tmp_path / "carol", tmp_path / "other", tmp_path / "dave"
    for k in (key, other, dkey):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(k)], check=True)
    pub = key.with_suffix(".pub").read_text().strip()
    port = 23001  # dev-app-01
    dpub = dkey.with_suffix(".pub").read_text().strip()
    users = {"base_admin_users": [{"name": "carol", "ssh_keys": [pub]},
                                  {"name": "dave", "sudo": False, "ssh_keys": [dpub]}]}
    added = run_playbook("site", "dev", inventory=itest_inventory, limit="dev-app-01",
                         tags=["base_users"], extra_vars=users)
    assert added.ok, added.failed_tasks
    assert added.hosts["dev-app-01"].changed == 2  # accounts, keys
    login = _ssh(key, "carol", port)
    assert login.returncode == 0, login.stderr
    assert login.stdout.strip() == "carol"
    assert "Permission denied" in _ssh(other, "carol", port).stderr
    # an administrator without sudo logs in but cannot escalate
    assert _ssh(dkey, "dave", port).stdout.strip() == "dave"
    assert docker_exec("dev-app-01", "su", "-", "dave", "-c", "sudo -n true").returncode != 0
    # taking sudo away from an administrator revokes it
    demote = {"base_admin_users": [{"name": "carol", "sudo": False, "ssh_keys": [pub]},
                                   {"name": "dave", "sudo": False, "ssh_keys": [dpub]}]}
    assert run_playbook("site", "dev", inventory=itest_inventory, limit="dev-app-01",
                        tags=["base_users"], extra_vars=demote).ok
    assert "sudo" not in docker_exec("dev-app-01", "id", "-Gn", "carol").stdout.split()
    # root never logs in, not even with the automation key
    auto_key = Path(str(itest_inventory / "group_vars" / "env_dev.yml"))
    auto = next(line.split(": ", 1)[1] for line in auto_key.read_text().splitlines()
                if line.startswith("ansible_ssh_private_key_file"))
    assert "Permission denied" in _ssh(Path(auto), "root", port).stderr
    gone = {"base_admin_users": [{"name": "carol", "state": "absent"},
                                 {"name": "dave", "state": "absent"}]}
    removed = run_playbook("site", "dev", inventory=itest_inventory, limit="dev-app-01",
                           tags=["base_users"], extra_vars=gone)
    assert removed.ok and removed.hosts["dev-app-01"].changed == 1
    assert _ssh(key, "carol", port).returncode != 0


def test_cli_up_again_converges_nothing_and_summarises(converged, itest_inventory):
    bindir = Path(sys.executable).parent
    out = subprocess.run(
        [str(bindir / "quantbot-infra"), "up", "dev", "--inventory", str(itest_inventory)],
        capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    # the summary names each host with its endpoint, and every step changed nothing
    assert any(ln.split()[:1] == ["dev-app-01"] and "127.0.0.1:23001" in ln for ln in lines)
    for step in ("provision", "converge", "verify"):
        [row] = [ln for ln in lines if ln.startswith(step + " ")]
        assert "successful" in row and "changed=0 " in row, row
    assert "task " in out.stderr  # progress went to stderr while it ran
    # the converge step, as the audit log and its artifacts keep it: every role's packages are
    # there, so no install task called apt
    audit = paths.state_dir("dev") / "audit.log"
    runs = [json.loads(line) for line in audit.read_text().splitlines()[-3:]]
    [converge] = [r for r in runs if r["playbook"] == "playbooks/site.yml"]
    events = [json.loads(p.read_text()) for p in Path(converge["artifact_dir"], "job_events").glob("*.json")]
    installs = _package_tasks(events)
    assert len(installs) >= 2 * 4 and {h for h, _ in installs} == set(HOSTS)
    assert all(r["packages_missing"] == [] and r["msg"].startswith("already installed")
               for r in installs.values())


def test_unreachable_host_is_reported(converged, itest_inventory):
    # runs last in this module: it stops a host, then brings it back
    assert subprocess.run(["docker", "stop", "dev-app-02"], capture_output=True, check=False).returncode == 0
    try:
        result = run_playbook("verify", "dev", inventory=itest_inventory)
        assert not result.ok
        assert result.hosts["dev-app-02"].unreachable == 1
        assert result.hosts["dev-app-01"].failed == 0 and result.hosts["dev-app-01"].ok > 0
        [failure] = result.failed_tasks
        assert failure.host == "dev-app-02" and failure.unreachable
    finally:
        back = run_playbook("provision", "dev", inventory=itest_inventory)
        assert back.ok, back.failed_tasks
