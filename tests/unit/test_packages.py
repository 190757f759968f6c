"""quantbot_infra.packages: when the qb_packages action may skip apt, and when it must not."""

import os

import pytest

from quantbot_infra import packages


def test_run_id_is_the_controller_process_and_its_start():
    run = packages.run_id(os.getpid())
    pid, start = run.split(":")
    assert pid == str(os.getpid()) and start.isdigit()
    assert packages.run_id(os.getpid()) == run
    # the worker's parent is the playbook run; a gone pid is still an identity, never a match
    assert packages.run_id() == packages.run_id(os.getppid())
    assert packages.run_id(2**22 + 7).endswith(":unknown")


@pytest.mark.parametrize(("value", "expected"), [
    ("nftables", ["nftables"]),
    ("rsyslog, rsyslog-relp", ["rsyslog", "rsyslog-relp"]),
    (["redis-server", " redis-sentinel "], ["redis-server", "redis-sentinel"]),
    (None, []),
    ([], []),
])
def test_names_as_the_apt_module_takes_them(value, expected):
    assert packages.names(value) == expected


@pytest.mark.parametrize(("args", "plannable"), [
    ({"name": ["nftables"], "install_recommends": False, "cache_valid_time": 3600}, True),
    ({"name": "acl,curl", "state": "present", "update_cache": True}, True),
    ({"name": ["postgresql-15=15.8-0+deb12u1"]}, False),
    ({"name": ["prometheus-*"]}, False),
    ({"name": ["./local.deb"]}, False),
    ({"deb": "/tmp/x.deb"}, False),
    ({"name": ["nftables"], "state": "latest"}, False),
    ({"name": ["nftables"], "state": "absent"}, False),
    ({"upgrade": "dist"}, False),
    ({"name": []}, False),
    ({"name": ["nftables"], "autoremove": True}, False),
])
def test_only_named_packages_to_be_present_are_planned(args, plannable):
    assert packages.plannable(args) is plannable


def test_a_list_read_by_another_run_is_never_trusted():
    fact = packages.record("100:5000", ["nftables", "acl"])
    assert packages.seen_this_run(fact, "100:5000") == {"nftables", "acl"}
    # the fact cache keeps facts between runs: a later run (even with the same pid) reads again
    assert packages.seen_this_run(fact, "100:5001") is None
    assert packages.seen_this_run(None, "100:5000") is None
    assert packages.seen_this_run({"run": "100:5000", "packages": "nftables"}, "100:5000") is None


def test_missing_keeps_the_tasks_order_and_matches_architecture_suffixes():
    installed = {"acl", "curl", "libc6"}
    assert packages.missing(["curl", "lsof", "acl", "rsync"], installed) == ["lsof", "rsync"]
    assert packages.missing(["libc6:amd64"], installed) == []
    assert packages.missing([], installed) == []


def test_record_is_sorted_and_unique():
    assert packages.record("1:2", ["b", "a", "b"]) == {"run": "1:2", "packages": ["a", "b"]}


def test_installed_packages_from_dpkg_query():
    out = "\n".join([
        "acl\tii ",          # installed
        "nftables\thi ",     # held, installed
        "lsof\trc ",         # removed, configuration left
        "redis-server\tiU ",  # unpacked, not configured
        "chrony\tiF ",       # half-configured
        "curl\tiiR",         # installed, reinstallation required
        "tzdata\tun ",       # never installed
        "",
    ])
    assert packages.parse_dpkg_query(out) == {"acl", "nftables"}
    assert packages.parse_dpkg_query("") == set()
