"""Local (Docker) provider: controller-side preparation and the up/down flows.

The containers themselves are made by ``playbooks/provision.yml`` (community.docker); this
module prepares what that playbook needs (the environment's SSH key) and chains
provision -> converge -> verify, so ``quantbot-infra up dev`` is a sequence of ordinary
playbook runs that an SRE can also run by hand.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from quantbot_infra import paths
from quantbot_infra.runner import EventCallback, RunResult, run_playbook
from quantbot_infra.topology import Inventory, load_inventory


class ProviderError(RuntimeError):
    """The local provider cannot act (wrong provider, no Docker engine, …)."""


@dataclass
class UpResult:
    inventory: Inventory
    steps: list[tuple[str, RunResult]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.steps) and all(r.ok for _, r in self.steps)


def ensure_ssh_key(env: str) -> Path:
    """The environment's automation key pair, generated once (ed25519, 0600)."""
    ssh_dir = paths.state_dir(env) / "ssh"
    ssh_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(ssh_dir, 0o700)
    key = ssh_dir / "id_ed25519"
    if not key.exists():
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"quantbot-infra@{env}",
             "-f", str(key)],
            check=True,
        )
    os.chmod(key, 0o600)
    return key


def _require_local(env: str, inventory: Path | None = None) -> Inventory:
    inv = load_inventory(inventory or paths.inventory_dir(env))
    if inv.topology.provider == "existing":
        raise ProviderError(
            f"environment {env!r} lists existing machines only: there is nothing to make or remove; "
            f"converge it with 'quantbot-infra run site --env {env}'"
        )
    if inv.topology.provider != "local":
        raise ProviderError(
            f"environment {env!r} uses provider {inv.topology.provider!r}; "
            "'up' and 'down' drive the local provider only"
        )
    if shutil.which("docker") is None:
        raise ProviderError("no docker client on PATH; run 'make setup'")
    probe = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"],
                           capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        raise ProviderError("the Docker engine is not running; run 'make setup'")
    return inv


def up(env: str, on_event: EventCallback | None = None,
       on_step: Callable[[str], None] | None = None, inventory: Path | None = None) -> UpResult:
    """Provision the environment's containers, converge site.yml, then verify."""
    inv = _require_local(env, inventory)
    ensure_ssh_key(env)
    result = UpResult(inv)
    for step, playbook in (("provision", "provision"), ("converge", "site"),
                           ("verify", "verify")):
        if on_step:
            on_step(step)
        run = run_playbook(playbook, env, on_event=on_event, inventory=inventory)
        result.steps.append((step, run))
        if not run.ok:
            break
    return result


def down(env: str, on_event: EventCallback | None = None,
         inventory: Path | None = None) -> RunResult:
    """Remove every container and the network that ``up`` made for the environment."""
    _require_local(env, inventory)
    ensure_ssh_key(env)
    return run_playbook("provision", env, extra_vars={"qb_provision_state": "absent"},
                        on_event=on_event, inventory=inventory)
