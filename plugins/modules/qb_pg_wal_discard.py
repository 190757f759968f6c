#!/usr/bin/python
# quantbot-infra: what a former primary wrote after the current primary's timeline forked.

from __future__ import annotations

DOCUMENTATION = r"""
module: qb_pg_wal_discard
short_description: Measure the WAL a former PostgreSQL primary wrote after the timelines split
description:
  - Before a former primary is rewound (C(pg_rewind)) to follow the current primary, reads its
    own WAL, without starting it, from the point where the current primary's timeline forked
    from it, and reports what the rewind will discard - committed transactions and WAL bytes
    that never reached the current primary.
  - This is the failover's recovery point, measured the same way whether the old primary was
    fenced, crashed or lost its host.
  - Read-only (C(pg_controldata) and C(pg_waldump) on a stopped cluster); runs the same in check
    mode.
options:
  data_directory:
    description: Data directory of the former primary; the server must not be running.
    type: path
    required: true
  bin_directory:
    description: Directory of the PostgreSQL programs.
    type: path
    required: true
  timeline_history:
    description:
      - The current primary's timeline history file (C(pg_wal/NNNNNNNN.history)), which names
        the location where each earlier timeline ended.
    type: str
    required: true
requirements: [pg_controldata, pg_waldump]
"""

EXAMPLES = r"""
- name: Measure what the rewind will discard
  qb_pg_wal_discard:
    data_directory: /var/lib/postgresql/15/main
    bin_directory: /usr/lib/postgresql/15/bin
    timeline_history: "{{ history.query_result[0].history }}"
  register: discard
"""

RETURN = r"""
timeline: {description: The former primary's timeline, returned: always, type: int}
fork_lsn: {description: "Where the current primary's timeline forked from it (null: not on its history)", returned: always, type: str}
end_lsn: {description: Where the former primary's valid WAL ends, returned: always, type: str}
wal_bytes: {description: WAL written after the fork, returned: always, type: int}
transactions: {description: Transactions committed after the fork, returned: always, type: int}
"""

import os
import re

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.qb_pg_replication import fork_point, wal_after


def main():
    module = AnsibleModule(
        argument_spec=dict(
            data_directory=dict(type="path", required=True),
            bin_directory=dict(type="path", required=True),
            timeline_history=dict(type="str", required=True),
        ),
        supports_check_mode=True,
    )
    data_dir, bin_dir = module.params["data_directory"], module.params["bin_directory"]
    env = {"LC_ALL": "C"}
    rc, out, err = module.run_command([os.path.join(bin_dir, "pg_controldata"), "-D", data_dir],
                                      environ_update=env)
    if rc != 0:
        module.fail_json(msg=f"pg_controldata failed on {data_dir}: {err.strip()}")
    m = re.search(r"^Latest checkpoint's TimeLineID:\s+(\d+)$", out, re.M)
    if not m:
        module.fail_json(msg=f"pg_controldata named no timeline for {data_dir}")
    timeline = int(m.group(1))
    fork = fork_point(module.params["timeline_history"], timeline)
    if fork is None:
        module.fail_json(msg=f"the current primary's history does not pass through timeline {timeline}: "
                             "this member did not share its history and cannot be rewound")
    rc, out, err = module.run_command(
        [os.path.join(bin_dir, "pg_waldump"), f"--path={data_dir}/pg_wal", f"--timeline={timeline}",
         f"--start={fork}"], environ_update=env)
    try:
        gap = wal_after(out, err, fork)
    except ValueError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=False, timeline=timeline, fork_lsn=fork, **gap)


if __name__ == "__main__":
    main()
