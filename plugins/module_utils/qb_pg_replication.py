# Pure functions behind the qb_pg_replication_facts module: they turn what PostgreSQL reports
# (one JSON document, see QUERY) into the replication summary health gates and DR rely on.
# No database access here, so they are unit-tested on rows taken from real servers.

from __future__ import annotations

import re
import struct

QUERY = """
SELECT json_build_object(
  'in_recovery', pg_is_in_recovery(),
  'now', extract(epoch FROM clock_timestamp()),
  'current_lsn', CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_current_wal_lsn()::text END,
  'receive_lsn', pg_last_wal_receive_lsn()::text,
  'replay_lsn', pg_last_wal_replay_lsn()::text,
  'replay_timestamp', extract(epoch FROM pg_last_xact_replay_timestamp()),
  -- a primary's current timeline is in its WAL file name (its last checkpoint may predate a
  -- promotion); a standby's is corrected from its WAL receiver below
  'timeline', CASE WHEN pg_is_in_recovery() THEN (SELECT timeline_id FROM pg_control_checkpoint())
              ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int END,
  'synchronous_standby_names', current_setting('synchronous_standby_names'),
  'replication', (SELECT coalesce(json_agg(json_build_object(
      'application_name', application_name, 'client_addr', host(client_addr), 'state', state,
      'sent_lsn', sent_lsn::text, 'write_lsn', write_lsn::text, 'flush_lsn', flush_lsn::text,
      'replay_lsn', replay_lsn::text, 'write_lag', extract(epoch FROM write_lag),
      'flush_lag', extract(epoch FROM flush_lag), 'replay_lag', extract(epoch FROM replay_lag),
      'sync_state', sync_state) ORDER BY application_name), '[]'::json) FROM pg_stat_replication),
  'slots', (SELECT coalesce(json_agg(json_build_object(
      'slot_name', slot_name, 'slot_type', slot_type, 'active', active, 'wal_status', wal_status,
      'restart_lsn', restart_lsn::text) ORDER BY slot_name), '[]'::json) FROM pg_replication_slots),
  'receiver', (SELECT row_to_json(r) FROM (SELECT status, sender_host, sender_port, slot_name,
      flushed_lsn::text AS flushed_lsn, latest_end_lsn::text AS latest_end_lsn, received_tli
      FROM pg_stat_wal_receiver) r)
)
"""


def parse_lsn(text):
    """'16/B374D848' -> byte position; None stays None."""
    if text is None:
        return None
    try:
        high, low = str(text).split("/")
        return (int(high, 16) << 32) + int(low, 16)
    except ValueError:
        raise ValueError(f"not a WAL location: {text!r}") from None


def _diff(a, b):
    if a is None or b is None:
        return None
    return max(a - b, 0)


def _seconds(value):
    return None if value is None else round(float(value), 3)


def summarize(report):
    """Summary of one server's replication state from the QUERY document."""
    in_recovery = bool(report["in_recovery"])
    out = {
        "state": "running",
        "down_reason": None,
        "detail": None,
        "cluster_state": None,
        "role": "replica" if in_recovery else "primary",
        "timeline": report.get("timeline"),
        "synchronous_standby_names": report.get("synchronous_standby_names") or "",
        "replicas": [],
        "slots": [],
        "upstream": None,
    }
    if in_recovery:
        receive = parse_lsn(report.get("receive_lsn"))
        replay = parse_lsn(report.get("replay_lsn"))
        out["wal_lsn"] = report.get("receive_lsn") or report.get("replay_lsn")
        out["replay_lsn"] = report.get("replay_lsn")
        out["lag_bytes"] = _diff(receive, replay) if receive is not None else 0
        # nothing left to replay means no delay, however old the last transaction is
        if out["lag_bytes"] == 0 or report.get("replay_timestamp") is None:
            out["lag_seconds"] = 0.0
        else:
            out["lag_seconds"] = _seconds(max(report["now"] - report["replay_timestamp"], 0))
        receiver = report.get("receiver")
        # a standby's checkpoint timeline lags behind until its next restartpoint; what it
        # receives is current
        if receiver and receiver.get("received_tli"):
            out["timeline"] = receiver["received_tli"]
        if receiver:
            out["upstream"] = {
                "host": receiver.get("sender_host"),
                "port": receiver.get("sender_port"),
                "status": receiver.get("status"),
                "slot_name": receiver.get("slot_name"),
            }
        out["streaming"] = bool(receiver) and receiver.get("status") == "streaming"
        current = receive if receive is not None else replay
    else:
        current = parse_lsn(report.get("current_lsn"))
        out["wal_lsn"] = report.get("current_lsn")
        out["replay_lsn"] = None
        out["lag_bytes"] = 0
        out["lag_seconds"] = 0.0
        out["streaming"] = False

    out["wal_position"] = current
    for row in report.get("replication") or []:
        out["replicas"].append({
            "name": row.get("application_name"),
            "client_addr": row.get("client_addr"),
            "state": row.get("state"),
            "sync_state": row.get("sync_state"),
            "sent_lsn": row.get("sent_lsn"),
            "flush_lsn": row.get("flush_lsn"),
            "replay_lsn": row.get("replay_lsn"),
            "flush_lag_bytes": _diff(current, parse_lsn(row.get("flush_lsn"))),
            "replay_lag_bytes": _diff(current, parse_lsn(row.get("replay_lsn"))),
            "flush_lag_seconds": _seconds(row.get("flush_lag")) or 0.0,
            "replay_lag_seconds": _seconds(row.get("replay_lag")) or 0.0,
        })
    for row in report.get("slots") or []:
        out["slots"].append({
            "name": row.get("slot_name"),
            "type": row.get("slot_type"),
            "active": bool(row.get("active")),
            "wal_status": row.get("wal_status"),
            "restart_lsn": row.get("restart_lsn"),
            "retained_bytes": _diff(current, parse_lsn(row.get("restart_lsn"))),
        })
    out["sync_replicas"] = [r["name"] for r in out["replicas"] if r["sync_state"] in ("sync", "quorum")]
    lags = [r["replay_lag_bytes"] or 0 for r in out["replicas"]]
    out["max_replay_lag_bytes"] = max(lags, default=0)
    return out


