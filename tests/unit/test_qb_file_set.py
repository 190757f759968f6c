"""qb_file_set, run by Ansible on this machine as a managed host: a directory's set of files in
one call — written, left alone when they match, purged when no longer wanted, nothing landing
when one of them fails validation, nothing touched in check mode."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run(args: dict, *flags: str) -> dict:
    env = {**os.environ, "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1", "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
           "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json"}
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "ansible"), "localhost", "-i", "localhost,", "-c", "local",
         "-e", f"ansible_python_interpreter={sys.executable}", "-m", "qb_file_set",
         "-a", json.dumps(args), *flags],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)
    start = proc.stdout.index("{")
    out = json.JSONDecoder().raw_decode(proc.stdout[start:])[0]
    return out["plays"][0]["tasks"][0]["hosts"]["localhost"]


def tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("*")) if p.is_file()}


def test_writes_keeps_and_purges_in_one_call(tmp_path):
    files = {"node/a.json": "[1]\n", "node/b.json": "[2]\n", "redis/c.json": "[3]\n"}
    purge = {"purge": True, "purge_glob": "*/*.json", "mode": "0640"}
    first = run({"path": str(tmp_path), "files": files, **purge})
    assert first["changed"] and sorted(first["written"]) == sorted(files)
    assert tree(tmp_path) == files
    assert oct((tmp_path / "node" / "a.json").stat().st_mode & 0o777) == "0o640"

    again = run({"path": str(tmp_path), "files": files, **purge})
    assert not again["changed"] and again["written"] == [] and again["removed"] == []

    # a host left the inventory: its file goes, files outside the glob stay
    (tmp_path / "keep.txt").write_text("not ours\n")
    fewer = {k: v for k, v in files.items() if k != "node/b.json"}
    gone = run({"path": str(tmp_path), "files": fewer, **purge}, "--diff")
    assert gone["changed"] and gone["removed"] == ["node/b.json"] and gone["written"] == []
    assert "node/b.json (removed)" in gone["diff"]["after"]
    assert tree(tmp_path) == {**fewer, "keep.txt": "not ours\n"}


def test_check_mode_reports_and_changes_nothing(tmp_path):
    (tmp_path / "old.json").write_text("old\n")
    result = run({"path": str(tmp_path), "files": {"new.json": "new\n"}, "purge": True,
                  "purge_glob": "*.json"}, "--check", "--diff")
    assert result["changed"] and result["written"] == ["new.json"] and result["removed"] == ["old.json"]
    assert "new" in result["diff"]["after"]
    assert tree(tmp_path) == {"old.json": "old\n"}


def test_one_file_failing_validation_lands_nothing(tmp_path):
    (tmp_path / "a.json").write_text("[0]\n")
    check = f"{sys.executable} -m json.tool %s"
    files = {"a.json": "[1]\n", "b.json": "{not json"}
    result = run({"path": str(tmp_path), "files": files, "validate": check})
    assert result["failed"] and "b.json failed validation" in result["msg"]
    # the valid change did not land either, and no staging file is left behind
    assert tree(tmp_path) == {"a.json": "[0]\n"}


def test_a_path_outside_the_directory_is_refused(tmp_path):
    result = run({"path": str(tmp_path / "d"), "files": {"../escape.json": "x"}})
    assert result["failed"] and "is not a path under" in result["msg"]
    assert not (tmp_path / "escape.json").exists()
