#!/usr/bin/python
# quantbot-infra: replication state of the local PostgreSQL server.

from __future__ import annotations

DOCUMENTATION = r"""
module: qb_pg_replication_facts
short_description: Report a PostgreSQL server's replication role, lag, slots and sync state
description:
  - Asks the local server, in one query, whether it is a primary or a replica, how far its
    replicas (or itself) lag in bytes and seconds, the state of its replication slots and which
    replicas are synchronous. Health gates and the DR playbooks decide on these facts.
  - Read-only; runs the same in check mode.
  - A host without a cluster reports O(state=absent); a cluster that does not answer reports
    O(state=down) with O(down_reason) (stopped, crashed, starting, recovering, shutting_down,
    not_accepting, not_answering). None of these is an error, so the facts of a whole group can be
    gathered before a failover, a crashed primary (stale socket and pid file) included.
options:
  data_directory:
    description: Data directory of the cluster; its C(PG_VERSION) tells whether a cluster exists.
    type: path
    required: true
  login_user:
    description: Role to connect as.
    type: str
    default: postgres
  login_unix_socket:
    description: Directory of the server's Unix socket.
    type: path
    default: /var/run/postgresql
  port:
    description: Server port.
    type: int
    default: 5432
  connect_timeout:
    description: Seconds to wait for the server.
    type: int
    default: 5
requirements: [psycopg2]
"""

EXAMPLES = r"""
- name: Read the replication state
  qb_pg_replication_facts:
    data_directory: /var/lib/postgresql/15/main
  register: pg

- name: Refuse to go on while a replica lags by more than 16 MiB
  ansible.builtin.assert:
    that: pg.replication.max_replay_lag_bytes < 16777216
"""

RETURN = r"""
replication:
  description: The server's replication state (also set as the fact C(qb_pg_replication)).
  returned: always
  type: dict
  contains:
    state: {description: "absent, down or running", type: str}
    down_reason: {description: "Why a member with a cluster is down (null unless down)", type: str}
    detail: {description: "The connection error, when one was tried (null unless down)", type: str}
    cluster_state: {description: "A down member's pg_control state (in production: a crashed primary; in archive recovery: a crashed standby; shut down)", type: str}
    role: {description: "primary or replica (null unless running)", type: str}
    timeline: {description: "Timeline: the last checkpoint's on a primary, the one being received on a replica", type: int}
    wal_lsn: {description: "Current WAL location (primary) or last received (replica)", type: str}
    wal_position: {description: "wal_lsn as a byte position (comparable between members)", type: int}
    replay_lsn: {description: Last replayed location (replica), type: str}
    lag_bytes: {description: "Replica: received but not yet replayed WAL, in bytes", type: int}
    lag_seconds: {description: "Replica: age of the last replayed transaction while WAL is pending", type: float}
    streaming: {description: Replica is streaming from its upstream, type: bool}
    upstream: {description: "Replica: host, port, status and slot of its WAL receiver", type: dict}
    replicas: {description: "Primary: one entry per connected replica with name, state, sync_state, lag in bytes and seconds", type: list}
    slots: {description: "Replication slots with active flag, wal_status and retained bytes", type: list}
    sync_replicas: {description: Names of replicas in sync or quorum state, type: list}
    synchronous_standby_names: {description: The server's setting, type: str}
    max_replay_lag_bytes: {description: "Primary: largest replay lag among its replicas", type: int}
    standby_signal: {description: "The data directory holds standby.signal (the cluster starts as a standby)", type: bool}
"""

import json
import os

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible.module_utils.qb_pg_replication import (
    QUERY,
    absent,
    control_state,
    down_reason,
    parse_pid_file,
    summarize,
)

try:
    import psycopg2
    HAS_PSYCOPG2 = True
except ImportError:
    HAS_PSYCOPG2 = False


def read_head(path, size=32):
    try:
        with open(path, "rb") as f:
            return f.read(size)
    except OSError:
        return None


def read_pid_file(data_dir):
    try:
        with open(os.path.join(data_dir, "postmaster.pid"), encoding="utf-8", errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return None


def postmaster_alive(pid):
    """The pid runs and is a postgres process (after a crash the number may have been reused)."""
    if pid is None:
        return False
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv0 = f.read().split(b"\0")[0]
    except OSError:
        return False
    return os.path.basename(argv0).startswith(b"postgres")


def main():
    module = AnsibleModule(
        argument_spec=dict(
            data_directory=dict(type="path", required=True),
            login_user=dict(type="str", default="postgres"),
            login_unix_socket=dict(type="path", default="/var/run/postgresql"),
            port=dict(type="int", default=5432),
            connect_timeout=dict(type="int", default=5),
        ),
        supports_check_mode=True,
    )
    params = module.params

    data_dir = params["data_directory"]

    def done(summary):
        # a standby's marker file, whatever the server's state: the role reads it with the rest
        summary["standby_signal"] = os.path.isfile(os.path.join(data_dir, "standby.signal"))
        module.exit_json(changed=False, replication=summary, ansible_facts={"qb_pg_replication": summary})
    if not os.path.isfile(os.path.join(data_dir, "PG_VERSION")):
        done(absent("absent"))
    if not HAS_PSYCOPG2:
        module.fail_json(msg=missing_required_lib("psycopg2 (Debian package python3-psycopg2)"))
    pid_file = read_pid_file(data_dir)
    alive = pid_file is not None and postmaster_alive(parse_pid_file(pid_file)[0])
    if not alive:
        # stopped, or crashed (stale pid file and socket): nothing to connect to
        state = control_state(read_head(os.path.join(data_dir, "global", "pg_control")))
        done(absent("down", down_reason(pid_file, False, cluster_state=state), None, state))
    try:
        conn = psycopg2.connect(
            host=params["login_unix_socket"], port=params["port"], user=params["login_user"],
            dbname="postgres", connect_timeout=params["connect_timeout"],
            application_name="qb_pg_replication_facts",
        )
    except psycopg2.OperationalError as exc:
        # starting, in crash recovery, shutting down, hung: a state, not an error
        error = str(exc).strip()
        done(absent("down", down_reason(pid_file, True, error), error))
    try:
        with conn.cursor() as cur:
            cur.execute(QUERY)
            report = cur.fetchone()[0]
    except psycopg2.OperationalError as exc:
        # the server went away between connecting and answering
        error = str(exc).strip()
        done(absent("down", down_reason(read_pid_file(data_dir), True, error), error))
    finally:
        conn.close()
    if isinstance(report, str):
        report = json.loads(report)
    done(summarize(report))


if __name__ == "__main__":
    main()
