"""The CLI's inventory command and the inventory plugin, through real ansible-inventory."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from quantbot_infra import cli

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def ansible_inventory(*args, cwd=ROOT, env=None):
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
               PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}", **(env or {}))
    return subprocess.run([str(BIN / "ansible-inventory"), *args], capture_output=True,
                          text=True, cwd=cwd, env=env, check=False)


def test_inventory_graph_shows_class_env_region_az_groups():
    out = ansible_inventory("-i", "inventories/dev", "--graph")
    assert out.returncode == 0, out.stderr
    for group in ("@class_trading:", "@postgresql:", "@env_dev:", "@region_local:",
                  "@az_local_a:", "@az_local_b:"):
        assert group in out.stdout
    assert out.stdout.count("dev-") >= 10


def test_inventory_host_vars():
    out = ansible_inventory("-i", "inventories/dev", "--host", "dev-pg-02")
    assert out.returncode == 0, out.stderr
    hv = json.loads(out.stdout)
    assert hv["qb_class"] == "pg" and hv["qb_az"] == "local-b"
    assert hv["ansible_host"] == "127.0.0.1" and hv["ansible_port"] == 22202


def test_inventory_cache_is_read_and_never_stale(tmp_path):
    inv = tmp_path / "inv"
    shutil.copytree(ROOT / "inventories" / "dev", inv)
    cache = tmp_path / "cache"
    env = {"ANSIBLE_INVENTORY_CACHE": "true", "ANSIBLE_INVENTORY_CACHE_PLUGIN": "ansible.builtin.jsonfile",
           "ANSIBLE_INVENTORY_CACHE_CONNECTION": str(cache)}

    def listed(*extra):
        out = ansible_inventory("-i", str(inv), "--list", *extra, env=env)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)

    first = listed()
    [entry] = list(cache.iterdir())
    # the next listing reads the entry: a value altered in it shows up
    outer = json.loads(entry.read_text())  # the jsonfile plugin keeps its value serialised inside
    data = json.loads(outer["__payload__"])
    data["inventory"]["group_vars"]["class_gpu"]["qb_instance_type"] = "from-the-cache"
    entry.write_text(json.dumps({**outer, "__payload__": json.dumps(data)}))
    assert listed()["_meta"]["hostvars"]["dev-gpu-01"]["qb_instance_type"] == "from-the-cache"
    # --flush-cache computes afresh
    assert listed("--flush-cache")["_meta"]["hostvars"]["dev-gpu-01"]["qb_instance_type"] == "local"
    # a changed topology is never served from the old entry
    topo = inv / "topology.yml"
    topo.write_text(topo.read_text().replace("count: 1\n    groups: [gpu]", "count: 2\n    groups: [gpu]"))
    again = listed()
    assert "dev-gpu-02" in again["_meta"]["hostvars"] and "dev-gpu-02" not in first["_meta"]["hostvars"]
    assert again == listed()


def test_broken_topology_fails_with_the_field(tmp_path):
    inv = tmp_path / "broken"
    shutil.copytree(ROOT / "inventories" / "dev", inv)
    topo = inv / "topology.yml"
    topo.write_text(topo.read_text().replace("count: 1\n    groups: [gpu]", "count: lots\n    groups: [gpu]"))
    out = ansible_inventory("-i", str(inv), "--graph")
    assert out.returncode != 0
    line = topo.read_text().splitlines().index("    count: lots") + 1
    assert f"{topo}:{line}: classes[1].count: expected an integer, got str 'lots'" in out.stderr


def test_cli_inventory_error_is_one_line(tmp_path, capsys, monkeypatch):
    from quantbot_infra import paths

    bad = tmp_path / "topology.yml"
    text = (ROOT / "inventories" / "dev" / "topology.yml").read_text()
    bad.write_text(text.replace("    azs: [local-a, local-b]", "    zones: [local-a, local-b]"))
    monkeypatch.setattr(paths, "inventory_dir", lambda env, root=None: tmp_path)
    rc = cli.main(["inventory", "--env", "dev"])
    err = capsys.readouterr().err.strip()
    assert rc == 1
    assert len(err.splitlines()) == 1
    line = bad.read_text().splitlines().index("    zones: [local-a, local-b]") + 1
    assert err.startswith(f"error: {bad}:{line}: regions[0].zones: unknown key 'zones'")


def test_cli_inventory_json(capsys):
    assert cli.main(["inventory", "--env", "prod", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["provider"] == "aws"
    assert "prod-bastion-01" in [h["host"] for h in data["hosts"]]


def test_cli_unknown_environment(capsys):
    assert cli.main(["inventory", "--env", "qa"]) == 1
    assert "unknown environment 'qa'" in capsys.readouterr().err


def test_cli_unknown_playbook(capsys):
    assert cli.main(["run", "nosuch", "--env", "dev"]) == 1
    assert "playbook 'nosuch' not found" in capsys.readouterr().err


def test_cli_bad_extra_var(capsys):
    assert cli.main(["run", "verify", "--env", "dev", "-e", "novalue"]) == 1
    assert "expected KEY=VALUE" in capsys.readouterr().err


def test_cli_patch_override_needs_a_reason(capsys):
    assert cli.main(["patch", "--env", "dev", "--override-freeze", "--reason", "now"]) == 1
    assert "--override-freeze needs --reason" in capsys.readouterr().err


def test_cli_drift_bad_accepted_file_is_one_line_before_any_run(tmp_path, capsys):
    assert cli.main(["drift", "--env", "dev", "--accepted", str(tmp_path / "none.yml")]) == 1
    assert "no such file" in capsys.readouterr().err
    bad = tmp_path / "accepted.yml"
    bad.write_text("- {host: dev-pg-01, task: '*', reason: trial}\n")
    assert cli.main(["drift", "--env", "dev", "--accepted", str(bad)]) == 1
    assert "entry 1 lacks expires" in capsys.readouterr().err


@pytest.mark.parametrize("env", ["staging", "prod", "dr"])
def test_up_of_a_cloud_environment_without_credentials_is_one_line(env, capsys, monkeypatch):
    for key in [k for k in os.environ if k.startswith("AWS_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    # a closed loopback port: the refusal comes before any connection
    assert cli.main(["up", env, "--endpoint-url", "http://127.0.0.1:9"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert [line for line in err if line.startswith("error:")] == [
        "error: no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE "
        "(or --profile); nothing was changed"]


def test_role_readmes_are_generated_from_argument_specs():
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "role-docs.py"), "--check"],
                         capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr


def test_precheck_refuses_a_foreign_inventory_before_touching_hosts():
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
               PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}", ANSIBLE_NOCOLOR="1")
    out = subprocess.run(
        [str(BIN / "ansible-playbook"), "-i", "stray-host.invalid,", "playbooks/site.yml",
         "--limit", "stray-host.invalid"],
        capture_output=True, text=True, cwd=ROOT, env=env, check=False)
    assert out.returncode != 0
    assert "not a single quantbot topology" in out.stdout + out.stderr
    # it stopped in the precheck: no connection was attempted, no role task ran
    assert "UNREACHABLE" not in out.stdout
    assert "Gathering Facts" not in out.stdout


def test_up_summary_lists_the_data_endpoints_verify_published():
    from quantbot_infra.cli import _summary
    from quantbot_infra.local import UpResult
    from quantbot_infra.runner import HostSummary, RunResult
    from quantbot_infra.topology import load_inventory

    inv = load_inventory(ROOT / "inventories" / "dev")
    facts = {"dev-pg-01": {"chrony_reference": "10.240.10.20",
                           "endpoints": ["postgresql 10.240.10.14:5432 (primary)",
                                         "pgbouncer 10.240.10.14:6432"]},
             "dev-redis-02": {"endpoints": ["redis 10.240.10.17:6379 (replica)"]}}
    verify = RunResult("verify", "dev", "successful", 0, {"dev-pg-01": HostSummary(ok=3)}, [], 1.0, "/tmp/a",
                       facts=facts)
    text = _summary(UpResult(inv, [("verify", verify)]))
    lines = text.splitlines()
    start = lines.index("endpoints (on the environment's network):")
    assert [line.split() for line in lines[start + 1:start + 4]] == [
        ["dev-pg-01", "postgresql", "10.240.10.14:5432", "(primary)"],
        ["dev-pg-01", "pgbouncer", "10.240.10.14:6432"],
        ["dev-redis-02", "redis", "10.240.10.17:6379", "(replica)"],
    ]


def test_up_summary_shows_the_tunnel_status_verify_published():
    from quantbot_infra.cli import _summary
    from quantbot_infra.local import UpResult
    from quantbot_infra.runner import HostSummary, RunResult
    from quantbot_infra.topology import load_inventory

    inv = load_inventory(ROOT / "inventories" / "dev")
    facts = {"dev-vpn-01": {"tunnel": "wg0 10.250.10.9: 8/8 peers up"},
             "dev-pg-01": {"tunnel": "wg0 10.250.10.4: 7/8 peers up"}}
    verify = RunResult("verify", "dev", "successful", 0, {"dev-pg-01": HostSummary(ok=3)}, [], 1.0, "/tmp/a",
                       facts=facts)
    lines = _summary(UpResult(inv, [("verify", verify)])).splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("tunnels (WireGuard"))
    # in topology order
    assert [line.split()[0] for line in lines[start + 1:start + 3]] == ["dev-pg-01", "dev-vpn-01"]
    assert lines[start + 2].split()[1:] == ["wg0", "10.250.10.9:", "8/8", "peers", "up"]


def test_a_relocated_state_may_hold_an_environment_of_another_name(monkeypatch, tmp_path):
    from quantbot_infra import paths
    monkeypatch.delenv("QB_STATE_DIR", raising=False)
    with pytest.raises(paths.ProjectError, match="unknown environment 'molecule'"):
        paths.state_dir("molecule")
    monkeypatch.setenv("QB_STATE_DIR", str(tmp_path))
    assert paths.state_dir("molecule") == tmp_path / "molecule"
    assert paths.state_dir("dev") == tmp_path / "dev"
    with pytest.raises(paths.ProjectError, match="unknown environment"):
        paths.state_dir("../escape")
