"""qb_pg_replication_facts' summary, computed from documents taken from a real primary/replica
pair (PostgreSQL 15, synchronous ANY 1), in step and with the replica's replay paused."""

import base64
import importlib.util
import json
import re
import struct
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).parent / "fixtures"
_spec = importlib.util.spec_from_file_location(
    "qb_pg_replication", ROOT / "plugins" / "module_utils" / "qb_pg_replication.py")
rep = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(rep)


def load(name):
    return json.loads((FIXTURES / f"pg_replication_{name}.json").read_text())


@pytest.mark.parametrize(("text", "pos"), [
    ("0/0", 0), ("0/8000060", 0x8000060), ("16/B374D848", (0x16 << 32) + 0xB374D848), (None, None)])
def test_parse_lsn(text, pos):
    assert rep.parse_lsn(text) == pos


@pytest.mark.parametrize("bad", ["", "0-1", "zz/1", "1/2/3"])
def test_parse_lsn_refuses_garbage(bad):
    with pytest.raises(ValueError, match="not a WAL location"):
        rep.parse_lsn(bad)


def test_primary_in_step():
    s = rep.summarize(load("primary"))
    assert s["role"] == "primary" and s["state"] == "running" and s["timeline"] == 1
    assert s["wal_position"] == 0x8000060
    assert s["sync_replicas"] == ["dbha-pg-2"]
    assert s["synchronous_standby_names"] == 'ANY 1 ("dbha-pg-2")'
    (r,) = s["replicas"]
    assert r["client_addr"] == "10.240.97.12" and r["state"] == "streaming"
    assert r["replay_lag_bytes"] == 0 and r["flush_lag_bytes"] == 0 and r["replay_lag_seconds"] == 0.0
    (slot,) = s["slots"]
    assert slot == {"name": "dbha_pg_2", "type": "physical", "active": True, "wal_status": "reserved",
                    "restart_lsn": "0/8000060", "retained_bytes": 0}
    assert s["max_replay_lag_bytes"] == 0


def test_replica_in_step_has_no_lag_however_old_its_last_transaction():
    doc = load("replica")
    assert doc["now"] - doc["replay_timestamp"] > 30
    s = rep.summarize(doc)
    assert s["role"] == "replica" and s["streaming"] is True
    assert s["lag_bytes"] == 0 and s["lag_seconds"] == 0.0
    assert s["upstream"] == {"host": "10.240.97.11", "port": 5432, "status": "streaming",
                             "slot_name": "dbha_pg_2"}
    assert s["replicas"] == [] and s["sync_replicas"] == []


def test_lagging_replica_seen_from_both_ends():
    primary = rep.summarize(load("primary_lagging"))
    replica = rep.summarize(load("replica_lagging"))
    gap = 0x8150FE8 - 0x80000A8
    (r,) = primary["replicas"]
    # flushed (synchronous commit satisfied) but not replayed
    assert r["flush_lag_bytes"] == 0
    assert r["replay_lag_bytes"] == gap == primary["max_replay_lag_bytes"]
    assert r["replay_lag_seconds"] == pytest.approx(0.007, abs=0.001)
    assert replica["lag_bytes"] == gap
    assert replica["lag_seconds"] == pytest.approx(62.881, abs=0.01)
    assert replica["wal_position"] == primary["wal_position"]


def test_replica_reports_the_timeline_it_receives_not_its_last_restartpoint():
    doc = load("replica")
    doc["receiver"]["received_tli"] = 3
    assert rep.summarize(doc)["timeline"] == 3
    assert rep.summarize(load("replica"))["timeline"] == 1


def test_replica_that_lost_its_upstream():
    doc = load("replica")
    doc["receiver"] = None
    s = rep.summarize(doc)
    assert s["streaming"] is False and s["upstream"] is None


def test_absent_and_down_have_the_same_keys_as_running():
    running = rep.summarize(load("primary"))
    for state in ("absent", "down"):
        s = rep.absent(state)
        assert s["state"] == state and s["role"] is None
        assert set(s) == set(running)


# postmaster.pid as PostgreSQL 15 writes it (captured from a db_ha member), with its 8th line
# (the postmaster's status) replaced per case
def pid_file(status="ready   "):
    text = (FIXTURES / "postmaster.pid").read_text()
    lines = text.splitlines()
    lines[7] = status
    return "\n".join(lines) + "\n"


