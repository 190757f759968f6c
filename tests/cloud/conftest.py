"""A local AWS endpoint (moto in server mode on 127.0.0.1) and copies of the project's aws
inventories pointed at it. No credentials and no address beyond loopback are ever used.

Instances at this endpoint do not boot: they exist as records with addresses. What a booted
host does behind the bastion is proved on the local provider's containers, as for dev."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
IMAGE_NAME = "debian-12-amd64-20261201-test"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def endpoint(tmp_path_factory):
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    server = Path(sys.executable).with_name("moto_server")
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [str(server), "-H", "127.0.0.1", "-p", str(port)], stdout=out, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the local AWS endpoint did not start: {log.read_text()[-2000:]}")
            time.sleep(0.2)
    yield url
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture(scope="session")
def ec2(endpoint):
    """Clients of the test's own (fake-credential) account, per region."""

    def client(region: str, service: str = "ec2"):
        return boto3.client(
            service,
            region_name=region,
            endpoint_url=endpoint,
            **{"aws_access_key_id": "testing", "aws_secret_access_key": "testing"},
        )

    for region in ("eu-west-1", "eu-central-1"):
        # the endpoint knows no Debian image: one of the account's own stands in
        client(region).register_image(
            Name=IMAGE_NAME, RootDeviceName="/dev/xvda", Architecture="x86_64", VirtualizationType="hvm"
        )
    return client


@pytest.fixture(scope="session")
def project(tmp_path_factory, ec2):
    """inventories/prod and inventories/dr copied, their image the account's own; a state folder."""
    base = tmp_path_factory.mktemp("project")
    for env in ("prod", "dr"):
        shutil.copytree(ROOT / "inventories" / env, base / "inventories" / env)
        edit_topology(
            base / "inventories" / env,
            lambda t: t["aws"].update(image={"name": "debian-12-amd64-*", "owners": ["self"]}),
        )
    (base / "state").mkdir()
    return base


def edit_topology(inventory: Path, change) -> None:
    path = inventory / "topology.yml"
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


class Cli:
    def __init__(self, project: Path, endpoint: str) -> None:
        self.project, self.endpoint = project, endpoint

    def env(self, credentials: bool = True) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(
            {
                "QB_STATE_DIR": str(self.project / "state"),
                "AWS_CONFIG_FILE": "/nonexistent",
                "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
                "AWS_EC2_METADATA_DISABLED": "true",
            }
        )
        if credentials:
            env.update(FAKE_CREDENTIALS)
        return env

    def __call__(
        self,
        command: str,
        env_name: str,
        *args: str,
        inventory: Path | None = None,
        endpoint: str | None = None,
        credentials: bool = True,
    ) -> subprocess.CompletedProcess:
        inv = inventory or self.project / "inventories" / env_name
        argv = [
            sys.executable,
            "-m",
            "quantbot_infra.cli",
            command,
            "--env",
            env_name,
            "--inventory",
            str(inv),
            "--endpoint-url",
            endpoint or self.endpoint,
            *args,
        ]
        return subprocess.run(
            argv,
            capture_output=True,
            text=True,
            env=self.env(credentials),
            cwd=ROOT,
            timeout=600,
            check=False,
        )

    def plan(self, env_name: str, **kw) -> dict:
        run = self("plan", env_name, "--json", **kw)
        assert run.returncode == 0, run.stderr
        return json.loads(run.stdout)


@pytest.fixture(scope="session")
def cli(project, endpoint) -> Cli:
    return Cli(project, endpoint)


STANDIN_NETWORK = "qb-ctest"
STANDIN_PORT_BASE = 23200


@pytest.fixture(scope="session")
def standins(tmp_path_factory):
    """Two systemd containers of the project's image standing in for existing machines (bare
    metal in colocation): made by the local provider's playbook, reached on 127.0.0.1 ports."""
    from quantbot_infra import local, paths
    from quantbot_infra.runner import run_playbook

    probe = (
        subprocess.run(
            ["docker", "image", "inspect", "quantbot-infra/host:bookworm"], capture_output=True, check=False
        )
        if shutil.which("docker")
        else None
    )
    if probe is None or probe.returncode != 0:
        pytest.fail(
            "the mixed-topology test needs the Docker engine and the test-host image: run 'make setup'"
        )
    inv = tmp_path_factory.mktemp("standins")
    (inv / "topology.yml").write_text(
        yaml.safe_dump(
            {
                "plugin": "quantbot_topology",
                "environment": "dev",
                "provider": "local",
                "local": {
                    "network": STANDIN_NETWORK,
                    "subnet": "10.240.96.0/24",
                    "ssh_port_base": STANDIN_PORT_BASE,
                },
                "regions": [{"name": "standin", "azs": ["standin-a"]}],
                "classes": [{"name": "standin", "count": 2, "groups": []}],
            }
        )
    )
    local.ensure_ssh_key("dev")
    made = run_playbook("provision", "dev", inventory=inv)
    assert made.ok, made.failed_tasks or made.error
    hosts = [
        {"address": "127.0.0.1", "port": STANDIN_PORT_BASE + i, "private_ip": f"10.240.96.{10 + i}"}
        for i in (1, 2)
    ]
    yield {"hosts": hosts, "key": paths.state_dir("dev", ROOT) / "ssh" / "id_ed25519"}
    gone = run_playbook("provision", "dev", inventory=inv, extra_vars={"qb_provision_state": "absent"})
    assert gone.ok, gone.failed_tasks
