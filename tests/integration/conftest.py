"""A small real environment for the runner API: two systemd containers of the project's image,
made and removed by the project's own provision playbook on a network of the tests' own."""

import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest

from quantbot_infra import local, paths
from quantbot_infra.runner import run_playbook

ROOT = Path(__file__).resolve().parents[2]
NETWORK = "qb-itest"


def _docker_ready() -> bool:
    if shutil.which("docker") is None:
        return False
    probe = subprocess.run(["docker", "image", "inspect", "quantbot-infra/host:bookworm"],
                           capture_output=True, check=False)
    return probe.returncode == 0


@pytest.fixture(scope="session")
def itest_inventory(tmp_path_factory) -> Path:
    if not _docker_ready():
        pytest.fail("integration tests need the Docker engine and the test-host image: run 'make setup'")
    inv = tmp_path_factory.mktemp("inventory")
    (inv / "topology.yml").write_text(textwrap.dedent(f"""\
        plugin: quantbot_topology
        environment: dev
        provider: local
        local: {{network: {NETWORK}, subnet: 10.240.99.0/24, ssh_port_base: 23000}}
        regions: [{{name: itest, azs: [itest-a]}}]
        classes:
          - {{name: app, count: 2, groups: []}}
        """))
    ssh_dir = paths.state_dir("dev") / "ssh"
    (inv / "group_vars").mkdir()
    (inv / "group_vars" / "env_dev.yml").write_text(textwrap.dedent(f"""\
        ansible_user: ansible
        ansible_become: true
        # as inventories/<env>/group_vars/all.yml: generated keys, the CA, secrets
        qb_state_dir: {paths.state_dir("dev")}
        ansible_ssh_private_key_file: {ssh_dir}/id_ed25519
        ansible_ssh_common_args: >-
          -o StrictHostKeyChecking=accept-new -o UserKnownHostsFile={ssh_dir}/known_hosts_itest
        """))
    local.ensure_ssh_key("dev")
    result = run_playbook("provision", "dev", inventory=inv)
    assert result.ok, result.failed_tasks
    yield inv
    down = run_playbook("provision", "dev", inventory=inv,
                        extra_vars={"qb_provision_state": "absent"})
    assert down.ok, down.failed_tasks
    # `down` leaves nothing of the environment behind
    left = subprocess.run(["docker", "ps", "-aq", "--filter", f"label=org.quantbot.network={NETWORK}"],
                          capture_output=True, text=True, check=True)
    assert left.stdout.strip() == ""
    nets = subprocess.run(["docker", "network", "ls", "-q", "--filter", f"name=^{NETWORK}$"],
                          capture_output=True, text=True, check=True)
    assert nets.stdout.strip() == ""
    (ssh_dir / "known_hosts_itest").unlink(missing_ok=True)


def docker_exec(host: str, *cmd: str) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", "exec", host, *cmd], capture_output=True, text=True,
                          check=False)