def test_pid_file_parsed():
    pid, status = rep.parse_pid_file(pid_file())
    assert pid > 1 and status == "ready"
    assert rep.parse_pid_file("") == (None, None)
    assert rep.parse_pid_file("garbage\n") == (None, None)
    # a file torn by the crash still names its process
    assert rep.parse_pid_file("4242\n/var/lib/postgresql/15/main\n") == (4242, None)


# the first 32 bytes of global/pg_control of a db_ha member: crashed primary, running replica
CRASHED_CONTROL = base64.b64decode("524h5qyTBmsUBQAAJXcNDAYAAAAAAAAA8JMGawAAAAA=")


def control_with(state):
    return CRASHED_CONTROL[:16] + struct.pack("=i", state) + CRASHED_CONTROL[20:]


def test_control_state():
    assert rep.control_state(CRASHED_CONTROL) == "in production"
    assert rep.control_state(control_with(1)) == "shut down"
    assert rep.control_state(control_with(5)) == "in archive recovery"
    assert rep.control_state(control_with(42)) is None
    assert rep.control_state(b"short") is None and rep.control_state(None) is None


@pytest.mark.parametrize(("pid_text", "alive", "error", "state", "reason"), [
    # a data directory without a server, shut down cleanly (primary or standby)
    (None, False, None, "shut down", "stopped"),
    (None, False, None, "shut down in recovery", "stopped"),
    (None, False, None, None, "stopped"),
    # SIGKILL / OOM killer / host reset: pg_control still says it runs; the socket and often the
    # pid file (naming a process that is gone) stay behind; systemd's stop may remove the pid file
    ("ready", False, None, "in production", "crashed"),
    ("standby", False, None, "in archive recovery", "crashed"),
    (None, False, None, "in production", "crashed"),
    ("", False, None, None, "crashed"),
    # the postmaster runs but does not take connections yet or any more
    ("starting", True, "FATAL:  the database system is starting up", None, "starting"),
    ("starting", True, "FATAL:  the database system is in recovery mode", None, "recovering"),
    ("stopping", True, "FATAL:  the database system is shutting down", None, "shutting_down"),
    ("starting", True, "FATAL:  the database system is not yet accepting connections", None, "starting"),
    ("ready", True, "FATAL:  the database system is not accepting connections", None, "not_accepting"),
    # no answer at all: the postmaster's own status says what it is doing
    ("starting", True, "timeout expired", None, "starting"),
    ("stopping", True, "timeout expired", None, "shutting_down"),
    ("ready", True, "connection to server on socket failed: Connection refused", None, "not_answering"),
])
def test_every_way_a_member_is_down_is_a_reason(pid_text, alive, error, state, reason):
    text = None if pid_text is None else pid_file(pid_text)
    assert rep.down_reason(text, alive, error, state) == reason
    assert reason in rep.DOWN_REASONS


def test_down_summary_carries_reason_and_error():
    s = rep.absent("down", "crashed", None)
    assert s["state"] == "down" and s["down_reason"] == "crashed" and s["role"] is None
    assert rep.summarize(load("primary"))["down_reason"] is None


# pg_waldump 15 on a member's pg_wal: one transaction (a table made and two rows) after the
# start, then the end of valid WAL; and a start with nothing after it
def test_wal_after_counts_commits_and_finds_the_end():
    out = (FIXTURES / "pg_waldump_after_fork.out").read_text()
    err = (FIXTURES / "pg_waldump_after_fork.err").read_text()
    gap = rep.wal_after(out, err, "0/4008000")
    records = [int(n) for n in re.findall(r"len \(rec/tot\):\s+\d+/\s+(\d+),", out)]
    assert gap == {"transactions": 1, "end_lsn": "0/400AE88", "wal_bytes": sum(records)}
    assert 0 < gap["wal_bytes"] <= 0x400AE88 - 0x4009C60


def test_wal_after_nothing_written():
    err = "pg_waldump: error: could not find a valid record after 0/400AE88\n"
    assert rep.wal_after("", err, "0/400AE88") == {"transactions": 0, "end_lsn": "0/400AE88", "wal_bytes": 0}


def test_wal_after_refuses_output_it_does_not_understand():
    with pytest.raises(ValueError, match="no end of WAL"):
        rep.wal_after("", "pg_waldump: error: could not open directory \"x\": No such file", "0/1")


def test_fork_point_from_a_timeline_history():
    history = "1\t0/5000198\tno recovery target specified\n\n2\t0/7A00028\tno recovery target specified\n"
    assert rep.fork_point(history, 1) == "0/5000198"
    assert rep.fork_point(history, 2) == "0/7A00028"
    assert rep.fork_point(history, 3) is None
    assert rep.fork_point("", 1) is None
