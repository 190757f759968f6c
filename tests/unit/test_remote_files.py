"""quantbot_infra.remote_files: the one-command file reader behind qb_copy and qb_template, run
for real with /bin/sh on this machine's files."""

import hashlib
import os
import pwd
import subprocess

import pytest

from quantbot_infra import remote_files


def read(path, checksum=True):
    out = subprocess.run(["/bin/sh", "-c", remote_files.stat_command(str(path), checksum)],
                         capture_output=True, text=True, check=False)
    return remote_files.parse_stat(out.returncode, out.stdout, checksum)


def test_a_regular_file_is_read_as_the_stat_module_would(tmp_path):
    f = tmp_path / "it's a file"  # a quote in the name: the path is quoted for the shell
    f.write_text("port = 5432\n")
    f.chmod(0o640)
    stat = read(f)
    st = os.stat(f)
    assert stat["exists"] and stat["isreg"] and not stat["isdir"] and not stat["islnk"]
    assert stat["checksum"] == hashlib.sha1(f.read_bytes()).hexdigest()  # noqa: S324
    assert stat["mode"] == "0640" and stat["uid"] == st.st_uid and stat["gid"] == st.st_gid
    assert stat["pw_name"] == pwd.getpwuid(st.st_uid).pw_name and stat["size"] == 12


def test_absent_directory_empty_and_link(tmp_path):
    assert read(tmp_path / "nothing") == {"exists": False, "isdir": False, "islnk": False,
                                          "isreg": False, "checksum": "1"}
    d = read(tmp_path)
    assert d["isdir"] and not d["isreg"] and d["checksum"] == ""
    (tmp_path / "empty").write_text("")
    assert read(tmp_path / "empty")["checksum"] == hashlib.sha1(b"").hexdigest()  # noqa: S324
    (tmp_path / "link").symlink_to(tmp_path / "empty")
    # a link is left to Ansible's own stat module (follow, lnk_source)
    assert read(tmp_path / "link") is None
    assert read(tmp_path / "empty", checksum=False)["checksum"] == ""


@pytest.mark.parametrize("stdout", ["", "garbage", "QB_FILE regular file|6x4|a|b|0|0|1\nabc",
                                    "QB_FILE regular file|644|root|root|0|0|1\nnot-a-digest -",
                                    "QB_FILE absent\nQB_FILE absent"])
def test_output_it_does_not_understand_goes_to_the_module(stdout):
    assert remote_files.parse_stat(0, stdout) is None
    assert remote_files.parse_stat(1, "QB_FILE absent") is None


STAT = {"exists": True, "isreg": True, "isdir": False, "islnk": False, "mode": "0640",
        "pw_name": "root", "gr_name": "ssl-cert", "uid": 0, "gid": 110, "size": 3, "checksum": "x"}


@pytest.mark.parametrize(("args", "held"), [
    ({}, True),
    ({"mode": "0640", "owner": "root", "group": "ssl-cert", "state": "file"}, True),
    ({"mode": 0o640, "owner": "0", "group": 110}, True),
    ({"mode": "640"}, True),
    ({"mode": "0644"}, False),
    ({"mode": "u=rw,g=r"}, False),  # symbolic: the file module judges
    ({"owner": "postgres"}, False),
    ({"group": "root"}, False),
    ({"setype": "etc_t"}, False),
    ({"attributes": "+i"}, False),
    ({"state": "touch"}, False),
])
def test_the_file_module_is_skipped_only_when_every_named_attribute_holds(args, held):
    assert remote_files.holds(STAT, args) is held


def test_nothing_is_held_for_what_is_not_a_regular_file():
    assert not remote_files.holds(None, {})
    assert not remote_files.holds({**STAT, "isreg": False, "isdir": True}, {})
    result = remote_files.unchanged(STAT, "/etc/x")
    assert result["changed"] is False and result["path"] == "/etc/x" and result["mode"] == "0640"


DIR = {**STAT, "isreg": False, "isdir": True, "mode": "0750"}
ABSENT = {"exists": False, "isdir": False, "islnk": False, "isreg": False, "checksum": "1"}


@pytest.mark.parametrize(("stat", "args", "held"), [
    (DIR, {"path": "/d", "state": "directory", "mode": "0750", "owner": "root"}, True),
    (DIR, {"path": "/d", "state": "directory", "mode": "0755"}, False),
    (STAT, {"path": "/d", "state": "directory"}, False),  # a file where a directory belongs
    (DIR, {"path": "/d", "state": "file"}, False),
    (STAT, {"path": "/d", "state": "file"}, True),
    (ABSENT, {"path": "/d", "state": "file"}, False),  # the module's own error: no such file
    (ABSENT, {"path": "/d", "state": "absent"}, True),
    (STAT, {"path": "/d", "state": "absent"}, False),
    (ABSENT, {"path": "/d", "state": "directory"}, False),
    (DIR, {"path": "/d", "state": "link"}, False),
])
def test_directories_and_absent_paths(stat, args, held):
    assert remote_files.holds(stat, args) is held


@pytest.mark.parametrize(("args", "path"), [
    ({"path": "/d", "state": "directory", "mode": "0750"}, "/d"),
    ({"dest": "/d", "state": "absent"}, "/d"),
    ({"name": "/d", "state": "directory", "recurse": False}, "/d"),
    ({"path": "/d", "state": "directory", "recurse": True}, None),
    ({"path": "/d", "state": "touch"}, None),
    ({"path": "/d", "state": "link", "src": "/e"}, None),
    ({"path": "/d", "state": "file", "mode": "0640", "group": "ssl-cert"}, "/d"),
    # without a state the module guesses one from what is there: its own call
    ({"path": "/d"}, None),
])
def test_only_directories_files_and_absent_paths_take_the_fast_path(args, path):
    assert remote_files.file_plannable(args) == path


def test_a_real_directory_and_an_absent_path_read_through_the_command(tmp_path):
    d = tmp_path / "conf.d"
    d.mkdir(mode=0o750)
    d.chmod(0o750)
    stat = read(d, checksum=False)
    assert remote_files.holds(stat, {"path": str(d), "state": "directory", "mode": "0750"})
    assert remote_files.unchanged(stat, str(d))["state"] == "directory"
    gone = read(tmp_path / "gone", checksum=False)
    assert remote_files.holds(gone, {"path": "x", "state": "absent"})
    assert remote_files.unchanged(gone, "x") == {"changed": False, "path": "x", "state": "absent"}
