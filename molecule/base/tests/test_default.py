"""Behaviour of role `base` on a real systemd host."""

import re

import pytest


def test_essential_packages_installed(host):
    for pkg in ("chrony", "acl", "ca-certificates", "curl", "tzdata", "rsync"):
        assert host.package(pkg).is_installed, pkg


def test_timezone_is_utc(host):
    assert host.file("/etc/localtime").linked_to.endswith("/UTC")
    assert host.check_output("date +%Z") == "UTC"


def test_chrony_running_and_answering(host):
    svc = host.service("chrony")
    assert svc.is_running
    assert svc.is_enabled
    tracking = host.run("chronyc -n tracking")
    assert tracking.rc == 0, tracking.stderr
    assert re.search(r"^Reference ID\s*:", tracking.stdout, re.M)


NTP_QUERY = (
    "import socket;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.settimeout(3);"
    "s.sendto(b'\\x23'+bytes(47),('127.0.0.1',123));d=s.recv(64);print(d[1])"
)


def test_chrony_serves_ntp_to_allowed_network(host):
    # a real NTP client request (version 4, mode 3); the answer's stratum is the local one
    out = host.run(f'python3 -c "{NTP_QUERY}"')
    assert out.rc == 0, out.stderr
    assert int(out.stdout.strip()) == 10


def test_chrony_is_measure_only_in_a_container(host):
    assert "-x" in host.file("/etc/default/chrony").content_string


def test_admin_users(host):
    alice = host.user("alice")
    assert alice.exists
    assert "sudo" in alice.groups
    assert alice.password in ("!", "*", "!*")
    keys = host.file("/home/alice/.ssh/authorized_keys")
    assert keys.mode == 0o600
    assert keys.user == "alice"
    assert "alice@molecule" in keys.content_string
    bob = host.user("bob")
    assert bob.exists
    assert "sudo" not in bob.groups
    assert "ssh-users" in bob.groups and "ssh-users" in alice.groups
    assert not host.user("mallory").exists
    assert not host.file("/home/mallory").exists


def test_sshd_config_is_hardened_and_effective(host):
    # sshd -T prints the configuration the daemon really uses
    effective = host.check_output("sshd -T -C user=alice,host=localhost,addr=127.0.0.1")
    settings = dict(line.split(" ", 1) for line in effective.splitlines() if " " in line)
    assert settings["passwordauthentication"] == "no"
    assert settings["kbdinteractiveauthentication"] == "no"
    assert settings["permitrootlogin"] == "no"
    assert settings["permitemptypasswords"] == "no"
    assert settings["x11forwarding"] == "no"
    assert host.file("/etc/ssh/sshd_config").mode == 0o600
    assert host.service("ssh").is_running


def test_sshd_refuses_password_login(host):
    # the server must offer public keys and nothing else
    out = host.run(
        "ssh -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "
        "-o PreferredAuthentications=password,keyboard-interactive -p 22 alice@127.0.0.1 true"
    )
    assert out.rc != 0
    assert "Permission denied (publickey)" in out.stderr


@pytest.mark.parametrize(
    "setting,value",
    [("Storage", "persistent"), ("SystemMaxUse", "1G"), ("MaxRetentionSec", "30day")],
)
def test_journald_retention(host, setting, value):
    conf = host.file("/etc/systemd/journald.conf.d/50-quantbot.conf").content_string
    assert f"{setting}={value}" in conf


def test_journal_is_persistent(host):
    assert host.file("/var/log/journal").is_directory
    assert host.service("systemd-journald").is_running