# What a server's postmaster.pid says on its 8th line (PostgreSQL 10+), and what a refused
# connection says, mapped to why the member is down. The DR playbooks act on these reasons
# (a crashed primary is fenced and later rewound; one still starting is waited for).
_PM_STATUS = {"starting": "starting", "stopping": "shutting_down"}
_CONNECT_ERRORS = (
    ("the database system is starting up", "starting"),
    ("the database system is in recovery mode", "recovering"),
    ("the database system is shutting down", "shutting_down"),
    ("the database system is not yet accepting connections", "starting"),
    ("the database system is not accepting connections", "not_accepting"),
)
DOWN_REASONS = ("stopped", "crashed", "starting", "recovering", "shutting_down", "not_accepting",
                "not_answering")


def parse_pid_file(text):
    """postmaster.pid -> (pid, status); (None, None) for an empty or torn file."""
    lines = (text or "").splitlines()
    try:
        pid = int(lines[0].strip())
    except (IndexError, ValueError):
        return None, None
    status = lines[7].strip() if len(lines) > 7 else None
    return pid, status or None


# pg_control's DBState (the 4 bytes after the system identifier and two version numbers, the
# same layout in every release since 9.x)
_DB_STATES = ("starting up", "shut down", "shut down in recovery", "shutting down",
              "in crash recovery", "in archive recovery", "in production")
_CLEAN = ("shut down", "shut down in recovery")


def control_state(head):
    """The cluster state recorded in global/pg_control (its first 20 bytes or more)."""
    if head is None or len(head) < 20:
        return None
    (state,) = struct.unpack_from("=i", head, 16)
    return _DB_STATES[state] if 0 <= state < len(_DB_STATES) else None


def down_reason(pid_file, postmaster_alive, error=None, cluster_state=None):
    """Why a member with a data directory does not answer.

    pid_file: postmaster.pid's text, or None when there is none; postmaster_alive: whether the
    process it names still runs as postgres; error: the connection error's text, if one was
    tried; cluster_state: what pg_control says (control_state).
    """
    if not postmaster_alive:
        # no server: a clean shutdown leaves pg_control "shut down"; SIGKILL, the OOM killer or a
        # host reset leave it "in production" (or in recovery), with the socket and often the
        # pid file behind
        if cluster_state in _CLEAN or (cluster_state is None and pid_file is None):
            return "stopped"
        return "crashed"
    for text, reason in _CONNECT_ERRORS:
        if error and text in error:
            return reason
    return _PM_STATUS.get(parse_pid_file(pid_file)[1], "not_answering")


def absent(state, reason=None, detail=None, cluster_state=None):
    """Summary for a host with no cluster ('absent') or a cluster that does not answer ('down',
    with the reason, the error text and what pg_control says: "in production" after a crash is
    a primary's, "in archive recovery" a standby's)."""
    return {
        "state": state, "down_reason": reason, "detail": detail, "cluster_state": cluster_state,
        "role": None, "timeline": None,
        "synchronous_standby_names": "",
        "replicas": [], "slots": [], "upstream": None, "wal_lsn": None, "wal_position": None,
        "replay_lsn": None,
        "lag_bytes": None, "lag_seconds": None, "streaming": False, "sync_replicas": [],
        "max_replay_lag_bytes": 0,
    }


def fork_point(history, timeline):
    """Where the timeline `timeline` ended, from a later timeline's history file (lines of
    'parentTLI<tab>switchpoint<tab>reason'); None when the history does not pass through it."""
    for line in (history or "").splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[0].isdigit() and int(fields[0]) == int(timeline):
            return fields[1]
    return None


def wal_after(waldump_stdout, waldump_stderr, start_lsn):
    """What pg_waldump found after `start_lsn`: the committed transactions, the bytes of WAL
    records and where valid WAL ends. pg_waldump reads until the first invalid record and says
    where that is on stderr; no record at all means nothing was written after the start."""
    commits = 0
    written = 0
    for line in waldump_stdout.splitlines():
        if "rmgr: Transaction" in line and "desc: COMMIT" in line:
            commits += 1
        # the records' own sizes: a WAL segment switch skips to the next segment, which is
        # padding, not data
        m = re.search(r"len \(rec/tot\):\s*\d+/\s*(\d+)", line)
        if m:
            written += int(m.group(1))
    # after the last valid record pg_waldump stops with "error in WAL record at <last>: <why>",
    # where <why> names the end when it is a zero-length record ("invalid record length at
    # <end>"); with no record at all it says "could not find a valid record after <start>"
    if "could not find a valid record after" in waldump_stderr:
        end = start_lsn
    else:
        m = (re.search(r"invalid record length at ([0-9A-F]+/[0-9A-F]+)", waldump_stderr)
             or re.search(r"error in WAL record at ([0-9A-F]+/[0-9A-F]+)", waldump_stderr))
        if not m:
            raise ValueError(f"pg_waldump gave no end of WAL: {waldump_stderr.strip()[-300:]!r}")
        end = m.group(1)
    return {"transactions": commits, "end_lsn": end, "wal_bytes": written}
