"""After backup, restore and every failover the roles still converge to the same state, and no
secret of the environment reaches a host's journal, /var/log, command lines or process
environments, nor the controller's run artifacts, audit log or fact cache.

One run proves both: a check run of the data tier through the runner API (as CI drives it) after
every drill must report nothing to change, while command lines and environments are sampled on
every host (a module in check mode gets the same arguments, secrets included, as in a real run;
the journal keeps each sudo command line and each module invocation since boot). Molecule's own
idempotence step proved that a real second run changes nothing; this proves that the state the
drills leave is the declared one, without a third full converge."""

import shlex

from conftest import ENV, INVENTORY, PROJECT, host
from qbmolecule import PROCESS_SAMPLER, hits, host_leaks, state_secrets

from quantbot_infra import paths
from quantbot_infra.runner import run_playbook

HOSTS = ("dbha-pg-1", "dbha-pg-2", "dbha-redis-1", "dbha-redis-2", "dbha-redis-3", "dbha-app-1")
SAMPLES = "/root/qb-proc.samples"


def controller_files():
    """What runs leave on the controller: ansible-runner artifacts, the audit log, the fact cache."""
    state = paths.state_dir("dev", PROJECT)
    for path in [*(state / "runs").rglob("*"), state / "audit.log", *(PROJECT / ".state" / "facts").rglob("*")]:
        if path.is_file():
            yield path


def test_no_secret_in_journals_logs_processes_or_output(monkeypatch):
    values = state_secrets(minimum=10)
    # the molecule inventory, the project's ansible.cfg otherwise (fact cache, artifacts)
    for name in ("ANSIBLE_INVENTORY_ENABLED", "ANSIBLE_ROLES_PATH"):
        monkeypatch.setenv(name, ENV[name])
    monkeypatch.setenv("ANSIBLE_PIPELINING", "1")
    for name in HOSTS:
        h = host(name)
        script = shlex.quote(PROCESS_SAMPLER)
        h.check_output(f"rm -f /run/qb-sampler.stop; printf '%s' {script} > /root/qb-sampler.py")
        h.check_output(f"systemd-run --unit qb-sampler --collect python3 /root/qb-sampler.py {SAMPLES} 300")
    try:
        converge = run_playbook("data", "dev", inventory=INVENTORY, check=True, verbosity=1)
    finally:
        for name in HOSTS:
            host(name).run("touch /run/qb-sampler.stop")
    assert converge.ok and converge.check, converge.failed_tasks
    # after the drills the running primaries win: nothing to change, on any host
    assert {h: s.changed for h, s in converge.hosts.items() if s.changed} == {}
    assert set(HOSTS) <= set(converge.hosts)
    found = []
    files = list(controller_files())
    for path in files:
        found += hits(path.read_text(errors="replace"), f"controller file {path}", values)
    assert len(files) > 10 and str(converge.artifact_dir) in {str(p.parent) for p in files}
    for name in HOSTS:
        h = host(name)
        for _ in range(30):
            if h.run("systemctl is-active qb-sampler").stdout.strip() != "active":
                break
        samples = h.check_output(f"cat {SAMPLES}")
        # the sampler saw the run: Ansible's modules and (on the Redis nodes) redis-cli
        assert "python3" in samples and "BECOME-SUCCESS" in samples, f"{name}: sampler saw no run"
        found += hits(samples, f"{name}'s command lines or process environments", values)
        # the sampler saw every process of the run; the journal and /var/log keep the rest
        found += host_leaks(name, values, processes=False)
        h.run(f"rm -f {SAMPLES} /root/qb-sampler.py")
    assert not found, found
